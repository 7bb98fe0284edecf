"""KPI-breach detection: the mean score (or NPS) of the last week against ``kpi_target``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.detection import (
    DetectorConfig,
    KpiConfig,
    KpiWindow,
    TargetConfig,
    Tick,
    kpi_top,
    kpi_value,
    kpi_verdict,
    mean_upper_bound,
    new_detector,
    step,
    student_t_quantile,
)
from engine.target_window import TargetBuckets, count_answer
from schemas.alerts import AlertKind, AlertState
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import Settings
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating
from streams.stages.metrics_rules import detector_configs

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def window(scores: list[int], scale: Scale = Scale.CSAT_5) -> KpiWindow:
    values = [kpi_value(scale, score) for score in scores]
    return KpiWindow(n=len(values), total=sum(values), total_sq=sum(v * v for v in values))


def rating(number: int, score: int, at: datetime, scale: Scale = Scale.CSAT_5) -> Rating:
    return Rating(
        rating_id=f"r{number}",
        survey_id=f"s{number}",
        touchpoint_id="tp-1",
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=scale,
        score=score,
        normalised=scale.normalise(score),
        answered_after_seconds=30.0,
        answered_at=at,
    )


@pytest.mark.parametrize(
    ("probability", "df", "exact"),
    [(0.95, 10, 1.812461), (0.95, 29, 1.699127), (0.975, 100, 1.983972), (0.99, 30, 2.457262)],
)
def test_the_t_quantile_matches_published_tables(probability: float, df: int, exact: float) -> None:
    """A wrong quantile would move every KPI verdict."""
    assert student_t_quantile(probability, df) == pytest.approx(exact, rel=1e-3)


def test_nps_answers_count_as_promoters_passives_and_detractors() -> None:
    """The mean of these values is the NPS, so the same bound judges an NPS target."""
    assert [kpi_value(Scale.NPS_11, s) for s in (0, 6, 7, 8, 9, 10)] == [
        -100.0,
        -100.0,
        0.0,
        0.0,
        100.0,
        100.0,
    ]
    assert kpi_value(Scale.CSAT_5, 4) == 4.0
    assert kpi_top(Scale.NPS_11) == 100.0
    assert kpi_top(Scale.CES_7) == 7.0


def test_identical_answers_still_leave_room_above_their_mean() -> None:
    """Thirty threes are not proof that the mean cannot be 3.1: the plus-one keeps a margin."""
    upper = mean_upper_bound(window([3] * 30), 5.0, 0.95)
    assert 3.05 < upper < 3.5


def test_a_handful_of_bad_ratings_is_not_a_breach() -> None:
    """The issue's rule: with statistical confidence, not on a handful of ratings."""
    config = KpiConfig(target=4.2, min_sample=30)
    assert not kpi_verdict(window([1, 2, 1, 2, 1]), 5.0, config).breached
    assert kpi_verdict(window([1, 2, 1, 2, 1]), 5.0, config).upper is None


def test_a_mean_confidently_below_target_is_a_breach_and_near_target_is_not() -> None:
    """A 3.4 over 100 answers misses a 4.2 target; a spread-out 4.0 over 40 may not."""
    config = KpiConfig(target=4.2)
    low = window([5, 4, 3, 3, 2] * 20)  # mean 3.4
    near = window([5, 5, 4, 4, 3] * 8)  # mean 4.2: on target
    slightly = window([5, 5, 5, 3, 2] * 8)  # mean 4.0, 40 widely spread answers
    assert kpi_verdict(low, 5.0, config).breached
    assert not kpi_verdict(near, 5.0, config).breached
    assert not kpi_verdict(slightly, 5.0, config).breached


def test_a_breach_recovers_only_at_the_target() -> None:
    """Hysteresis: an alert must not flap while the mean hovers just under the target."""
    config = KpiConfig(target=4.2)
    hovering = kpi_verdict(window([5, 4, 4, 4, 4] * 40), 5.0, config)  # mean 4.2
    assert hovering.recovered
    under = kpi_verdict(window([5, 4, 4, 4, 3] * 40), 5.0, config)  # mean 4.0
    assert not under.recovered


def test_a_kpi_tick_fires_and_resolves_a_kpi_breach_with_its_evidence() -> None:
    """Ops see the mean, the bound and the target, and the alert clears at the target."""
    config = DetectorConfig(kpi=KpiConfig(target=4.0))
    state = new_detector("tp-1", Scale.CSAT_5)
    state, fired = step(state, Tick(kpi=window([4, 3, 3, 2] * 20)), START, config)
    state, again = step(state, Tick(kpi=window([4, 3, 3, 2] * 20)), START, config)
    _, resolved = step(state, Tick(kpi=window([5, 4, 4, 4] * 20)), START, config)
    assert [(a.kind, a.state) for a in fired] == [(AlertKind.KPI_BREACH, AlertState.FIRING)]
    assert again == []
    assert [(a.kind, a.state) for a in resolved] == [(AlertKind.KPI_BREACH, AlertState.RESOLVED)]
    alert = fired[0]
    assert alert.after == 3.0
    assert alert.target == 4.0
    assert alert.evidence.method == "student-t-upper-bound"
    assert alert.evidence.statistic is not None
    assert alert.after < alert.evidence.statistic < alert.target
    assert alert.sample_size == 80


def test_an_nps_target_is_judged_on_the_nps() -> None:
    """On nps-11 the KPI target is an NPS, not a mean score."""
    config = DetectorConfig(kpi=KpiConfig(target=30.0))
    state = new_detector("tp-1", Scale.NPS_11)
    answers = window([10, 9, 8, 7, 6, 3] * 20, Scale.NPS_11)  # NPS 0
    _, alerts = step(state, Tick(kpi=answers), START, config)
    assert [a.kind for a in alerts] == [AlertKind.KPI_BREACH]
    assert alerts[0].after == 0.0
    assert "NPS" in alerts[0].summary


def test_kpi_and_csat_targets_alert_separately() -> None:
    """Two targets, two alerts: clearing one must not clear the other."""
    config = DetectorConfig(target=TargetConfig(target=0.9), kpi=KpiConfig(target=4.5))
    state = new_detector("tp-1", Scale.CSAT_5)
    tick = Tick(rated=100, top_two=60, kpi=window([5, 4, 3, 2, 1] * 20))
    state, alerts = step(state, tick, START, config)
    assert sorted(a.kind for a in alerts) == [AlertKind.KPI_BREACH, AlertKind.TARGET_BREACH]
    _, cleared = step(state, Tick(rated=100, top_two=95), START, config)
    assert [(a.kind, a.state) for a in cleared] == [(AlertKind.TARGET_BREACH, AlertState.RESOLVED)]


def test_the_target_window_sums_kpi_values_and_reads_old_buckets() -> None:
    """Buckets stored before the KPI was counted must not break the detector after an upgrade."""
    old: TargetBuckets = {str(int(START.timestamp()) // 3_600 - 1): [3, 2]}
    buckets, tick = count_answer(old, rating(1, 2, START))
    buckets, tick = count_answer(buckets, rating(2, 4, START + timedelta(minutes=1)))
    assert tick.rated == 5
    assert tick.kpi == KpiWindow(n=2, total=6.0, total_sq=20.0)


def test_a_week_of_low_scores_fires_one_kpi_breach() -> None:
    """End to end in the engine: the ratings of the week lead to the KPI alert, once."""
    config = DetectorConfig(kpi=KpiConfig(target=4.0))
    state = new_detector("tp-1", Scale.CSAT_5)
    buckets: TargetBuckets = {}
    found: list[tuple[AlertKind, AlertState]] = []
    for number in range(120):
        answer = rating(number, (2, 3, 4)[number % 3], START + timedelta(minutes=30 * number))
        state, alerts = step(state, answer, answer.answered_at, config)
        buckets, tick = count_answer(buckets, answer)
        state, more = step(state, tick, answer.answered_at, config)
        found += [(a.kind, a.state) for a in alerts + more]
    assert found == [(AlertKind.KPI_BREACH, AlertState.FIRING)]


def test_the_worker_takes_kpi_targets_from_the_touchpoint_catalogue() -> None:
    """A kpi_target in [touchpoints.<id>] is what operators set; it must reach the detector."""
    settings = Settings.model_validate(
        {
            "secrets": {
                "pseudonymisation_key": "unit-pseudonymisation-key-0123456789abc",
                "link_signing_key": "unit-link-signing-key-0123456789abcdef",
            },
            "touchpoints": {"phone": {"kpi_target": 4.2}, "desk": {}},
            "alerts": {"csat_targets": {"web": 0.8}, "kpi_min_sample": 50},
        }
    )
    default, configs = detector_configs(settings)
    assert sorted(configs) == ["phone", "web"]
    assert configs["phone"].kpi.target == 4.2
    assert configs["phone"].kpi.min_sample == 50
    assert configs["phone"].target.target is None
    assert configs["web"].target.target == 0.8
    assert configs["web"].kpi.target is None
    assert default.kpi.target is None
