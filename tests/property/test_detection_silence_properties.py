"""Silence detection under any weekly traffic profile, on a fake clock.

A simulated touchpoint sends a steady, evenly spaced stream whose hourly
rate follows a weekly profile; the detector is asked on a fixed schedule, as
the worker's timer does. Properties: a steady stream never fires; a stream
that stops fires within one window and one check; and the alert resolves
within one window and one check once traffic is back.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detection import DetectorConfig, DetectorState, new_detector, step
from engine.silence import ActivityConfig, Signal, SignalCounts, activity_tick
from schemas.alerts import AlertKind, AlertState, ScoreDropAlert
from schemas.base import Scale

HOUR = 3_600
CONFIG = ActivityConfig(window=timedelta(hours=1), weeks=2, min_weeks=2, time_zone="UTC")
DETECTOR = DetectorConfig()
CHECK = timedelta(minutes=5)
#: A Monday; the stream starts four weeks before the first check.
BEGIN = datetime(2026, 3, 2, tzinfo=UTC)
FIRST_CHECK = BEGIN + timedelta(weeks=4)


def no_holidays(_day: date) -> bool:
    return False


class Stream:
    """Evenly spaced events: ``profile[hour of week]`` of them in each hour, except in gaps."""

    def __init__(self, profile: list[int], gaps: list[tuple[datetime, datetime]]) -> None:
        self.profile = profile
        self.gaps = [(a.timestamp(), b.timestamp()) for a, b in gaps]

    def _times(self, hour: int) -> list[float]:
        rate = self.profile[(hour - int(BEGIN.timestamp()) // HOUR) % len(self.profile)]
        return [
            hour * HOUR + (i + 0.5) * HOUR / rate
            for i in range(rate)
            if not any(a <= hour * HOUR + (i + 0.5) * HOUR / rate < b for a, b in self.gaps)
        ]

    def counts(self, now: datetime) -> SignalCounts:
        """Give what the worker would hold at ``now``: hourly history and the recent buckets."""
        seconds = now.timestamp()
        hourly: dict[int, int] = {}
        recent: dict[int, int] = {}
        first_hour = int(BEGIN.timestamp()) // HOUR
        last_hour = math.floor(seconds / HOUR)
        reference_hours = {
            last_hour - 24 * 7 * k + offset for k in (1, 2, 3, 4) for offset in (-2, -1, 0, 1)
        }
        recent_from = seconds - CONFIG.window.total_seconds() - CONFIG.resolution
        for hour in sorted(reference_hours | {last_hour - 1, last_hour}):
            if hour < first_hour:
                continue
            times = [t for t in self._times(hour) if t <= seconds]
            if times:
                hourly[hour] = len(times)
            for t in times:
                if t >= recent_from:
                    begins = int(t // CONFIG.resolution) * CONFIG.resolution
                    recent[begins] = recent.get(begins, 0) + 1
        return SignalCounts(first_at=BEGIN.timestamp(), hourly=hourly, recent=recent)


def judge(
    stream: Stream, state: DetectorState, start: datetime, end: datetime
) -> tuple[DetectorState, list[tuple[datetime, ScoreDropAlert]]]:
    """Ask the detector every check interval from ``start`` to ``end``."""
    found: list[tuple[datetime, ScoreDropAlert]] = []
    now = start
    while now <= end:
        tick = activity_tick({Signal.CONTACTS: stream.counts(now)}, now, CONFIG, no_holidays)
        state, alerts = step(state, tick, now, DETECTOR)
        found += [(now, alert) for alert in alerts]
        now += CHECK
    return state, found


#: A weekly profile of hourly rates, repeated from a day's pattern with busier weekdays.
profiles = st.builds(
    lambda day, weekend: [
        rate if weekday < 5 else round(rate * weekend) for weekday in range(7) for rate in day
    ],
    st.lists(st.integers(0, 240), min_size=24, max_size=24),
    st.floats(0.0, 1.0),
)


@settings(max_examples=40, deadline=None)
@given(profile=profiles, start_hour=st.integers(0, 24 * 7 - 1))
def test_a_steady_stream_never_fires(profile: list[int], start_hour: int) -> None:
    """Nights, weekends and busy mornings alike: what the baseline predicts is no alert."""
    stream = Stream(profile, [])
    start = FIRST_CHECK + timedelta(hours=start_hour)
    _, found = judge(stream, new_detector("tp-1", Scale.CSAT_5), start, start + timedelta(hours=6))
    assert found == []


@settings(max_examples=25, deadline=None)
@given(
    rate=st.integers(30, 300),
    stop_minutes=st.integers(0, 7 * 24 * 60 - 1),
    outage_hours=st.integers(2, 4),
)
def test_a_stream_that_stops_fires_within_a_window_and_resolves_when_it_returns(
    rate: int, stop_minutes: int, outage_hours: int
) -> None:
    """A broken integration is reported within the window, and cleared once traffic is back."""
    stream_stop = FIRST_CHECK + timedelta(minutes=stop_minutes)
    back = stream_stop + timedelta(hours=outage_hours)
    stream = Stream([rate] * 24 * 7, [(stream_stop, back)])
    state = new_detector("tp-1", Scale.CSAT_5)
    bound = CONFIG.window + CHECK
    state, before = judge(stream, state, stream_stop - timedelta(hours=2), stream_stop)
    state, during = judge(stream, state, stream_stop + CHECK, back)
    _, after = judge(stream, state, back + CHECK, back + 3 * bound)
    assert before == []
    assert [(a.kind, a.state) for _, a in during] == [(AlertKind.SILENCE, AlertState.FIRING)]
    fired_at = during[0][0]
    assert fired_at - stream_stop <= bound
    assert [(a.kind, a.state) for _, a in after] == [(AlertKind.SILENCE, AlertState.RESOLVED)]
    assert after[0][0] - back <= bound
    assert after[0][1].alert_id == during[0][1].alert_id


@settings(max_examples=30, deadline=None)
@given(
    day=st.lists(st.integers(0, 9), min_size=24, max_size=24),
    stop_hour=st.integers(0, 24 * 7 - 1),
)
def test_a_quiet_touchpoint_never_fires_whatever_stops(day: list[int], stop_hour: int) -> None:
    """Fewer than ten events an hour: an empty hour is no evidence of a breakage."""
    stop = FIRST_CHECK + timedelta(hours=stop_hour)
    stream = Stream(day * 7, [(stop, stop + timedelta(hours=3))])
    _, found = judge(stream, new_detector("tp-1", Scale.CSAT_5), stop, stop + timedelta(hours=3))
    assert found == []
