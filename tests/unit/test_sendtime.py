"""Send times: delays, windows, quiet hours, DST changes and Finnish public holidays."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.sendtime import (
    in_quiet_hours,
    next_allowed,
    no_holidays,
    send_time,
    survey_times,
)
from schemas.config import PolicyConfig, SendWindow, TouchpointConfig

HELSINKI = ZoneInfo("Europe/Helsinki")
POLICY = PolicyConfig()
FINNISH_HOLIDAYS = POLICY.holiday_calendar()
TEN_MINUTES = TouchpointConfig(send_delay=timedelta(minutes=10))
NEXT_DAY_AFTER_NOON = TouchpointConfig(send_window=SendWindow(days_after=1, not_before=time(12)))


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=HELSINKI)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def send(
    ended: datetime,
    touchpoint: TouchpointConfig = TEN_MINUTES,
    policy: PolicyConfig = POLICY,
    now: datetime | None = None,
) -> datetime:
    return send_time(ended, touchpoint, policy, now or ended, is_holiday=policy.holiday_calendar())


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        (local(2025, 3, 12, 10, 0), local(2025, 3, 12, 10, 10)),  # ordinary Wednesday
        (local(2025, 3, 12, 20, 49), local(2025, 3, 12, 20, 59)),  # just before quiet hours
        (local(2025, 3, 12, 20, 50), local(2025, 3, 13, 8, 0)),  # lands on 21:00 exactly
        (local(2025, 3, 12, 23, 30), local(2025, 3, 13, 8, 0)),  # before midnight
        (local(2025, 3, 13, 2, 0), local(2025, 3, 13, 8, 0)),  # after midnight
        (local(2025, 3, 13, 7, 55), local(2025, 3, 13, 8, 5)),  # delay ends after quiet hours
    ],
)
def test_quiet_hours_crossing_midnight_move_sends_to_08(
    ended: datetime, expected: datetime
) -> None:
    """A text at 23:30 wakes people; the Finnish norm is nothing between 21 and 08."""
    assert send(ended) == expected
    assert send(ended).tzinfo is UTC


def test_spring_forward_night_sends_at_08_summer_time() -> None:
    """On 30 March 2025 the night is an hour shorter: 08:00 EEST is 05:00 UTC, not 06:00."""
    sent = send(local(2025, 3, 29, 20, 55))
    assert sent == utc(2025, 3, 30, 5, 0)
    assert sent.astimezone(HELSINKI).hour == 8


def test_fall_back_night_sends_at_08_winter_time() -> None:
    """On 26 October 2025 the night is an hour longer: 08:00 EET is 06:00 UTC, not 05:00."""
    sent = send(local(2025, 10, 25, 20, 55))
    assert sent == utc(2025, 10, 26, 6, 0)
    assert sent.astimezone(HELSINKI).hour == 8


def test_quiet_hours_ending_in_the_spring_gap_end_when_the_gap_ends() -> None:
    """03:30 does not exist on 30 March 2025; the first real instant after it is 04:00 EEST."""
    policy = PolicyConfig(quiet_hours_start=time(22), quiet_hours_end=time(3, 30))
    sent = send(local(2025, 3, 29, 23, 0), policy=policy)
    assert sent == utc(2025, 3, 30, 1, 0)
    assert sent.astimezone(HELSINKI).time() == time(4, 0)


def test_quiet_hours_ending_in_the_repeated_hour_wait_for_its_second_pass() -> None:
    """At 03:05 EET (second pass of 03:xx) quiet hours until 03:30 still hold: 03:30 EET."""
    policy = PolicyConfig(quiet_hours_start=time(22), quiet_hours_end=time(3, 30))
    immediately = TouchpointConfig(send_delay=timedelta(0))
    second_pass = utc(2025, 10, 26, 1, 5)
    assert second_pass.astimezone(HELSINKI).time() == time(3, 5)
    assert send(second_pass, immediately, policy) == utc(2025, 10, 26, 1, 30)


def test_a_send_window_across_the_dst_change_keeps_its_wall_clock_time() -> None:
    """Next day after 12:00 means 12:00 on the citizen's clock on both sides of DST."""
    assert send(local(2025, 3, 29, 15), NEXT_DAY_AFTER_NOON) == utc(2025, 3, 30, 9, 0)
    assert send(local(2025, 10, 25, 15), NEXT_DAY_AFTER_NOON) == utc(2025, 10, 26, 10, 0)


@pytest.mark.parametrize(
    ("ended", "handling", "expected"),
    [
        # Itsenäisyyspäivä, Saturday 6.12.2025.
        (local(2025, 12, 5, 22), "quiet-all-day", local(2025, 12, 7, 8)),
        (local(2025, 12, 5, 22), "next-working-day", local(2025, 12, 8, 8)),
        (local(2025, 12, 5, 22), "ignore", local(2025, 12, 6, 8)),
        (local(2025, 12, 6, 12), "quiet-all-day", local(2025, 12, 7, 8)),
        # Juhannus: aatto Friday 20.6. and päivä Saturday 21.6.2025.
        (local(2025, 6, 19, 22), "quiet-all-day", local(2025, 6, 22, 8)),
        (local(2025, 6, 19, 22), "next-working-day", local(2025, 6, 23, 8)),
        # Christmas Eve to Boxing Day, then an ordinary Saturday.
        (local(2025, 12, 24, 10), "quiet-all-day", local(2025, 12, 27, 8)),
        (local(2025, 12, 24, 10), "next-working-day", local(2025, 12, 29, 8)),
        # An ordinary weekend is not quiet by default.
        (local(2025, 3, 15, 10), "quiet-all-day", local(2025, 3, 15, 10, 10)),
        (local(2025, 3, 15, 10), "next-working-day", local(2025, 3, 17, 8)),
    ],
)
def test_holidays_are_quiet_all_day_or_skip_to_the_next_working_day(
    ended: datetime, handling: str, expected: datetime
) -> None:
    """Nobody wants a service survey on Independence Day or at Midsummer."""
    policy = PolicyConfig.model_validate({"holiday_handling": handling})
    assert send(ended, policy=policy) == expected


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        (local(2025, 11, 12, 9), local(2025, 11, 13, 12)),
        (local(2025, 11, 12, 23, 30), local(2025, 11, 13, 12)),  # the contact's local date
        (local(2025, 11, 13, 0, 30), local(2025, 11, 14, 12)),  # 22:30 UTC the day before
        (local(2025, 12, 5, 10), local(2025, 12, 7, 12)),  # 6.12. is a holiday: still 12:00
    ],
)
def test_next_day_after_noon_window(ended: datetime, expected: datetime) -> None:
    """Wellbeing services areas ask the day after a visit, after 12:00."""
    assert send(ended, NEXT_DAY_AFTER_NOON) == expected


def test_window_closing_time_moves_a_late_contact_to_the_next_day() -> None:
    """A same-day window 12-16 is over for a contact ending at 17:00."""
    touchpoint = TouchpointConfig(
        send_window=SendWindow(days_after=0, not_before=time(12), not_after=time(16))
    )
    assert send(local(2025, 11, 12, 17), touchpoint) == local(2025, 11, 13, 12)
    assert send(local(2025, 11, 12, 13), touchpoint) == local(2025, 11, 12, 13, 10)


def test_a_late_event_is_sent_from_now_not_from_the_contact() -> None:
    """After an outage the send time must not lie in the past."""
    ended = local(2025, 11, 12, 9)
    now = local(2025, 11, 12, 22, 15)
    assert send(ended, now=now) == local(2025, 11, 13, 8)
    now = local(2025, 11, 12, 14)
    assert send(ended, now=now) == now


@pytest.mark.parametrize(
    ("start", "end", "wall_clock", "quiet"),
    [
        (time(21), time(8), time(20, 59), False),
        (time(21), time(8), time(21), True),
        (time(21), time(8), time(0), True),
        (time(21), time(8), time(7, 59, 59), True),
        (time(21), time(8), time(8), False),
        (time(0), time(7), time(6), True),
        (time(0), time(7), time(23), False),
        (time(8), time(8), time(3), False),  # equal ends: no quiet hours
    ],
)
def test_quiet_hours_bounds(start: time, end: time, wall_clock: time, quiet: bool) -> None:
    """Start is quiet, end is not; a window across midnight wraps."""
    policy = PolicyConfig(quiet_hours_start=start, quiet_hours_end=end)
    assert in_quiet_hours(wall_clock, policy) is quiet


def test_other_time_zones_are_respected() -> None:
    """A citizen in Stockholm is an hour behind Helsinki; quiet hours follow their clock."""
    policy = PolicyConfig(time_zone="Europe/Stockholm")
    ended = datetime(2025, 11, 12, 20, 55, tzinfo=ZoneInfo("Europe/Stockholm"))
    sent = send(ended, policy=policy)
    assert sent.astimezone(ZoneInfo("Europe/Stockholm")) == datetime(
        2025, 11, 13, 8, tzinfo=ZoneInfo("Europe/Stockholm")
    )


def test_reminder_obeys_quiet_hours_and_expiry_follows_send_time() -> None:
    """A reminder at 22:10 would be as rude as a survey at 22:10."""
    touchpoint = TouchpointConfig(
        send_delay=timedelta(minutes=10),
        reminder_delay=timedelta(hours=12),
        expiry=timedelta(days=2),
    )
    ended = local(2025, 11, 12, 10)
    times = survey_times(ended, touchpoint, POLICY, ended, is_holiday=FINNISH_HOLIDAYS)
    assert times.send_at == local(2025, 11, 12, 10, 10)
    assert times.reminder_at == local(2025, 11, 13, 8)
    assert times.expires_at == local(2025, 11, 14, 10, 10)


def test_reminder_pushed_past_expiry_is_dropped() -> None:
    """A reminder for a survey that has closed only confuses the citizen."""
    touchpoint = TouchpointConfig(
        send_delay=timedelta(minutes=10),
        reminder_delay=timedelta(hours=10),
        expiry=timedelta(hours=12),
    )
    ended = local(2025, 11, 12, 12)
    times = survey_times(ended, touchpoint, POLICY, ended, is_holiday=FINNISH_HOLIDAYS)
    assert times.reminder_at is None
    assert times.expires_at == local(2025, 11, 13, 0, 10)


def test_rules_that_leave_no_time_at_all_are_a_configuration_error() -> None:
    """Looping for ever on an impossible policy would stall the worker."""
    everything_is_a_holiday = PolicyConfig()
    with pytest.raises(ValueError, match="no time to send"):
        next_allowed(local(2025, 1, 2, 12), everything_is_a_holiday, lambda _day: True)
    assert next_allowed(local(2025, 1, 2, 12), everything_is_a_holiday, no_holidays) == local(
        2025, 1, 2, 12
    )
