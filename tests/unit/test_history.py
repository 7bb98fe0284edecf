"""The history's counting, its figures and the web process's copy of it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.web.board import Board
from connectors.web.history import History
from engine.history import Counted, Counts, day_of, hour_of, rating_changes, recount
from engine.history_figures import Tally, figures
from schemas.base import Scale
from schemas.history import HistoryCounts, Period
from schemas.responses import Rating
from schemas.samples import SAMPLES

ZONE = ZoneInfo("Europe/Helsinki")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _rating(survey: str, score: int, at: datetime, revision: int = 1) -> Rating:
    sample = SAMPLES["rating"](at)
    assert isinstance(sample, Rating)
    return sample.model_copy(
        update={
            "survey_id": survey,
            "rating_id": survey,
            "revision": revision,
            "score": score,
            "normalised": Scale.CSAT_5.normalise(score),
            "answered_at": at,
        }
    )


def test_a_day_is_the_local_calendar_day_and_an_hour_is_utc() -> None:
    """22:30 UTC on 6 December is already 7 December in Helsinki; the hour stays UTC."""
    late = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    assert day_of(late, ZONE) == "2026-12-07"
    assert hour_of(late) == "2026-12-06T22"


def test_a_replay_changes_nothing_and_a_revision_moves_the_answer() -> None:
    """A changed answer is counted once, in its new day and score."""
    first = _rating("s-1", 2, NOW - timedelta(days=1))
    counted, changes = rating_changes(None, first, ZONE) or pytest.fail("not counted")
    assert all(delta == 1 for _, _, delta in changes)
    assert rating_changes(counted, first, ZONE) is None
    second = _rating("s-1", 5, NOW, revision=2)
    moved = rating_changes(counted, second, ZONE)
    assert moved is not None
    taken = {(key.rsplit("|", 1)[1], score) for key, score, delta in moved[1] if delta < 0}
    assert ("2026-12-06", 2) in taken
    assert rating_changes(moved[0], first, ZONE) is None  # the old revision, late


def test_remembered_answers_survive_their_serialisation() -> None:
    """The stage's table stores what it remembers; a restart must read back the same."""
    counted = Counted.of(_rating("s-1", 4, NOW))
    assert Counted.loads(counted.dumps()) == counted
    counts = Counts({1: 2, 5: 3}, sent=9)
    assert Counts.loads(counts.dumps()) == counts


def test_recount_leaves_out_what_is_no_longer_kept() -> None:
    """Hours are kept a fortnight and days 13 months; older buckets are not rebuilt."""
    ratings = [_rating("s-old", 3, NOW - timedelta(days=20)), _rating("s-new", 4, NOW)]
    buckets = recount(ratings, [], ZONE, lambda _tp: Scale.CSAT_5, now=NOW)
    periods = sorted(key.split("|")[4] + key.rsplit("|", 1)[1][:10] for key in buckets)
    assert "h2026-11-17" not in periods
    assert "d2026-11-17" in periods
    assert "h2026-12-07" in periods


def test_figures_of_a_tally_carry_intervals_that_hold_the_value() -> None:
    """Means, shares and NPS come from counts, with 95 % bounds around them."""
    csat = figures(Tally(Scale.CSAT_5, {5: 30, 4: 10, 1: 10}, sent=100))
    assert csat.count == 50
    assert csat.mean is not None
    assert csat.mean.value == pytest.approx((150 + 40 + 10) / 50)
    assert csat.mean.low is not None
    assert csat.mean.high is not None
    assert csat.mean.low < csat.mean.value < csat.mean.high
    assert csat.csat is not None
    assert csat.csat.value == pytest.approx(0.8)
    assert csat.response_rate == pytest.approx(0.5)
    nps = figures(Tally(Scale.NPS_11, {10: 6, 8: 2, 3: 2}))
    assert nps.headline is nps.nps
    assert nps.nps is not None
    assert nps.nps.value == pytest.approx(40.0)
    ces = figures(Tally(Scale.CES_7, {7: 3, 5: 1, 2: 4}))
    assert ces.headline is ces.mean
    assert ces.mean is not None
    assert ces.mean.value == pytest.approx((21 + 5 + 8) / 8)
    assert ces.easy is not None
    assert ces.easy.value == pytest.approx(0.5)
    assert ces.share is ces.easy
    one = figures(Tally(Scale.CSAT_5, {3: 1}))
    assert one.mean is not None
    assert one.mean.low is None


def test_the_board_sums_days_and_hours_and_forgets_a_tombstoned_bucket() -> None:
    """The console reads spans as sums of buckets; a removed bucket stops counting."""
    board = Board()
    day = HistoryCounts(
        touchpoint_id="tp-1",
        dimension="all",
        value="all",
        scale=Scale.CSAT_5,
        period=Period.DAY,
        start="2026-12-06",
        scores={"5": 4, "1": 1},
        sent=10,
    )
    board.apply(day)
    board.apply(day.model_copy(update={"start": "2026-12-07", "scores": {"4": 2}, "sent": 3}))
    board.apply(day.model_copy(update={"period": Period.HOUR, "start": "2026-12-07T10"}))
    history = board.history
    assert history.scale("tp-1") is Scale.CSAT_5
    total = history.total_days("tp-1", date(2026, 12, 1), date(2026, 12, 7))
    assert (total.scores, total.sent) == ({5: 4, 1: 1, 4: 2}, 13)
    hours = history.hours("tp-1", NOW - timedelta(hours=3), NOW)
    assert [(at.hour, tally.count) for at, tally in hours] == [(9, 0), (10, 5), (11, 0), (12, 0)]
    assert board.forget(day.key)
    assert history.total_days("tp-1", date(2026, 12, 1), date(2026, 12, 7)).count == 2
    assert history.groups("tp-1") == [("all", "all")]


def test_an_empty_history_reads_as_nothing() -> None:
    """A touchpoint without history gives empty tallies, not an error."""
    history = History()
    assert history.scale("tp-x") is None
    assert history.total_days("tp-x", date(2026, 1, 1), date(2026, 12, 31)).count == 0


def test_the_stage_writes_a_bucket_exactly_as_the_model_does() -> None:
    """The stage writes records by hand for speed; they must read back as the model wrote them."""
    from streams.stages.history import _record  # noqa: PLC0415 - a private helper, tested here

    counts = Counts({5: 3, 1: 1}, sent=7)
    key = "tp-1|team|Tiimi Ä|csat-5|d|2026-12-07"
    assert _record(key, counts) == counts.record(key).model_dump_json().encode()


def test_a_second_record_of_one_revision_loses_to_the_first() -> None:
    """The metrics count the first record of a revision; the history must count the same one."""
    first = _rating("s-1", 2, NOW, revision=2)
    counted, _ = rating_changes(None, first, ZONE) or pytest.fail("not counted")
    assert (
        rating_changes(counted, _rating("s-1", 5, NOW + timedelta(hours=1), revision=2), ZONE)
        is None
    )
