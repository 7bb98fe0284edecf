"""The live catalogue: every reader sees the version in force, not a copy from start-up."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from schemas.base import Language
from schemas.catalogue import Catalogue, LiveCatalogue
from schemas.config import TouchpointConfig, load_settings
from streams.stages.metrics import CountMetrics

ROOT = Path(__file__).resolve().parents[2]
PHONE = "phone-service-helsinki"


def _edited(settings_catalogue: Catalogue, **changes: object) -> Catalogue:
    """Give the next version with the phone service's entry changed."""
    entry = settings_catalogue.touchpoints[PHONE].model_copy(update=changes)
    return Catalogue(
        defaults=settings_catalogue.defaults,
        touchpoints=MappingProxyType({**settings_catalogue.touchpoints, PHONE: entry}),
        csat_targets=MappingProxyType({PHONE: 0.9}),
        version=settings_catalogue.version + 1,
    )


def test_the_settings_catalogue_starts_as_the_files_and_follows_each_new_version() -> None:
    """A stage holding the settings reads a question edited after it was built."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    before, known = settings.touchpoint(PHONE)
    assert known
    assert settings.catalogue.version == 0
    question = {**before.questions, Language.FI: "Saitko apua?"}
    settings.catalogue.replace(_edited(settings.catalogue.current, questions=question))
    after, _ = settings.touchpoint(PHONE)
    assert after.question(Language.FI) == "Saitko apua?"
    assert settings.catalogue.version == 1
    assert settings.catalogue.csat_targets == {PHONE: 0.9}


def test_a_copy_of_the_settings_has_its_own_catalogue_from_its_own_fields() -> None:
    """A copy with other touchpoints must not answer with the original's live catalogue."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    settings.catalogue.replace(_edited(settings.catalogue.current, name="Puhelin"))
    copy = settings.model_copy(update={"touchpoints": {"only-one": TouchpointConfig()}})
    assert copy.touchpoint("only-one")[1]
    assert not copy.touchpoint(PHONE)[1]
    assert settings.touchpoint(PHONE)[0].name == "Puhelin"


def test_the_detector_judges_by_the_kpi_target_in_force() -> None:
    """A KPI target changed while the worker runs is the one the next rating is judged by."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    stage = CountMetrics(settings, ratings_topic="ratings", partition_of=lambda _owner: 0)
    assert stage.config(PHONE).kpi.target == 4.2
    settings.catalogue.replace(_edited(settings.catalogue.current, kpi_target=3.5))
    assert stage.config(PHONE).kpi.target == 3.5
    assert stage.config(PHONE).target.target == 0.9


def test_a_failing_listener_neither_stops_the_others_nor_the_change() -> None:
    """One broken listener (a gauge) must not leave the process on the old version."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    live = LiveCatalogue(settings.catalogue.current)
    told: list[int] = []

    def broken(_catalogue: Catalogue) -> None:
        raise RuntimeError

    live.subscribe(broken)
    live.subscribe(lambda catalogue: told.append(catalogue.version))
    live.replace(_edited(live.current, name="Puhelin"))
    assert told == [1]
    assert live.touchpoint(PHONE)[0].name == "Puhelin"
