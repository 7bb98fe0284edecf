"""Rolling metrics: windows, retraction, roll-ups and the changelog form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from engine.metrics import (
    DEFAULT_WINDOWS,
    MetricsState,
    answer_bin,
    apply_rating,
    apply_sent,
    bin_value,
    expire,
    key_of,
    new_state,
    rating_keys,
    snapshot,
    window_label,
)
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.metrics import Dimension
from schemas.responses import Rating

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def rating(
    score: int,
    *,
    at: datetime = NOW,
    survey: str = "s1",
    revision: int = 1,
    scale: Scale = Scale.CSAT_5,
    seconds: float = 120.0,
) -> Rating:
    return Rating(
        rating_id=f"{survey}.{revision}",
        survey_id=survey,
        revision=revision,
        touchpoint_id="tp-1",
        service="Housing allowance",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=scale,
        score=score,
        normalised=scale.normalise(score),
        answered_after_seconds=seconds,
        answered_at=at,
    )


def fill(scores: list[int], scale: Scale = Scale.CSAT_5) -> MetricsState:
    state = new_state(scale)
    for number, score in enumerate(scores):
        state = apply_rating(state, rating(score, survey=f"s{number}", scale=scale))
    return state


def test_snapshot_reports_count_mean_distribution_and_csat() -> None:
    """The headline figures ops read must add up from the raw scores."""
    figures = snapshot(fill([5, 4, 3, 1]), timedelta(hours=1), NOW, key="tp-1")
    assert figures.count == 4
    assert figures.mean == pytest.approx(13 / 4)
    assert figures.distribution == {"1": 1, "3": 1, "4": 1, "5": 1}
    assert figures.csat_share == pytest.approx(0.5)
    assert figures.nps is None
    assert figures.window == "1h"


def test_nps_is_reported_only_on_the_zero_to_ten_scale() -> None:
    """NPS is defined for 0-10 answers only; elsewhere it would mislead."""
    figures = snapshot(fill([10, 9, 8, 6, 0], Scale.NPS_11), timedelta(hours=1), NOW, key="tp")
    assert figures.nps == pytest.approx(100 * (2 - 2) / 5)
    figures = snapshot(fill([10, 10, 10, 3], Scale.NPS_11), timedelta(hours=1), NOW, key="tp")
    assert figures.nps == pytest.approx(50.0)


def test_a_changed_answer_replaces_the_earlier_one() -> None:
    """A citizen who corrects a 1 to a 5 must be counted once, as a 5."""
    first = rating(1)
    state = apply_rating(new_state(Scale.CSAT_5), first)
    state = apply_rating(state, rating(5, revision=2), first)
    figures = snapshot(state, timedelta(hours=24), NOW, key="tp-1")
    assert figures.count == 1
    assert figures.distribution == {"5": 1}


def test_a_replayed_older_revision_changes_nothing() -> None:
    """Redelivery after a restart must not double-count or undo a newer answer."""
    newer = rating(5, revision=2)
    state = apply_rating(new_state(Scale.CSAT_5), newer)
    again = apply_rating(state, rating(1, revision=1), newer)
    assert again.to_dict() == state.to_dict()


def test_windows_exclude_ratings_older_than_their_length() -> None:
    """A 1 h figure must not include yesterday's answers."""
    state = new_state(Scale.CSAT_5)
    state = apply_rating(state, rating(5, at=NOW - timedelta(minutes=10), survey="a"))
    state = apply_rating(state, rating(1, at=NOW - timedelta(hours=3), survey="b"))
    state = apply_rating(state, rating(2, at=NOW - timedelta(days=3), survey="c"))
    counts = {w: snapshot(state, w, NOW, key="tp").count for w in DEFAULT_WINDOWS}
    assert counts == {
        timedelta(hours=1): 1,
        timedelta(hours=24): 2,
        timedelta(days=7): 3,
        timedelta(days=28): 3,
    }


def test_response_rate_divides_ratings_by_surveys_sent() -> None:
    """The response rate is the first sign of a broken link or channel."""
    state = apply_sent(fill([5, 4]), NOW - timedelta(minutes=30), count=8)
    figures = snapshot(state, timedelta(hours=1), NOW, key="tp-1")
    assert figures.surveys_sent == 8
    assert figures.response_rate == pytest.approx(0.25)


def test_median_answer_time_is_within_the_documented_precision() -> None:
    """Bounded-space medians are only useful if their error is known."""
    state = new_state(Scale.CSAT_5)
    times = [30.0, 95.0, 600.0, 3_600.0, 86_000.0]
    for number, seconds in enumerate(times):
        state = apply_rating(state, rating(4, survey=f"m{number}", seconds=seconds))
    median = snapshot(state, timedelta(hours=1), NOW, key="tp").median_answer_seconds
    assert median is not None
    assert abs(median - 600.0) / 600.0 < 0.045


@pytest.mark.parametrize("seconds", [0.0, 0.9, 1.0, 7.3, 59.0, 3_601.0, 600_000.0])
def test_answer_bins_hold_their_values_within_precision(seconds: float) -> None:
    """Every answer time must map to a bin whose value is close to it."""
    value = bin_value(answer_bin(seconds))
    if seconds >= 1.0:
        assert abs(value - seconds) / seconds < 0.045
    else:
        assert value < 1.0


def test_expire_drops_buckets_no_window_can_reach() -> None:
    """State must stay bounded for a touchpoint that runs for years."""
    state = apply_rating(new_state(Scale.CSAT_5), rating(5, at=NOW - timedelta(days=40)))
    assert any(state.buckets.values())
    assert not any(expire(state, NOW).buckets.values())


def test_state_survives_a_round_trip_through_json() -> None:
    """The changelog holds JSON; a restart must give the same figures."""
    state = apply_sent(fill([5, 3, 2]), NOW, count=4)
    restored = MetricsState.from_dict(json.loads(json.dumps(state.to_dict())))
    for window in DEFAULT_WINDOWS:
        assert snapshot(restored, window, NOW, key="tp") == snapshot(state, window, NOW, key="tp")


@pytest.mark.parametrize(
    ("window", "label"),
    [
        (timedelta(hours=1), "1h"),
        (timedelta(hours=24), "24h"),
        (timedelta(days=7), "7d"),
        (timedelta(days=28), "28d"),
        (timedelta(minutes=15), "15m"),
    ],
)
def test_window_labels_match_the_metrics_topic_keys(window: timedelta, label: str) -> None:
    """Consumers find figures by these labels; they must be stable."""
    assert window_label(window) == label


def test_rollup_keys_cover_touchpoint_channel_and_service() -> None:
    """One rating feeds all three dimensions, each with a valid key."""
    keys = rating_keys(rating(4))
    assert keys[0] == (Dimension.TOUCHPOINT, "tp-1")
    assert keys[1] == (Dimension.CHANNEL, "phone")
    assert keys[2][0] is Dimension.SERVICE
    assert keys[2][1].startswith("housing-allowance.")


def test_rollups_on_other_scales_get_their_own_key() -> None:
    """Means on 0-10 and 1-5 must never be mixed in one figure."""
    keys = rating_keys(rating(9, scale=Scale.NPS_11))
    assert keys[1] == (Dimension.CHANNEL, "phone.nps-11")


def test_distinct_service_names_never_share_a_key() -> None:
    """Two services whose slugs collide must still be told apart."""
    assert key_of("Asumistuki / Kela") != key_of("asumistuki kela")
    assert key_of("kela.asumistuki") == "kela.asumistuki"
