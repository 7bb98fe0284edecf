"""The per-key ledger the live metrics stage and the rebuild share."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.ledger import Ledger, Pruned, owner_key, rating_owners, recompute, split_owner
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.metrics import Dimension
from schemas.responses import Rating

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def rating(score: int, survey: str, *, revision: int = 1, at: datetime = NOW) -> Rating:
    return Rating(
        rating_id=f"{survey}.{revision}",
        survey_id=survey,
        revision=revision,
        touchpoint_id="tp-1",
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=60.0,
        answered_at=at,
    )


def test_a_changed_answer_replaces_the_old_one_and_a_replay_changes_nothing() -> None:
    """Exact figures: one survey counts once, with its latest answer."""
    ledger = Ledger("touchpoint:tp-1")
    assert ledger.add_rating(rating(2, "s1"))
    assert ledger.add_rating(rating(5, "s1", revision=2))
    assert not ledger.add_rating(rating(2, "s1"))
    assert not ledger.add_rating(rating(5, "s1", revision=2))
    [hour, *_] = ledger.figures()
    assert hour.count == 1
    assert hour.mean == pytest.approx(5.0)


def test_figures_do_not_depend_on_the_order_of_events() -> None:
    """The live path and the rebuild read partitions in different interleavings."""
    rng = random.Random(3)  # noqa: S311 - reproducible test data
    events = [
        rating(rng.randint(1, 5), f"s{n % 40}", revision=1 + n // 40, at=NOW - timedelta(hours=n))
        for n in range(120)
    ]
    shuffled = list(events)
    rng.shuffle(shuffled)
    assert recompute(events) == recompute(shuffled)


def test_as_of_is_the_latest_event_time_not_the_wall_clock() -> None:
    """Event time lets a rebuild next week give today's figures."""
    ledger = Ledger("touchpoint:tp-1")
    ledger.add_rating(rating(4, "s1", at=NOW - timedelta(days=2)))
    ledger.add_rating(rating(3, "s2", at=NOW - timedelta(days=3)))
    assert {f.as_of for f in ledger.figures()} == {NOW - timedelta(days=2)}


def test_sends_before_the_first_rating_still_count() -> None:
    """A response rate needs every send, including those that came first."""
    ledger = Ledger("touchpoint:tp-1")
    assert ledger.add_sent("s1", NOW - timedelta(minutes=5))
    assert not ledger.add_sent("s1", NOW - timedelta(minutes=5))
    ledger.add_sent("s2", NOW - timedelta(minutes=4))
    ledger.add_rating(rating(4, "s1"))
    [hour, *_] = ledger.figures()
    assert hour.surveys_sent == 2
    assert hour.response_rate == pytest.approx(0.5)


def test_pruning_forgets_only_what_no_window_reaches() -> None:
    """The per-survey memory must stay bounded without changing a figure."""
    ledger = Ledger("touchpoint:tp-1")
    ledger.add_rating(rating(1, "old", at=NOW - timedelta(days=40)))
    ledger.add_rating(rating(5, "new"))
    before = ledger.figures()
    pruned = ledger.prune()
    assert pruned.ratings == ("old",)
    assert set(ledger.ratings) == {"new"}
    assert ledger.figures() == before


def test_pruning_follows_a_revision_that_moved_the_answer_in_time() -> None:
    """A revision's new time decides, not the time the survey was first answered at."""
    ledger = Ledger("touchpoint:tp-1")
    ledger.add_rating(rating(1, "moved-later", at=NOW - timedelta(days=40)))
    ledger.add_rating(rating(2, "moved-later", revision=2, at=NOW - timedelta(days=1)))
    ledger.add_rating(rating(3, "moved-earlier", at=NOW - timedelta(days=1)))
    ledger.add_rating(rating(4, "moved-earlier", revision=2, at=NOW - timedelta(days=40)))
    ledger.add_rating(rating(5, "new"))
    ledger.add_sent("sent-old", NOW - timedelta(days=30))
    ledger.add_sent("sent-new", NOW - timedelta(days=2))
    pruned = ledger.prune()
    assert pruned.ratings == ("moved-earlier",)
    assert pruned.sent == ("sent-old",)
    assert set(ledger.ratings) == {"moved-later", "new"}
    assert ledger.prune() == Pruned((), ())  # nothing is taken twice


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(1, 3), st.integers(0, 60), st.booleans()),
        max_size=60,
    ),
    st.integers(0, 60),
)
def test_pruning_takes_exactly_the_surveys_at_or_before_the_horizon(
    events: list[tuple[int, int, int, bool]], latest_days_ago: int
) -> None:
    """The heap must give what a scan of every survey would, whatever the revisions did."""
    ledger = Ledger("touchpoint:tp-1")
    for survey, revision, days_ago, is_send in events:
        at = NOW - timedelta(days=days_ago)
        if is_send:
            ledger.add_sent(f"s{survey}", at)
        else:
            ledger.add_rating(rating(3, f"s{survey}", revision=revision, at=at))
    ledger.add_rating(rating(3, "latest", at=NOW - timedelta(days=latest_days_ago)))
    horizon = ledger.horizon()
    assert horizon is not None
    expected_ratings = {s for s, r in ledger.ratings.items() if r.answered_at <= horizon}
    expected_sent = {s for s, at in ledger.sent.items() if at <= horizon}
    pruned = ledger.prune()
    assert set(pruned.ratings) == expected_ratings
    assert set(pruned.sent) == expected_sent
    assert all(r.answered_at > horizon for r in ledger.ratings.values())
    assert all(at > horizon for at in ledger.sent.values())


def test_a_rating_counts_towards_its_touchpoint_channel_and_service() -> None:
    """Roll-ups are keyed so that the metrics topic keys read dimension:key:window."""
    owners = rating_owners(rating(3, "s1"))
    assert owners == ["touchpoint:tp-1", "channel:phone", "service:tax"]
    assert split_owner(owner_key(Dimension.SERVICE, "tax")) == (Dimension.SERVICE, "tax")
    assert "service:tax:7d" in recompute([rating(3, "s1")])
