"""When a survey goes out: the delay or send window, moved out of quiet hours.

All rules are in the citizen's wall-clock time (Europe/Helsinki by default),
and every result is an aware UTC instant. Local times are turned into instants
with :mod:`zoneinfo` only through :func:`_instant_at`, which never lands
before the wall-clock time asked for: a time in the spring-forward gap (03:xx
on the last Sunday of March) becomes the instant the gap ends, and of the two
instants of a repeated hour (the last Sunday of October) the first one that
lies ahead is taken.

Holidays come in as a plain function from a local date to bool, built by the
caller from the ``holidays`` package (``PolicyConfig.holiday_calendar()``), so
this module needs nothing but the standard library.

Two questions are answered here. :func:`send_time` and :func:`survey_times`
plan a survey when the intake schedules it. :func:`send_gate` decides at the
moment of sending: a plan made hours ago says nothing about *now* (a retry
after a provider error, a backlog after an outage, a late tick), so every
send asks the gate again, and quiet hours hold whatever delayed the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from schemas.config import PolicyConfig, SendWindow, TouchpointConfig

#: Tells whether a local date is a public holiday.
HolidayCalendar = Callable[[date], bool]

_LONG_AGO = datetime.min.replace(tzinfo=UTC)

#: Enough steps to cross a year of blocked days; more means the rules leave no time at all.
_MAX_STEPS = 4 * 400
_SATURDAY = 5


def no_holidays(_day: date) -> bool:
    """Treat every day as an ordinary day (for policies that ignore holidays)."""
    return False


@dataclass(frozen=True, slots=True)
class SurveyTimes:
    """The three instants of a survey's life, all aware UTC."""

    send_at: datetime
    reminder_at: datetime | None
    expires_at: datetime


def in_quiet_hours(wall_clock: time, policy: PolicyConfig) -> bool:
    """Tell whether a local wall-clock time lies in quiet hours (start inclusive)."""
    return policy.is_quiet(wall_clock)


def is_blocked_day(day: date, policy: PolicyConfig, is_holiday: HolidayCalendar) -> bool:
    """Tell whether no survey may go out at all on a local date."""
    if policy.holiday_handling == "ignore":
        return False
    if policy.holiday_handling == "next-working-day" and day.weekday() >= _SATURDAY:
        return True
    return is_holiday(day)


def _instant_at(day: date, wall_clock: time, zone: ZoneInfo, after: datetime) -> datetime:
    """Turn a local date and time into the first matching instant later than ``after``.

    A repeated time (autumn) has two instants: ``fold=0`` is the first, and
    ``fold=1`` the second when the first is already behind us. A time that
    does not exist (the spring gap) becomes the instant the gap ends, the
    first moment the wall clock shows that time or later.
    """
    naive = datetime.combine(day, wall_clock)
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != naive:
            instant = _end_of_gap(naive, zone)
        if instant > after:
            return instant
    return after + timedelta(minutes=1)


def _end_of_gap(naive: datetime, zone: ZoneInfo) -> datetime:
    """Find the first instant whose wall-clock time is at or after a time inside a gap.

    The two folds bracket the transition; within them the wall clock only
    moves forward, so halving by whole seconds finds it.
    """
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    low, high = min(low, high), max(low, high)
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high


def next_allowed(
    earliest: datetime,
    policy: PolicyConfig,
    is_holiday: HolidayCalendar,
    window: SendWindow | None = None,
) -> datetime:
    """Find the first instant at or after ``earliest`` when a message may go out.

    Blocked days (holidays, and weekends with ``next-working-day``) count as
    quiet from midnight to midnight; the window's ``not_before``/``not_after``
    hold on whatever day the send lands.
    """
    zone = policy.zone
    candidate = earliest.astimezone(UTC)
    for _ in range(_MAX_STEPS):
        local = candidate.astimezone(zone)
        day, wall_clock = local.date(), local.time()
        if is_blocked_day(day, policy, is_holiday):
            candidate = _instant_at(day + timedelta(days=1), time(0), zone, candidate)
        elif in_quiet_hours(wall_clock, policy):
            crosses_midnight = policy.quiet_hours_start > policy.quiet_hours_end
            end_day = (
                day + timedelta(days=1)
                if crosses_midnight and wall_clock >= policy.quiet_hours_start
                else day
            )
            candidate = _instant_at(end_day, policy.quiet_hours_end, zone, candidate)
        elif window is not None and wall_clock < window.not_before:
            candidate = _instant_at(day, window.not_before, zone, candidate)
        elif window is not None and window.not_after is not None and wall_clock > window.not_after:
            candidate = _instant_at(day + timedelta(days=1), time(0), zone, candidate)
        else:
            return candidate
    raise ValueError(
        "quiet hours, holidays and the send window leave no time to send in a year; "
        "check the configuration"
    )


@dataclass(frozen=True, slots=True)
class SendNow:
    """The gate is open: a message may go out at this moment."""


@dataclass(frozen=True, slots=True)
class NotBefore:
    """The gate is closed (quiet hours, an excluded day): wait until ``at``, aware UTC."""

    at: datetime


#: What :func:`send_gate` decides.
SendGate = SendNow | NotBefore
SEND_NOW = SendNow()


def send_gate(now: datetime, policy: PolicyConfig, is_holiday: HolidayCalendar) -> SendGate:
    """Decide whether a message may leave at ``now``, or the first moment it may.

    This is the rule at the moment of sending: quiet hours and the days the
    policy excludes, in the citizen's time zone (``policy.time_zone``). The
    touchpoint's send window is not applied here: it plans the first send, and
    a retry the window's day has passed should still go out, outside quiet hours.
    """
    allowed = next_allowed(now, policy, is_holiday)
    return SEND_NOW if allowed <= now else NotBefore(allowed)


@dataclass(frozen=True, slots=True)
class SendingHours:
    """The policy's quiet hours and excluded days, bound to its holiday calendar.

    The lifecycle holds one of these and asks :meth:`gate` whenever it is
    about to hand a message to a provider.
    """

    policy: PolicyConfig
    is_holiday: HolidayCalendar = no_holidays

    def gate(self, now: datetime) -> SendGate:
        """Decide whether a message may leave at ``now`` (see :func:`send_gate`)."""
        return send_gate(now, self.policy, self.is_holiday)


def send_time(
    contact_ended_at: datetime,
    touchpoint: TouchpointConfig,
    policy: PolicyConfig,
    now: datetime,
    *,
    is_holiday: HolidayCalendar,
) -> datetime:
    """Compute when to send: after the delay (or in the window), never now-past, never quiet.

    A send window such as "the next day after 12:00" counts days on the
    citizen's calendar from the contact's local date.
    """
    earliest = max(contact_ended_at + touchpoint.send_delay, now)
    window = touchpoint.send_window
    if window is not None:
        zone = policy.zone
        contact_day = contact_ended_at.astimezone(zone).date()
        opens = _instant_at(
            contact_day + timedelta(days=window.days_after),
            window.not_before,
            zone,
            _LONG_AGO,
        )
        earliest = max(earliest, opens)
    return next_allowed(earliest, policy, is_holiday, window)


def survey_times(
    contact_ended_at: datetime,
    touchpoint: TouchpointConfig,
    policy: PolicyConfig,
    now: datetime,
    *,
    is_holiday: HolidayCalendar,
) -> SurveyTimes:
    """Compute send, reminder and expiry times together.

    The reminder obeys quiet hours and holidays too; if that pushes it past
    expiry it is dropped, since a reminder for a closed survey is noise.
    """
    send_at = send_time(contact_ended_at, touchpoint, policy, now, is_holiday=is_holiday)
    expires_at = send_at + touchpoint.expiry
    reminder_at = None
    if touchpoint.reminder_delay is not None:
        reminder = next_allowed(send_at + touchpoint.reminder_delay, policy, is_holiday)
        reminder_at = reminder if reminder < expires_at else None
    return SurveyTimes(send_at=send_at, reminder_at=reminder_at, expires_at=expires_at)
