"""The catalogue fold under any interleaving of changes from people who saw different versions.

Each step is one person's edit of one touchpoint, based on a version they
may have read before someone else's change. Whatever the order, a change
holds only if it was based on the touchpoint's version at the time, a
refused change leaves the catalogue as it was, and the catalogue in force is
the last change that held of each touchpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.catalogue import Applied, CatalogueLog
from schemas.catalogue_records import CatalogueAction, CatalogueChanged, TouchpointEntry

AT = datetime(2026, 3, 1, tzinfo=UTC)
TOUCHPOINTS = ("a", "b")

steps = st.lists(
    st.tuples(
        st.sampled_from(TOUCHPOINTS),
        st.integers(min_value=1, max_value=5),  # the KPI target
        st.integers(min_value=0, max_value=3),  # how many versions behind the author is
    ),
    max_size=25,
)


def _seed() -> CatalogueChanged:
    return CatalogueChanged(
        change_id="seed",
        at=AT,
        by="file",
        action=CatalogueAction.SEED,
        base_version=0,
        touchpoints={key: TouchpointEntry(entry={"kpi_target": 3.0}) for key in TOUCHPOINTS},
        replace_all=True,
    )


@settings(max_examples=200, deadline=None)
@given(steps)
def test_only_changes_based_on_the_current_version_hold(plan: list[tuple[str, int, int]]) -> None:
    """Two people editing one touchpoint never silently overwrite each other."""
    log = CatalogueLog()
    assert isinstance(log.apply(_seed(), 1), Applied)
    seen: dict[str, list[int]] = {key: [1] for key in TOUCHPOINTS}
    for number, (key, target, behind) in enumerate(plan, start=2):
        versions = seen[key]
        base = versions[max(len(versions) - 1 - behind, 0)]
        before = log.catalogue
        current = log.touchpoint_versions[key]
        change = CatalogueChanged(
            change_id=f"c{number}",
            at=AT,
            by="someone",
            action=CatalogueAction.EDIT,
            base_version=base,
            touchpoints={key: TouchpointEntry(entry={"kpi_target": float(target)})},
        )
        outcome = log.apply(change, number)
        if base == current:
            assert outcome == Applied(number)
            versions.append(number)
            assert log.catalogue is not None
            assert log.catalogue.touchpoints[key].kpi_target == target
            assert log.catalogue.version == number
        else:
            assert not isinstance(outcome, Applied)
            assert log.catalogue is before
    for key in TOUCHPOINTS:
        history = [entry.version for entry in log.history.get(key, [])]
        assert history == sorted(set(history))
        last = log.history[key][-1].after
        assert last is not None
        assert log.catalogue is not None
        assert log.catalogue.touchpoints[key].kpi_target == last.entry["kpi_target"]
