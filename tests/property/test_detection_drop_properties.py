"""The drop detector's day model under generated streams: bad days never fire alone."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.detection import DropConfig, DropState, update_drop
from engine.drop import baseline

DAY = 86_400.0
START = 1_767_600_000.0
GOOD = (0.03, 0.04, 0.08, 0.30, 0.55)
CONFIG = DropConfig()


def learnt(seed: int, per_day: int, day_sd: float) -> DropState:
    rng = random.Random(seed)  # noqa: S311 - test data
    state = DropState()
    for day in range(21):
        effect = rng.gauss(0.0, day_sd)
        for index in range(per_day):
            value = rng.choices(range(5), weights=GOOD)[0] / 4 + effect
            at = START + day * DAY + 8 * 3600 + index * 36_000 / per_day
            state, _ = update_drop(state, min(1.0, max(0.0, value)), at, CONFIG)
    # A stream that (by chance) alarmed while the baseline was young has none to judge by.
    assume(not state.firing and state.base_n >= CONFIG.min_baseline)
    return replace(state, statistic=0.0, carry=0.0, seg_n=0, seg_sum=0.0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    per_day=st.sampled_from([5, 50, 200]),
    day_sd=st.sampled_from([0.0, 0.01, 0.03]),
    depth=st.floats(0.0, 1.0),
    count=st.integers(1, 3_000),
)
def test_one_day_within_three_day_sds_never_fires_alone(
    seed: int, per_day: int, day_sd: float, depth: float, count: int
) -> None:
    """However many ratings a bad day has, its share of the evidence is bounded."""
    state = learnt(seed, per_day, day_sd)
    day = START + 30 * DAY
    # Opening the day learns the days that left the hold-back: judge against that baseline.
    state, _ = update_drop(state, baseline(state, CONFIG).mean, day - 1.0, CONFIG)
    base = baseline(state, CONFIG)
    value = base.mean - depth * 3 * base.day_var**0.5
    for index in range(count):
        state, signal = update_drop(state, value, day + index * 20.0, CONFIG)
        assert signal is None


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), per_day=st.sampled_from([20, 100]))
def test_a_drop_sustained_over_a_week_fires(seed: int, per_day: int) -> None:
    """A drop of 0.6 points held for a week is never mistaken for a run of bad days."""
    state = learnt(seed, per_day, 0.02)
    fired = False
    for index in range(7 * per_day):
        at = START + 30 * DAY + (index // per_day) * DAY + (index % per_day) * 36_000 / per_day
        state, signal = update_drop(state, 0.65, at, CONFIG)
        fired = fired or (signal is not None and signal.fired)
    assert fired
