"""The drop detector's day model: bad days, sustained drops, polarisation and old states."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from engine.detection import (
    DetectorConfig,
    DetectorState,
    DropConfig,
    DropState,
    bottom_box,
    new_detector,
    step,
    update_drop,
)
from engine.drop import baseline
from schemas.alerts import AlertKind, AlertState
from schemas.base import Scale
from tests.unit.test_detection import rating

if TYPE_CHECKING:
    from collections.abc import Iterator

DAY = 86_400.0
START = 1_767_600_000.0  # a midnight (UTC), 2026-01-05
GOOD = (0.03, 0.04, 0.08, 0.30, 0.55)  # mean about 4.3


def stream(
    rng: random.Random, days: int, per_day: int, day_sd: float, shift: float = 0.0
) -> Iterator[tuple[float, float]]:
    """Yield (normalised score, time) with a random effect per day of ``day_sd`` (normalised)."""
    for day in range(days):
        effect = rng.gauss(0.0, day_sd) + shift
        for index in range(per_day):
            score = rng.choices(range(5), weights=GOOD)[0] / 4
            value = min(1.0, max(0.0, score + effect))
            yield value, START + day * DAY + 8 * 3600 + index * (10 * 3600 / per_day)


def learnt(seed: int, per_day: int, days: int = 60, day_sd: float = 0.025) -> DropState:
    state, config = DropState(), DropConfig()
    for value, at in stream(random.Random(seed), days, per_day, day_sd):  # noqa: S311 - test data
        state, _ = update_drop(state, value, at, config)
    return state


def test_a_busy_touchpoint_learns_its_day_to_day_spread() -> None:
    """Without the spread, 500 ratings of one ordinary bad day read as 500 pieces of evidence."""
    state = learnt(1, per_day=500)
    spread = baseline(state, DropConfig()).day_var ** 0.5
    assert 0.015 < spread < 0.04  # the stream's own day effect is 0.025 (0.1 points)


def test_an_ordinary_bad_day_alone_does_not_fire_at_any_volume() -> None:
    """Ops switch off a detector that wakes them for a busy Monday."""
    config = DropConfig()
    for per_day in (50, 500, 2_000):
        state = replace(learnt(2, per_day=min(per_day, 500)), statistic=0.0, carry=0.0)
        base = baseline(state, config)
        bad = base.mean - 3 * base.day_var**0.5  # three day-SDs below, every rating of the day
        day = START + 61 * DAY
        for index in range(per_day):
            state, signal = update_drop(state, bad, day + index * 30.0, config)
            assert signal is None, (per_day, index)


def test_a_sustained_drop_fires_within_days() -> None:
    """The same shortfall on day after day is no longer a bad day but a drop."""
    config = DropConfig()
    state = learnt(3, per_day=500)
    fired_on = None
    data = stream(random.Random(4), 10, 500, 0.025, shift=-0.125)  # noqa: S311 - 0.5 points
    for value, at in data:
        state, signal = update_drop(state, value, at + 60 * DAY, config)
        if signal is not None and signal.fired:
            fired_on = (at - START) / DAY
            break
    assert fired_on is not None
    assert fired_on < 3


def test_a_late_rating_counts_in_the_open_day() -> None:
    """Days move forward only: a late answer must not reopen or close a day."""
    config = DropConfig()
    state = learnt(5, per_day=50, days=10)
    open_day = state.day
    state, _ = update_drop(state, 0.75, START + 3 * DAY, config)
    assert state.day == open_day
    assert state.day_n >= 1


def test_the_order_of_a_days_ratings_does_not_change_what_is_learnt() -> None:
    """A day is judged by what it held, not by which answer came first."""
    config = DropConfig()
    rng = random.Random(6)  # noqa: S311 - test data
    ratings = list(stream(rng, 30, 40, 0.025))
    by_day: dict[int, list[float]] = {}
    for value, at in ratings:
        by_day.setdefault(int(at // DAY), []).append(value)
    shuffled = []
    for day_ratings in by_day.values():
        values = list(day_ratings)
        rng.shuffle(values)
        shuffled.extend(values)
    first, second = DropState(), DropState()
    for (value, at), other in zip(ratings, shuffled, strict=True):
        first, _ = update_drop(first, value, at, config)
        second, _ = update_drop(second, other, at, config)
    assert first.base_n == second.base_n > 0
    assert abs(first.base_mean - second.base_mean) < 1e-9
    assert abs(first.tau_num - second.tau_num) < 1e-6
    assert abs(first.base_ss - second.base_ss) < 1e-6


def test_a_state_of_the_previous_detector_loads() -> None:
    """Workers restart onto changelogs written by the previous version."""
    old = {
        "base_n": 4000,
        "base_mean": 0.8,
        "base_var": 0.06,
        "pending": [0.75] * 50,
        "statistic": 3.0,
        "run_n": 12,
        "run_sum": 9.0,
        "recovery": 0.0,
        "firing": True,
        "mean_gap_seconds": 1700.0,
        "last_at": START,
    }
    state = DropState.from_dict(old)
    assert state.base_n == 4000
    assert abs(state.base_mean - 0.8) < 1e-12
    assert state.firing
    assert state.to_dict() == DropState.from_dict(json.loads(json.dumps(state.to_dict()))).to_dict()
    detector = {
        "touchpoint_id": "tp-1",
        "scale": "csat-5",
        "drop": old,
        "firing": {"drop": ["drop-abc", "2026-01-05T08:00:00+00:00", "warning"]},
        "last_fired": {"drop": "2026-01-05T08:00:00+00:00"},
    }
    loaded = DetectorState.from_dict(detector)
    assert loaded.polarisation == DropState()
    assert AlertKind.DROP in loaded.firing
    # It keeps working: a good rating is taken without error.
    at = datetime.fromtimestamp(START + DAY, tz=UTC)
    loaded, _ = step(loaded, rating(1, 5, at), at, DetectorConfig())
    assert loaded.drop.day_n == 1


def test_bottom_box_is_one_and_two_or_a_detractor() -> None:
    """The polarisation signal counts citizens the service failed completely."""
    assert [bottom_box(Scale.CSAT_5, s) for s in range(1, 6)] == [True, True, False, False, False]
    assert [bottom_box(Scale.NPS_11, s) for s in (0, 6, 7, 10)] == [True, True, False, False]


def test_polarisation_is_found_when_some_citizens_are_failed_completely() -> None:
    """More 1s with a small mean shift: a service that fails some citizens entirely."""
    rng = random.Random(7)  # noqa: S311 - test data
    state = new_detector("tp-1", Scale.CSAT_5)
    config = DetectorConfig()
    found = []
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    for index in range(50 * 70):
        at = start + timedelta(days=index // 50, minutes=12 * (index % 50))
        score = rng.choices(range(1, 6), weights=GOOD)[0]
        if index >= 50 * 60 and rng.random() < 0.15:
            score = 1
        state, alerts = step(state, rating(index, score, at), at, config)
        found.extend((index, alert) for alert in alerts)
    kinds = {alert.kind for _, alert in found if alert.state is AlertState.FIRING}
    assert AlertKind.POLARISATION in kinds
    first = min(index for index, alert in found if alert.kind is AlertKind.POLARISATION)
    assert first >= 50 * 60
    alert = next(alert for _, alert in found if alert.kind is AlertKind.POLARISATION)
    assert alert.after > alert.before
    assert "1-2" in alert.summary


def test_the_drop_to_detect_is_half_a_point_of_the_touchpoints_own_scale() -> None:
    """On a J-shaped 0-10 touchpoint half a point is few standard deviations; look for it."""
    from engine.detection import drop_config_for  # noqa: PLC0415 - only this test needs it

    config = DetectorConfig()
    csat = drop_config_for(config.drop, Scale.CSAT_5, config.drop_points)
    nps = drop_config_for(config.drop, Scale.NPS_11, config.drop_points)
    assert csat.shift == 0.125
    assert nps.shift == 0.05
    # The wider the spread, the smaller k: the same half point is fewer deviations.
    assert nps.reference_for(0.25) < nps.reference_for(0.1)
    # ... and a smaller k needs a higher bar for the same false-alarm budget.
    assert nps.threshold(50, 0.0, 0.1) > nps.threshold(50, 0.0, 0.25)
