"""Target-window counts beside the drop detector, and the breach they lead to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.detection import DetectorConfig, TargetConfig, new_detector, step
from engine.target_window import TARGET_WINDOW_HOURS, TargetBuckets, count_answer
from schemas.alerts import AlertKind, AlertState
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def rating(number: int, score: int, at: datetime) -> Rating:
    return Rating(
        rating_id=f"r{number}",
        survey_id=f"s{number}",
        touchpoint_id="tp-1",
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=30.0,
        answered_at=at,
    )


def test_the_window_counts_top_two_answers_of_the_last_week_only() -> None:
    """Old answers must leave the window, or a recovered touchpoint stays breached."""
    buckets: TargetBuckets = {}
    buckets, tick = count_answer(buckets, rating(1, 5, START))
    buckets, tick = count_answer(buckets, rating(2, 2, START + timedelta(hours=1)))
    assert (tick.rated, tick.top_two) == (2, 1)
    # A week after the first answer: it leaves, the second (an hour later) stays.
    later = START + timedelta(hours=TARGET_WINDOW_HOURS)
    buckets, tick = count_answer(buckets, rating(3, 4, later))
    assert (tick.rated, tick.top_two) == (2, 1)
    assert len(buckets) == 2


def test_a_share_confidently_below_target_fires_a_target_breach_once() -> None:
    """The KPI target is the ops team's promise; missing it must reach them once."""
    config = DetectorConfig(target=TargetConfig(target=0.8))
    state = new_detector("tp-1", Scale.CSAT_5)
    buckets: TargetBuckets = {}
    kinds: list[tuple[AlertKind, AlertState]] = []
    for number in range(60):
        answer = rating(number, 5 if number % 2 else 2, START + timedelta(minutes=number))
        state, _ = step(state, answer, answer.answered_at, config)
        buckets, tick = count_answer(buckets, answer)
        state, alerts = step(state, tick, answer.answered_at, config)
        kinds += [(alert.kind, alert.state) for alert in alerts]
    assert kinds == [(AlertKind.TARGET_BREACH, AlertState.FIRING)]
