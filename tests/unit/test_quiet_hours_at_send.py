"""Quiet hours and holidays hold at the moment of sending, whatever delayed the message.

The intake plans a send time outside quiet hours, but a retry after a
provider error, a worker back from an outage or a late tick can reach the
moment of sending hours later. These tests drive :mod:`engine.lifecycle` the
way the dispatcher does and check when a :class:`Deliver` comes out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.lifecycle import (
    Deliver,
    ForgetDetails,
    Phase,
    Publish,
    RetryPolicy,
    Step,
    SurveyState,
    Transient,
    due,
    due_at,
    on_outcome,
)
from engine.sendtime import SEND_NOW, NotBefore, SendGate, SendingHours, send_gate
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import PolicyConfig
from schemas.surveys import SurveyExpired, SurveyScheduled
from schemas.vault import ContactDetails

HELSINKI = ZoneInfo("Europe/Helsinki")
POLICY = PolicyConfig()
FINNISH_HOLIDAYS = POLICY.holiday_calendar()
HOURS = SendingHours(POLICY, FINNISH_HOLIDAYS)
RETRIES = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(minutes=10), hours=HOURS)
KEY = "c" * 32


def local(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Give a Helsinki wall-clock time in 2026 as an aware UTC instant."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=HELSINKI).astimezone(UTC)


def pending(
    survey_id: str,
    send_at: datetime,
    *,
    expiry: timedelta = timedelta(days=3),
    reminder_at: datetime | None = None,
) -> SurveyState:
    """Build a survey waiting for its send time, with its contact details at hand."""
    scheduled = SurveyScheduled(
        survey_id=survey_id,
        citizen_key=KEY,
        contact_id=f"contact-{survey_id}",
        touchpoint_id="tp-1",
        occurred_at=send_at - timedelta(minutes=10),
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=send_at - timedelta(minutes=10),
        send_at=send_at,
        reminder_at=reminder_at,
        expires_at=send_at + expiry,
    )
    details = ContactDetails(
        survey_id=survey_id,
        citizen_key=KEY,
        phone="+358401234567",
        language=Language.FI,
        stored_at=send_at - timedelta(minutes=10),
    )
    return SurveyState(survey_id, Phase.PENDING, scheduled=scheduled, details=details)


def delivers(step: Step) -> bool:
    return any(isinstance(command, Deliver) for command in step.commands)


def is_quiet_or_holiday(moment: datetime) -> bool:
    """Tell the rule without the engine: 21-08 Helsinki, or a Finnish holiday."""
    wall = moment.astimezone(HELSINKI)
    return wall.time() >= time(21) or wall.time() < time(8) or FINNISH_HOLIDAYS(wall.date())


# -- the gate itself ----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (local(3, 11, 20, 59, 59), SEND_NOW),
        (local(3, 11, 21, 0), NotBefore(local(3, 12, 8, 0))),
        (local(3, 11, 23, 30), NotBefore(local(3, 12, 8, 0))),
        (local(3, 12, 7, 59, 59), NotBefore(local(3, 12, 8, 0))),
        (local(3, 12, 8, 0), SEND_NOW),
        (local(12, 24, 12, 0), NotBefore(local(12, 27, 8, 0))),  # Christmas Eve to Boxing Day
        (local(12, 23, 21, 30), NotBefore(local(12, 27, 8, 0))),
    ],
)
def test_the_gate_says_send_now_or_the_next_allowed_moment(
    now: datetime, expected: SendGate
) -> None:
    """The rule at the moment of sending is a value: send now, or not before a given instant."""
    assert send_gate(now, POLICY, FINNISH_HOLIDAYS) == expected
    assert HOURS.gate(now) == expected


def test_the_gate_skips_weekends_with_next_working_day() -> None:
    """Organisations that survey on working days only get Monday 08:00, not Sunday's."""
    policy = POLICY.model_copy(update={"holiday_handling": "next-working-day"})
    friday_night = local(12, 23, 21, 30)
    assert send_gate(friday_night, policy, FINNISH_HOLIDAYS) == NotBefore(local(12, 28, 8, 0))


def test_the_gate_is_open_all_day_without_quiet_hours() -> None:
    """Equal start and end mean no quiet hours; ``ignore`` leaves holidays open."""
    policy = POLICY.model_copy(
        update={
            "quiet_hours_start": time(0),
            "quiet_hours_end": time(0),
            "holiday_handling": "ignore",
        }
    )
    assert send_gate(local(12, 24, 23, 30), policy, FINNISH_HOLIDAYS) == SEND_NOW


# -- retries ------------------------------------------------------------------


def test_a_retry_whose_backoff_crosses_21_waits_until_08() -> None:
    """Retries after 429s went out at 21:01-21:41; a retry is a send like any other."""
    state = pending("sv-retry", local(3, 11, 20, 58))
    now = local(3, 11, 20, 59, 50)
    first = due(state, now, RETRIES)
    assert delivers(first)
    assert first.state is not None
    failed = on_outcome(first.state, Transient("429 too many requests"), now, RETRIES)
    assert failed.state is not None
    assert failed.state.phase is Phase.PENDING
    retry_at = due_at(failed.state, RETRIES)
    assert retry_at is not None
    assert retry_at.astimezone(HELSINKI).time() >= time(21)  # the backoff crosses 21:00

    # Every tick through the night: nothing goes out, nothing is published.
    moment, current = retry_at, failed.state
    while moment < local(3, 12, 8, 0):
        step = due(current, moment, RETRIES)
        assert not delivers(step), moment
        assert not any(isinstance(c, Publish) for c in step.commands)
        assert step.state is not None
        current = step.state
        moment += timedelta(minutes=7)
    assert current.phase is Phase.PENDING
    assert current.not_before == local(3, 12, 8, 0)
    assert due_at(current, RETRIES) == local(3, 12, 8, 0)

    morning = due(current, local(3, 12, 8, 0), RETRIES)
    assert delivers(morning)
    assert morning.state is not None
    assert morning.state.attempts == 2  # the night's waiting is not an attempt
    assert morning.state.not_before is None


def test_a_second_transient_error_in_the_morning_retries_in_the_day() -> None:
    """A deferral is forgotten once the send goes: the next backoff starts from the morning."""
    state = replace(pending("sv-twice", local(3, 11, 20, 58)), not_before=local(3, 12, 8, 0))
    step = due(state, local(3, 12, 8, 0), RETRIES)
    assert step.state is not None
    again = on_outcome(step.state, Transient("503"), local(3, 12, 8, 0, 1), RETRIES)
    assert again.state is not None
    next_try = due_at(again.state, RETRIES)
    assert next_try is not None
    assert local(3, 12, 8, 0) < next_try < local(3, 12, 8, 1)


# -- a backlog after an outage --------------------------------------------------


def test_a_backlog_at_2330_waits_for_the_morning_or_expires() -> None:
    """A worker back from an outage at 23:30 sent its whole backlog at once."""
    backlog = [
        pending(f"sv-backlog-{minute}", local(3, 11, 18, minute)) for minute in range(0, 60, 5)
    ]
    short_lived = pending("sv-short", local(3, 11, 20, 30), expiry=timedelta(hours=6))
    reminder = replace(
        pending("sv-reminder", local(3, 11, 9, 0), reminder_at=local(3, 11, 20, 30)),
        phase=Phase.SENT,
    )
    back_at = local(3, 11, 23, 30)
    for state in [*backlog, short_lived, reminder]:
        step = due(state, back_at, RETRIES)
        assert not delivers(step), state.survey_id
        assert step.state is not None
        assert not step.state.phase.is_final

    for state in backlog:
        held = due(state, back_at, RETRIES).state
        assert held is not None
        assert due_at(held, RETRIES) == local(3, 12, 8, 0)
        assert delivers(due(held, local(3, 12, 8, 0), RETRIES))

    # Expiry comes before the morning: the survey waits, then expires unsent, on the record.
    held = due(short_lived, back_at, RETRIES).state
    assert held is not None
    last_chance = local(3, 12, 2, 30) - RETRIES.last_call
    assert due_at(held, RETRIES) == last_chance
    ended = due(held, last_chance, RETRIES)
    assert ended.state is not None
    assert ended.state.phase is Phase.EXPIRED
    assert not delivers(ended)
    published = [c.event for c in ended.commands if isinstance(c, Publish)]
    assert len(published) == 1
    assert isinstance(published[0], SurveyExpired)
    assert published[0].was_sent is False

    # The reminder due at 20:30 goes out at 08:00, not at 23:30.
    held = due(reminder, back_at, RETRIES).state
    assert held is not None
    assert due_at(held, RETRIES) == local(3, 12, 8, 0)
    morning = due(held, local(3, 12, 8, 0), RETRIES)
    assert morning.commands == (Deliver(SurveyChannel.SMS, reminder=True),)


def test_a_reminder_held_past_expiry_is_dropped_and_the_details_forgotten() -> None:
    """A reminder for a closed survey is noise; the phone number is not kept for it."""
    reminder = replace(
        pending(
            "sv-late-reminder",
            local(3, 9, 9, 0),
            expiry=timedelta(days=2, hours=14),
            reminder_at=local(3, 11, 20, 50),
        ),
        phase=Phase.SENT,
    )
    assert reminder.scheduled is not None
    assert local(3, 11, 21, 15) < reminder.scheduled.expires_at < local(3, 12, 8, 0)
    step = due(reminder, local(3, 11, 21, 15), RETRIES)
    assert not delivers(step)
    assert step.state is not None
    assert step.state.reminded
    assert step.state.details is None
    assert ForgetDetails("sv-late-reminder") in step.commands


# -- holidays -----------------------------------------------------------------


def test_a_retry_on_christmas_eve_waits_for_the_first_day_after_the_holidays() -> None:
    """24-26 December are holidays in Finland: quiet all day, so a retry waits for the 27th."""
    state = pending("sv-christmas", local(12, 23, 20, 59), expiry=timedelta(days=7))
    now = local(12, 23, 20, 59, 40)
    first = due(state, now, RETRIES)
    assert delivers(first)
    assert first.state is not None
    failed = on_outcome(first.state, Transient("503"), now, RETRIES)
    assert failed.state is not None
    for moment in (local(12, 23, 21, 1), local(12, 24, 12, 0), local(12, 26, 15, 0)):
        step = due(failed.state, moment, RETRIES)
        assert not delivers(step), moment
        assert step.state is not None
        assert step.state.not_before == local(12, 27, 8, 0)
    assert delivers(due(failed.state, local(12, 27, 8, 0), RETRIES))


def test_a_backlog_on_a_holiday_that_outlives_the_survey_expires_unsent() -> None:
    """A message held past its expiry is not dropped silently: it ends as SurveyExpired."""
    state = pending("sv-holiday", local(12, 23, 20, 50), expiry=timedelta(days=3))
    step = due(state, local(12, 24, 10, 0), RETRIES)
    assert not delivers(step)
    assert step.state is not None
    when = due_at(step.state, RETRIES)
    assert when is not None
    assert is_quiet_or_holiday(when)  # the last call falls on Boxing Day
    ended = due(step.state, when, RETRIES)
    assert ended.state is not None
    assert ended.state.phase is Phase.EXPIRED
    assert not delivers(ended)


# -- the DST change week --------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Spring forward on Sunday 29 March 2026: 21:00 is 19:00 UTC before, 18:00 after.
        (datetime(2026, 3, 27, 18, 30, tzinfo=UTC), SEND_NOW),  # Fri 20:30 EET
        (
            datetime(2026, 3, 28, 19, 0, tzinfo=UTC),
            NotBefore(datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),
        ),
        (
            datetime(2026, 3, 30, 18, 30, tzinfo=UTC),
            NotBefore(datetime(2026, 3, 31, 5, 0, tzinfo=UTC)),
        ),
        # Fall back on Sunday 25 October 2026: 08:00 is 06:00 UTC the next morning.
        (
            datetime(2026, 10, 24, 18, 30, tzinfo=UTC),
            NotBefore(datetime(2026, 10, 25, 6, 0, tzinfo=UTC)),
        ),
        (datetime(2026, 10, 26, 18, 30, tzinfo=UTC), SEND_NOW),  # Mon 20:30 EET
    ],
)
def test_retries_in_the_dst_change_week_follow_the_wall_clock(
    now: datetime, expected: SendGate
) -> None:
    """Quiet hours are Helsinki wall-clock hours, not a fixed UTC band, around a change."""
    state = pending("sv-dst", now - timedelta(minutes=1))
    step = due(state, now, RETRIES)
    if isinstance(expected, NotBefore):
        assert not delivers(step)
        assert step.state is not None
        assert step.state.not_before == expected.at
        assert due_at(step.state, RETRIES) == expected.at
        assert delivers(due(step.state, expected.at, RETRIES))
    else:
        assert delivers(step)


def test_a_held_send_survives_the_tables_json_form() -> None:
    """``not_before`` is kept in the changelog, so a restart does not forget the night's hold."""
    held = due(pending("sv-json", local(3, 11, 20, 58)), local(3, 11, 22, 0), RETRIES).state
    assert held is not None
    assert held.not_before == local(3, 12, 8, 0)
    assert SurveyState.from_json(held.to_json()) == held
