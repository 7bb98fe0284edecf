"""The metrics, roll-up and alerting stages' behaviour, the same in memory and on Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from schemas.alerts import AlertKind, AlertState
from schemas.samples import SAMPLES
from tests.behaviour.metrics_harness import TARGETED, rating

if TYPE_CHECKING:
    from tests.behaviour.metrics_harness import MetricsHarness, Outcome


def _run() -> str:
    """Give a name unique to this run, so a shared broker's old records never match."""
    return uuid.uuid4().hex[:8]


async def test_ratings_in_are_figures_out_for_the_touchpoint_and_its_rollups(
    metrics: MetricsHarness,
) -> None:
    """Each rating counts for its touchpoint, its channel and its service, once."""
    run = _run()
    touchpoint = f"tp-{run}"
    for number, score in enumerate([5, 4, 3]):
        await metrics.rating(rating(f"s-{run}-{number}", score, touchpoint_id=touchpoint))
    owner = f"touchpoint:{touchpoint}"
    outcome = await metrics.settle(lambda o: o.count(owner) == 3 and o.count("channel:phone") == 3)
    figures = outcome.figures[f"{owner}:24h"]
    assert (figures.count, figures.mean, figures.distribution) == (3, 4.0, {"3": 1, "4": 1, "5": 1})
    assert outcome.count("service:tax") == 3
    assert outcome.alerts == []
    assert outcome.dead_letters == []


async def test_a_replayed_rating_is_counted_once_and_a_new_revision_replaces_it(
    metrics: MetricsHarness,
) -> None:
    """A replay after a restart, or an old revision arriving late, never counts a survey twice."""
    run = _run()
    touchpoint = f"tp-{run}"
    first = rating(f"s-{run}-a", 2, touchpoint_id=touchpoint)
    await metrics.rating(first)
    await metrics.rating(first)  # replayed
    await metrics.rating(rating(f"s-{run}-a", 5, touchpoint_id=touchpoint, revision=2))
    await metrics.rating(first)  # the old revision again, after the new one
    await metrics.rating(rating(f"s-{run}-b", 4, touchpoint_id=touchpoint))
    owner = f"touchpoint:{touchpoint}"

    def counted(outcome: Outcome) -> bool:
        figures = outcome.figures.get(f"{owner}:24h")
        return figures is not None and figures.count == 2 and figures.mean == 4.5

    outcome = await metrics.settle(counted)
    assert outcome.figures[f"{owner}:24h"].distribution == {"4": 1, "5": 1}
    assert outcome.dead_letters == []


async def test_a_target_breach_is_one_alert_and_one_notification(metrics: MetricsHarness) -> None:
    """Operations hear of a breach once; a replayed alert record notifies no one again."""
    run = _run()
    start = datetime.now(UTC) - timedelta(hours=1)
    for number in range(40):
        answered = start + timedelta(minutes=number)
        await metrics.rating(rating(f"s-{run}-{number}", 1, touchpoint_id=TARGETED, at=answered))

    def notified(outcome: Outcome) -> bool:
        return any(a.touchpoint_id == TARGETED for a in outcome.alerts) and bool(outcome.notified)

    outcome = await metrics.settle(notified)
    [alert] = [a for a in outcome.alerts if a.touchpoint_id == TARGETED]
    assert (alert.kind, alert.state) == (AlertKind.TARGET_BREACH, AlertState.FIRING)
    assert outcome.notified == [(alert.alert_id, "firing")]

    # The same alert again (a replay), then another one behind it in the same partition.
    await metrics.raw("alerts", TARGETED.encode(), alert.model_dump_json().encode())
    marker = alert.model_copy(update={"alert_id": f"a-{run}-marker"})
    await metrics.raw("alerts", TARGETED.encode(), marker.model_dump_json().encode())
    outcome = await metrics.settle(lambda o: (marker.alert_id, "firing") in o.notified)
    assert outcome.notified == [(alert.alert_id, "firing"), (marker.alert_id, "firing")]


async def test_a_bad_rating_is_a_dead_letter_of_the_metrics_stage_with_its_reason(
    metrics: MetricsHarness,
) -> None:
    """A broken record is set aside with why, and the ratings around it are counted."""
    run = _run()
    touchpoint = f"tp-{run}"
    await metrics.rating(rating(f"s-{run}-before", 4, touchpoint_id=touchpoint))
    await metrics.raw("ratings", touchpoint.encode(), b'{"type": "Rating", "rating_id": ')
    await metrics.raw("ratings", touchpoint.encode(), b'{"type": "Rating", "score": "many"}')
    await metrics.rating(rating(f"s-{run}-after", 2, touchpoint_id=touchpoint))
    owner = f"touchpoint:{touchpoint}"
    outcome = await metrics.settle(lambda o: o.count(owner) == 2 and len(o.dead_letters) >= 2)
    assert [letter.stage for letter in outcome.dead_letters] == ["metrics", "metrics"]
    codes = sorted(letter.reason_code for letter in outcome.dead_letters)
    assert codes[0] == "invalid_json"
    assert codes[1] != "invalid_json"
    assert all("many" not in letter.reason for letter in outcome.dead_letters)


async def test_a_record_that_is_no_alert_is_a_dead_letter_of_the_notifier(
    metrics: MetricsHarness,
) -> None:
    """The alerting stage sets a stranger aside and still notifies the alert behind it."""
    run = _run()
    alert = SAMPLES["score-drop-alert"](datetime.now(UTC))
    alert = alert.model_copy(update={"alert_id": f"a-{run}"})
    key = alert.touchpoint_id.encode()
    await metrics.raw("alerts", key, b'{"type": "ScoreDropAlert", "alert_id": 7}')
    await metrics.raw("alerts", key, alert.model_dump_json().encode())
    outcome = await metrics.settle(lambda o: bool(o.notified) and bool(o.dead_letters))
    assert outcome.notified == [(alert.alert_id, alert.state.value)]
    [letter] = outcome.dead_letters
    assert (letter.stage, letter.reason_code) == ("notifier", "not_an_alert")
