"""Silence detection: the seasonal baseline, the window counts, and the alerts they lead to."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.detection import (
    DetectorConfig,
    SilenceConfig,
    TargetConfig,
    Tick,
    new_detector,
    step,
)
from engine.silence import (
    ActivityConfig,
    Signal,
    SignalCounts,
    activity_tick,
    buckets_of,
    expected_count,
    expired,
    observed_count,
    reference_days,
)
from schemas.alerts import AlertKind, AlertState
from schemas.base import Scale

UTC_HOURLY = ActivityConfig(window=timedelta(hours=1), weeks=4, min_weeks=2, time_zone="UTC")
#: A Wednesday in February, at ten in the morning (UTC).
NOW = datetime(2026, 2, 11, 10, 0, tzinfo=UTC)
HOUR = 3_600


def no_holidays(_day: date) -> bool:
    return False


def steady(
    per_hour: int, now: datetime, config: ActivityConfig, *, since: datetime | None = None
) -> SignalCounts:
    """Count a stream with ``per_hour`` events every hour, evenly spaced, up to ``now``."""
    start = since or now - timedelta(weeks=config.weeks + 1)
    hourly: dict[int, int] = {}
    recent: dict[int, int] = {}
    at = start
    gap = timedelta(seconds=HOUR / per_hour)
    while at < now:
        buckets = buckets_of(at, now, config)
        if buckets.hour is not None:
            hourly[buckets.hour] = hourly.get(buckets.hour, 0) + 1
        if buckets.recent is not None:
            recent[buckets.recent] = recent.get(buckets.recent, 0) + 1
        at += gap
    return SignalCounts(first_at=start.timestamp(), hourly=hourly, recent=recent)


def test_reference_days_are_the_same_weekday_in_earlier_weeks() -> None:
    """A Monday is compared with Mondays: traffic has a weekly rhythm."""
    days = reference_days(date(2026, 2, 11), 3, no_holidays)
    assert days == [date(2026, 2, 4), date(2026, 1, 28), date(2026, 1, 21)]


def test_reference_days_skip_holidays_and_reach_further_back() -> None:
    """Epiphany's empty office must not lower the baseline of an ordinary Tuesday."""
    epiphany = date(2026, 1, 6)
    days = reference_days(date(2026, 1, 13), 2, lambda day: day == epiphany)
    assert days == [date(2025, 12, 30), date(2025, 12, 23)]


def test_on_a_holiday_the_reference_days_are_sundays() -> None:
    """Public offices keep Sunday hours on a holiday, so a Sunday is the fair comparison."""
    independence_day = date(2025, 12, 6)  # a Saturday
    days = reference_days(independence_day, 2, lambda day: day == independence_day)
    assert days == [date(2025, 11, 30), date(2025, 11, 23)]
    assert all(day.weekday() == 6 for day in days)


def test_a_steady_stream_expects_what_it_sees() -> None:
    """With no change, observed and expected agree, so nothing can look silent."""
    counts = steady(60, NOW, UTC_HOURLY)
    expected = expected_count(counts, NOW, UTC_HOURLY, no_holidays)
    assert len(expected.days) == UTC_HOURLY.weeks
    assert expected.expected == pytest.approx(60 * (HOUR - UTC_HOURLY.resolution) / HOUR, rel=0.05)
    assert observed_count(counts, NOW, UTC_HOURLY) == pytest.approx(expected.expected, abs=2)


def test_a_new_touchpoint_has_no_expected_count_until_it_has_weeks_of_history() -> None:
    """Without a baseline, silence is no evidence: a touchpoint just switched on must not alert."""
    counts = steady(60, NOW, UTC_HOURLY, since=NOW - timedelta(days=10))
    expected = expected_count(counts, NOW, UTC_HOURLY, no_holidays)
    assert expected.days == (date(2026, 2, 4),)
    assert expected.expected == 0.0


def test_the_baseline_follows_local_time_across_a_daylight_saving_change() -> None:
    """Helsinki offices open at eight local time in winter and in summer alike."""
    zone = ZoneInfo("Europe/Helsinki")
    config = ActivityConfig(window=timedelta(hours=1), weeks=2, min_weeks=2)
    now = datetime(2026, 4, 1, 9, 0, tzinfo=zone)  # DST began on 29 March
    hourly: dict[int, int] = {}
    for day in (date(2026, 3, 25), date(2026, 3, 18)):
        opening = datetime(day.year, day.month, day.day, 8, 0, tzinfo=zone)
        hourly[int(opening.timestamp()) // HOUR] = 120
    counts = SignalCounts(first_at=now.timestamp() - 30 * 86_400, hourly=hourly)
    expected = expected_count(counts, now, config, no_holidays)
    assert expected.expected == pytest.approx(120 * (HOUR - config.resolution) / HOUR)


def test_buckets_of_an_old_event_are_only_hourly_and_then_none() -> None:
    """A replay of last month must not look like traffic right now."""
    assert buckets_of(NOW - timedelta(minutes=5), NOW, UTC_HOURLY).recent is not None
    old = buckets_of(NOW - timedelta(days=3), NOW, UTC_HOURLY)
    assert old.recent is None
    assert old.hour is not None
    ancient = buckets_of(NOW - timedelta(weeks=10), NOW, UTC_HOURLY)
    assert (ancient.hour, ancient.recent) == (None, None)


def test_expired_buckets_are_those_no_verdict_needs() -> None:
    """The detector's state stays bounded however long a touchpoint lives."""
    counts = steady(12, NOW, UTC_HOURLY, since=NOW - timedelta(weeks=10))
    later = NOW + timedelta(hours=3)
    old = expired(counts, later, UTC_HOURLY)
    assert old.recent
    assert len(old.recent) == len(counts.recent)
    assert old.hours
    assert max(old.hours) * HOUR < later.timestamp() - UTC_HOURLY.history_seconds
    assert expired(counts, NOW, UTC_HOURLY).recent == ()


def stopped(per_hour: int, stop: datetime, now: datetime) -> SignalCounts:
    """Count a steady stream that stopped at ``stop``, as judged at ``now``."""
    counts = steady(per_hour, stop, UTC_HOURLY)
    recent = {
        start: count
        for start, count in counts.recent.items()
        if start >= now.timestamp() - UTC_HOURLY.window.total_seconds() - UTC_HOURLY.resolution
    }
    return SignalCounts(counts.first_at, counts.hourly, recent)


def test_a_stream_that_stops_fires_a_silence_alert_with_its_evidence() -> None:
    """A broken integration is found within one window, and the alert says why."""
    stop = NOW - timedelta(hours=1)
    counts = stopped(60, stop, NOW)
    tick = activity_tick({Signal.CONTACTS: counts}, NOW, UTC_HOURLY, no_holidays)
    state = new_detector("tp-1", Scale.CSAT_5)
    _, alerts = step(state, tick, NOW, DetectorConfig())
    assert [(a.kind, a.state) for a in alerts] == [(AlertKind.SILENCE, AlertState.FIRING)]
    alert = alerts[0]
    assert alert.after == 0.0
    assert alert.before is not None
    assert alert.before > 50
    assert alert.evidence.probability is not None
    assert alert.evidence.probability < SilenceConfig().probability
    assert "contacts" in alert.summary


def test_a_quiet_night_does_not_fire() -> None:
    """Offices are closed at night: no traffic then is what the baseline expects."""
    night = datetime(2026, 2, 11, 2, 0, tzinfo=UTC)
    hourly: dict[int, int] = {}
    day = night - timedelta(weeks=5)
    while day < night:
        if 8 <= day.hour < 16:
            hourly[int(day.timestamp()) // HOUR] = 80
        day += timedelta(hours=1)
    counts = SignalCounts(first_at=(night - timedelta(weeks=5)).timestamp(), hourly=hourly)
    tick = activity_tick({Signal.ANSWERS: counts}, night, UTC_HOURLY, no_holidays)
    assert tick.observed == {"answers": 0}
    assert tick.expected == {"answers": 0.0}
    _, alerts = step(new_detector("tp-1", Scale.CSAT_5), tick, night, DetectorConfig())
    assert alerts == []


def test_a_signal_never_seen_is_not_judged() -> None:
    """A touchpoint whose deliveries are not reported must not alert on missing deliveries."""
    tick = activity_tick({Signal.DELIVERIES: SignalCounts()}, NOW, UTC_HOURLY, no_holidays)
    assert tick.observed == {}


def test_a_silence_resolves_when_traffic_returns_and_not_on_other_ticks() -> None:
    """Only counts may clear a silence: a rating's target tick says nothing about traffic."""
    state = new_detector("tp-1", Scale.CSAT_5)
    config = DetectorConfig()
    state, fired = step(state, Tick(observed={"contacts": 0}, expected={"contacts": 60.0}), NOW,
                        config)  # fmt: skip
    state, nothing = step(state, Tick(rated=40, top_two=40), NOW + timedelta(minutes=1), config)
    _, resolved = step(
        state,
        Tick(observed={"contacts": 58}, expected={"contacts": 60.0}),
        NOW + timedelta(hours=1),
        config,
    )
    assert [a.state for a in fired] == [AlertState.FIRING]
    assert nothing == []
    assert [a.state for a in resolved] == [AlertState.RESOLVED]
    assert resolved[0].alert_id == fired[0].alert_id


def test_a_silence_tick_leaves_a_target_breach_alone() -> None:
    """A tick without target counts must not clear a breach the counts still show."""
    config = DetectorConfig(target=TargetConfig(target=0.9))
    state = new_detector("tp-1", Scale.CSAT_5)
    state, fired = step(state, Tick(rated=200, top_two=120), NOW, config)
    _, after = step(state, Tick(observed={"answers": 30}, expected={"answers": 30.0}), NOW, config)
    assert [a.kind for a in fired] == [AlertKind.TARGET_BREACH]
    assert after == []


def test_a_firing_silence_survives_a_round_trip_through_json() -> None:
    """The detector state lives in a changelog: a restart must still resolve the alert."""
    state = new_detector("tp-1", Scale.CSAT_5)
    state, _ = step(state, Tick(observed={"answers": 0}, expected={"answers": 40.0}), NOW,
                    DetectorConfig())  # fmt: skip
    restored = type(state).from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    assert AlertKind.SILENCE in restored.firing
