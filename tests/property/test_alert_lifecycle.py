"""The alert lifecycle under any sequence of findings and ticks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engine.detection import DetectorConfig, TargetConfig, Tick, new_detector, step
from schemas.alerts import AlertKind, AlertState, ScoreDropAlert
from schemas.base import Scale

START = datetime(2026, 1, 5, tzinfo=UTC)
CONFIG = DetectorConfig(target=TargetConfig(target=0.8, min_sample=20))


class AlertLifecycle(RuleBasedStateMachine):
    """Drive one touchpoint with random ticks and time steps; watch every alert."""

    def __init__(self) -> None:
        super().__init__()
        self.state = new_detector("tp-1", Scale.CSAT_5)
        self.now = START
        self.emitted: list[ScoreDropAlert] = []

    @rule(minutes=st.integers(0, 600))
    def time_passes(self, minutes: int) -> None:
        """Let the clock run, so cool-downs can end."""
        self.now += timedelta(minutes=minutes)

    @rule(
        observed=st.integers(0, 80),
        expected=st.floats(0.0, 80.0),
        rated=st.integers(0, 200),
        share=st.floats(0.0, 1.0),
    )
    def tick(self, observed: int, expected: float, rated: int, share: float) -> None:
        """Hand the detector window counts, as the metrics stage does."""
        event = Tick(
            observed={"answers": observed},
            expected={"answers": expected},
            rated=rated,
            top_two=round(rated * share),
        )
        self.state, alerts = step(self.state, event, self.now, CONFIG)
        self.emitted.extend(alerts)

    @invariant()
    def firing_and_resolved_alternate(self) -> None:
        """Alternate firing and resolved: anything else would confuse ops."""
        for kind in AlertKind:
            states = [a.state for a in self.emitted if a.kind is kind]
            expected = [
                AlertState.FIRING if i % 2 == 0 else AlertState.RESOLVED for i in range(len(states))
            ]
            assert states == expected

    @invariant()
    def nothing_fires_twice_within_the_cooldown(self) -> None:
        """De-duplication and cool-down keep a flapping signal from paging repeatedly."""
        for kind in AlertKind:
            starts = [
                a.started_at
                for a in self.emitted
                if a.kind is kind and a.state is AlertState.FIRING
            ]
            assert all(b - a >= CONFIG.cooldown for a, b in itertools.pairwise(starts))

    @invariant()
    def resolved_alerts_keep_their_identity(self) -> None:
        """Close the alert that fired with the resolved event, never a new one."""
        for kind in AlertKind:
            of_kind = [a for a in self.emitted if a.kind is kind]
            for firing, resolved in zip(of_kind[::2], of_kind[1::2], strict=False):
                assert resolved.alert_id == firing.alert_id
                assert resolved.resolved_at is not None
                assert resolved.resolved_at >= firing.started_at


TestAlertLifecycle = AlertLifecycle.TestCase
TestAlertLifecycle.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
