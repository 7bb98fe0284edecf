"""How many answers, deliveries and contacts a touchpoint should have had just now.

A broken front-office integration or a dead SMS route shows as *nothing*:
no low scores, just no events. Silence detection therefore needs an expected
count for the recent window, and the one a person would give is "about as
many as at this time on the same weekday in the last few weeks". That
seasonal baseline is also what keeps nights, weekends and closed offices
quiet: their expected count is near zero, and
:func:`engine.detection.silence_verdict` never judges a window in which
fewer than a handful of events were expected.

Counts are kept per touchpoint and signal in two tiers of event time:

* hourly buckets (epoch hour → count) for the baseline, kept for
  ``weeks + 2`` weeks (two spare weeks for skipped holidays);
* recent buckets of a twelfth of the window (bucket start in epoch seconds →
  count), kept for one window, for the observed count.

The expected count of the window ``[now - W, now)`` is the mean, over the
reference days, of the hourly counts in the same local wall-clock interval
on that day (spread evenly within an hour where the interval cuts one).
Reference days are the same weekday one, two, ... weeks back, skipping
public holidays, and only from when the touchpoint was first seen sending
that signal. On a public holiday the reference days are the previous
Sundays instead: public offices keep Sunday hours on holidays, while
digital services keep their weekend traffic, so both stay judged fairly.

Time is passed in; this module reads no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from engine.detection import Tick

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_HOUR = 3_600
_WEEK_DAYS = 7
_SUNDAY = 6
#: Recent buckets per window.
_BUCKETS_PER_WINDOW = 12
#: Spare weeks of history, so that holidays skipped still leave ``weeks`` reference days.
_SPARE_WEEKS = 2


class Signal(StrEnum):
    """What is counted per touchpoint."""

    ANSWERS = "answers"  # ratings
    DELIVERIES = "deliveries"  # SurveySent: the provider accepted the message
    CONTACTS = "contacts"  # decisions on contacts (scheduled or skipped)


@dataclass(frozen=True)
class ActivityConfig:
    """The recent window and the seasonal baseline it is compared with."""

    window: timedelta = timedelta(hours=1)
    #: Reference days (same weekday, earlier weeks) averaged for the expected count.
    weeks: int = 4
    #: Fewer reference days with history than this: no expected count, no verdict.
    min_weeks: int = 2
    #: Wall-clock time zone of the baseline (weekdays, hours, holidays).
    time_zone: str = "Europe/Helsinki"

    @property
    def resolution(self) -> int:
        """Seconds per recent bucket: a twelfth of the window, at least one."""
        return max(1, int(self.window.total_seconds()) // _BUCKETS_PER_WINDOW)

    @property
    def history_seconds(self) -> float:
        """How far back the hourly buckets reach."""
        weeks = timedelta(weeks=self.weeks + _SPARE_WEEKS)
        return (weeks + self.window).total_seconds() + _HOUR


@dataclass(frozen=True)
class SignalCounts:
    """Counts of one signal of one touchpoint, in event time."""

    #: Epoch seconds of the earliest event seen; reference days before it are no evidence.
    first_at: float | None = None
    #: Epoch hour (seconds // 3600) -> events.
    hourly: Mapping[int, int] = field(default_factory=dict)
    #: Recent bucket start (epoch seconds, a multiple of the resolution) -> events.
    recent: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Buckets:
    """Where one event is counted; None where it is too old for that tier."""

    hour: int | None
    recent: int | None


def buckets_of(at: datetime, now: datetime, config: ActivityConfig) -> Buckets:
    """Name the buckets an event at ``at`` counts in, judged at ``now``."""
    seconds = at.timestamp()
    age = now.timestamp() - seconds
    resolution = config.resolution
    recent_limit = config.window.total_seconds() + resolution
    return Buckets(
        hour=int(seconds // _HOUR) if age <= config.history_seconds else None,
        recent=int(seconds // resolution) * resolution if age <= recent_limit else None,
    )


def _span_start(now: float, config: ActivityConfig) -> float:
    """Start of the observed span: the first recent bucket wholly inside the window."""
    resolution = config.resolution
    return (math.floor((now - config.window.total_seconds()) / resolution) + 1) * resolution


def observed_count(counts: SignalCounts, now: datetime, config: ActivityConfig) -> int:
    """Events in the recent window (between ``window - resolution`` and ``window`` long)."""
    start = _span_start(now.timestamp(), config)
    end = now.timestamp()
    return sum(count for begins, count in counts.recent.items() if start <= begins <= end)


def reference_days(today: date, weeks: int, is_holiday: Callable[[date], bool]) -> list[date]:
    """List the days whose traffic at this time of day is the baseline, newest first."""
    if is_holiday(today):
        last_sunday = today - timedelta(days=(today.weekday() - _SUNDAY) % _WEEK_DAYS or 7)
        candidates = [last_sunday - timedelta(weeks=k) for k in range(weeks + _SPARE_WEEKS)]
    else:
        candidates = [today - timedelta(weeks=k) for k in range(1, weeks + _SPARE_WEEKS + 1)]
    return [day for day in candidates if not is_holiday(day)][:weeks]


def _hourly_between(hourly: Mapping[int, int], start: float, end: float) -> float:
    """Events in ``[start, end)``, spreading each hour's count evenly over the hour."""
    total = 0.0
    for hour in range(math.floor(start / _HOUR), math.ceil(end / _HOUR)):
        count = hourly.get(hour, 0)
        if count:
            overlap = min(end, (hour + 1) * _HOUR) - max(start, hour * _HOUR)
            total += count * max(overlap, 0.0) / _HOUR
    return total


@dataclass(frozen=True)
class Expectation:
    """The expected count of the window and the reference days behind it."""

    expected: float
    days: tuple[date, ...]


def expected_count(
    counts: SignalCounts,
    now: datetime,
    config: ActivityConfig,
    is_holiday: Callable[[date], bool],
) -> Expectation:
    """Mean count of the same wall-clock span on the reference days (0 without history)."""
    zone = ZoneInfo(config.time_zone)
    local_now = now.astimezone(zone)
    length = now.timestamp() - _span_start(now.timestamp(), config)
    used: list[date] = []
    total = 0.0
    for day in reference_days(local_now.date(), config.weeks, is_holiday):
        end = datetime.combine(day, local_now.time(), tzinfo=zone).timestamp()
        start = end - length
        if counts.first_at is None or counts.first_at > start:
            continue  # the touchpoint did not send this signal yet: no evidence either way
        total += _hourly_between(counts.hourly, start, end)
        used.append(day)
    if len(used) < config.min_weeks:
        return Expectation(0.0, tuple(used))
    return Expectation(total / len(used), tuple(used))


def activity_tick(
    activity: Mapping[Signal, SignalCounts],
    now: datetime,
    config: ActivityConfig,
    is_holiday: Callable[[date], bool],
) -> Tick:
    """Build the silence part of a detector tick: observed and expected count per signal."""
    observed: dict[str, int] = {}
    expected: dict[str, float] = {}
    for signal, counts in sorted(activity.items()):
        if counts.first_at is None:
            continue
        observed[signal.value] = observed_count(counts, now, config)
        expected[signal.value] = expected_count(counts, now, config, is_holiday).expected
    return Tick(observed=observed, expected=expected)


@dataclass(frozen=True)
class Expired:
    """Buckets of one signal that no later verdict can need."""

    hours: tuple[int, ...]
    recent: tuple[int, ...]


def expired(counts: SignalCounts, now: datetime, config: ActivityConfig) -> Expired:
    """Name the buckets to forget at ``now``, so state stays bounded."""
    seconds = now.timestamp()
    oldest_hour = math.floor((seconds - config.history_seconds) / _HOUR)
    oldest_recent = seconds - config.window.total_seconds() - config.resolution
    return Expired(
        hours=tuple(sorted(hour for hour in counts.hourly if hour < oldest_hour)),
        recent=tuple(sorted(begins for begins in counts.recent if begins < oldest_recent)),
    )
