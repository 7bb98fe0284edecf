"""Drop, target-breach and silence detection, and the alerts they raise."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest

from engine.detection import (
    DetectorConfig,
    DetectorState,
    DropConfig,
    DropState,
    SilenceConfig,
    TargetConfig,
    Tick,
    new_detector,
    poisson_cdf,
    silence_verdict,
    step,
    target_verdict,
    update_drop,
    wilson_interval,
)
from schemas.alerts import AlertKind, AlertState
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
GOOD = (0.03, 0.04, 0.08, 0.30, 0.55)  # mean about 4.3
BAD = (0.15, 0.10, 0.12, 0.30, 0.33)  # mean about 3.6


def draw(rng: random.Random, weights: tuple[float, ...]) -> int:
    return rng.choices(range(1, 6), weights=weights)[0]


def rating(index: int, score: int, at: datetime, touchpoint: str = "tp-1") -> Rating:
    return Rating(
        rating_id=f"r{index}",
        survey_id=f"s{index}",
        touchpoint_id=touchpoint,
        service="svc",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=60.0,
        answered_at=at,
    )


def run(scores: list[int], per_day: float = 50.0) -> tuple[DetectorState, list[object]]:
    state = new_detector("tp-1", Scale.CSAT_5)
    config = DetectorConfig()
    alerts: list[object] = []
    for index, score in enumerate(scores):
        at = START + timedelta(days=index / per_day)
        state, emitted = step(state, rating(index, score, at), at, config)
        alerts.extend(emitted)
    return state, alerts


def test_a_steady_touchpoint_raises_no_alert() -> None:
    """Ops stop reading alerts that fire on noise."""
    rng = random.Random(  # noqa: S311 - reproducible test data
        1
    )
    _, alerts = run([draw(rng, GOOD) for _ in range(3_000)])
    assert alerts == []


def test_a_drop_fires_one_alert_with_figures_and_then_resolves() -> None:
    """A real drop must be reported once, with before/after, and cleared after recovery."""
    rng = random.Random(  # noqa: S311 - reproducible test data
        2
    )
    scores = (
        [draw(rng, GOOD) for _ in range(1_000)]
        + [draw(rng, BAD) for _ in range(400)]
        + [draw(rng, GOOD) for _ in range(1_500)]
    )
    _, found = run(scores)
    alerts = [alert for alert in found if alert.kind is AlertKind.DROP]  # type: ignore[attr-defined]
    states = [alert.state for alert in alerts]  # type: ignore[attr-defined]
    assert states == [AlertState.FIRING, AlertState.RESOLVED]
    firing = alerts[0]
    assert firing.kind is AlertKind.DROP  # type: ignore[attr-defined]
    assert firing.before > 4.0 > firing.after  # type: ignore[attr-defined]
    assert firing.sample_size >= DropConfig().min_sample  # type: ignore[attr-defined]
    assert firing.evidence.statistic > firing.evidence.threshold  # type: ignore[attr-defined]
    assert firing.alert_id == alerts[1].alert_id  # type: ignore[attr-defined]
    assert firing.dashboard_url.endswith("/tp-1")  # type: ignore[attr-defined]


def test_alerts_carry_no_phone_number_or_email_address() -> None:
    """Alerts travel to chat rooms and mailboxes; contact details must never be in them."""
    rng = random.Random(  # noqa: S311 - reproducible test data
        3
    )
    _, alerts = run([draw(rng, GOOD) for _ in range(600)] + [1] * 100)
    assert alerts
    for alert in alerts:
        text = alert.model_dump_json()  # type: ignore[attr-defined]
        assert "@" not in text
        assert not list(phonenumbers.PhoneNumberMatcher(text, "FI"))


def test_the_detector_is_silent_until_it_has_a_baseline() -> None:
    """A handful of bad first ratings is not evidence of a drop."""
    _, alerts = run([1] * DropConfig().min_baseline)
    assert alerts == []


def test_busier_touchpoints_get_a_higher_threshold() -> None:
    """The false-alarm budget is per month, and a busy touchpoint sees more ratings a month."""
    config = DropConfig()
    assert config.threshold(500) > config.threshold(50) > config.threshold(5)
    assert config.threshold(0) >= config.min_threshold


def test_drop_state_survives_a_round_trip_through_json() -> None:
    """The detector's state lives in a changelog; a restart must not change its verdicts."""
    state = DropState()
    for index in range(200):
        state, _ = update_drop(state, (index % 5) / 4, 600.0 * index, DropConfig())
    restored = DropState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_detector_state_survives_a_round_trip_through_json() -> None:
    """Firing alerts must still resolve after a restart."""
    rng = random.Random(  # noqa: S311 - reproducible test data
        4
    )
    state, alerts = run([draw(rng, GOOD) for _ in range(600)] + [1] * 60)
    assert alerts
    assert DetectorState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.mark.parametrize(
    ("successes", "n", "z"), [(0, 10, 1.645), (10, 10, 1.645), (42, 60, 1.96), (1, 1, 1.0)]
)
def test_wilson_interval_contains_the_share_and_stays_in_bounds(
    successes: int, n: int, z: float
) -> None:
    """A bound outside 0..1 or excluding the point estimate would misjudge targets."""
    low, high = wilson_interval(successes, n, z)
    assert 0.0 <= low <= successes / n <= high <= 1.0


def test_target_breach_needs_confidence_not_a_handful_of_ratings() -> None:
    """Three unhappy citizens must not page anyone; sixty of a hundred must."""
    config = TargetConfig(target=0.8, min_sample=30)
    assert not target_verdict(0, 3, config).breached
    assert not target_verdict(22, 30, config).breached  # 73 %, upper bound above 80 %
    assert target_verdict(60, 100, config).breached


def test_target_breach_recovers_only_at_the_target() -> None:
    """Hysteresis: an alert must not flap while the share hovers just under the target."""
    config = TargetConfig(target=0.8)
    hovering = target_verdict(78, 100, config)
    assert not hovering.breached
    assert not hovering.recovered
    assert target_verdict(81, 100, config).recovered


def test_poisson_tail_matches_a_direct_sum() -> None:
    """The silence statistic must be right for both small and large rates."""
    assert poisson_cdf(0, 3.0) == pytest.approx(0.049787, rel=1e-4)
    assert poisson_cdf(2, 3.0) == pytest.approx(0.423190, rel=1e-4)
    assert poisson_cdf(400, 500.0) < 1e-5


def test_silence_fires_on_collapse_and_ignores_quiet_touchpoints() -> None:
    """A broken integration is an alert; a touchpoint that is always quiet is not."""
    config = SilenceConfig()
    assert silence_verdict(0, 40.0, config).silent
    assert not silence_verdict(0, 3.0, config).silent
    assert not silence_verdict(35, 40.0, config).silent
    assert silence_verdict(35, 40.0, config).recovered


def test_a_silence_tick_fires_then_resolves() -> None:
    """Silence uses the same lifecycle as score alerts."""
    state = new_detector("tp-1", Scale.CSAT_5)
    config = DetectorConfig()
    silent = Tick(observed={"answers": 0}, expected={"answers": 50.0})
    state, fired = step(state, silent, START, config)
    state, again = step(state, silent, START + timedelta(hours=1), config)
    back = Tick(observed={"answers": 48}, expected={"answers": 50.0})
    _, resolved = step(state, back, START + timedelta(hours=2), config)
    assert [a.state for a in fired] == [AlertState.FIRING]
    assert fired[0].kind is AlertKind.SILENCE
    assert again == []
    assert [a.state for a in resolved] == [AlertState.RESOLVED]


def test_a_target_tick_fires_with_the_wilson_evidence() -> None:
    """The evidence tells ops why the alert is not noise."""
    state = new_detector("tp-1", Scale.CSAT_5)
    config = DetectorConfig(target=TargetConfig(target=0.85))
    _, alerts = step(state, Tick(rated=200, top_two=140), START, config)
    assert [a.kind for a in alerts] == [AlertKind.TARGET_BREACH]
    assert alerts[0].evidence.method == "wilson-upper-bound"
    assert alerts[0].evidence.statistic is not None
    assert alerts[0].evidence.statistic < 0.85


def test_ratings_of_another_touchpoint_are_ignored() -> None:
    """Detector states are per touchpoint; a misrouted rating must not move them."""
    state = new_detector("tp-1", Scale.CSAT_5)
    new, alerts = step(state, rating(1, 1, START, "tp-2"), START, DetectorConfig())
    assert new == state
    assert alerts == []
