"""Scheduling and dispatch, the same on the in-memory runtime and on Kafka."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from tests.behaviour.scheduling_harness import SchedulingHarness


#: The time an answer written before the reminder is due is given to reach the scheduler.
ANSWER_ROOM = timedelta(seconds=10)


def _ids(*names: str) -> list[str]:
    """Give survey ids unique to this run, so a shared broker's old records never match."""
    run = uuid.uuid4().hex[:8]
    return [f"s-{run}-{name}" for name in names]


async def test_a_due_survey_is_sent_once_and_one_not_yet_due_waits(
    scheduling: SchedulingHarness,
) -> None:
    """The send time is kept both ways: due means sent, once; not due means not yet."""
    now = scheduling.now()
    due, later = _ids("due", "later")
    await scheduling.schedule(due, now)
    await scheduling.schedule(later, now + timedelta(hours=1))
    outcome = await scheduling.run_until(lambda o: "SurveySent" in o.kinds(due), 30)
    assert outcome.sends.get(due) == 1
    assert outcome.kinds(due) == ["SurveyScheduled", "SurveyDispatching", "SurveySent"]
    assert len(outcome.endings(due)) == 1
    assert outcome.sends.get(later) is None
    assert outcome.kinds(later) == ["SurveyScheduled"]


async def test_an_answered_or_opted_out_survey_gets_no_reminder_and_a_silent_one_does(
    scheduling: SchedulingHarness,
) -> None:
    """A citizen who answered or opted out is not asked again; one who did neither is."""
    # The reminder is due a fixed time after scheduling: that time must not be spent
    # waiting for the worker to start, or the reminders are due before anyone answers.
    await scheduling.sending()
    now = scheduling.now()
    answered, opted_out, silent = _ids("answered", "opted-out", "silent")
    reminder_at = now + timedelta(seconds=30)
    for survey in (answered, opted_out, silent):
        await scheduling.schedule(survey, now, reminder_at=reminder_at)
    # The citizens answer the message they got: after it is sent.
    await scheduling.run_until(
        lambda o: all("SurveySent" in o.kinds(s) for s in (answered, opted_out, silent)), 20
    )
    await scheduling.answer(answered)
    await scheduling.answer(opted_out, opt_out=True)
    # What is tested: answers that reach the scheduler before the reminder is due call it
    # off. Answers written later than this leave too little time to say so.
    answered_at = scheduling.now()
    assert answered_at <= reminder_at - ANSWER_ROOM, (
        f"the answers were written at {answered_at}, too close to the reminder at {reminder_at}"
    )
    outcome = await scheduling.run_until(lambda o: "ReminderSent" in o.kinds(silent), 60)
    assert outcome.sends == {answered: 1, opted_out: 1, silent: 2}
    assert "ReminderSent" not in outcome.kinds(answered)
    assert "ReminderSent" not in outcome.kinds(opted_out)


async def test_a_survey_superseded_before_its_send_time_is_never_sent(
    scheduling: SchedulingHarness,
) -> None:
    """The skip on the surveys topic is the survey's one ending; no message goes out."""
    now = scheduling.now()
    superseded, sent = _ids("superseded", "sent")
    await scheduling.schedule(superseded, now + timedelta(seconds=5))
    await scheduling.skip(superseded)
    await scheduling.schedule(sent, now + timedelta(seconds=8))
    outcome = await scheduling.run_until(lambda o: "SurveySent" in o.kinds(sent), 60)
    assert outcome.sends == {sent: 1}
    assert outcome.kinds(superseded) == ["SurveyScheduled", "SurveySkipped"]


async def test_quiet_hours_defer_a_due_survey_until_they_end(
    quiet_scheduling: tuple[SchedulingHarness, datetime],
) -> None:
    """A survey due in quiet hours waits for their end, then goes out once."""
    scheduling, quiet_end = quiet_scheduling
    (survey,) = _ids("quiet")
    await scheduling.schedule(survey, scheduling.now())
    outcome = await scheduling.run_until(lambda o: "SurveySent" in o.kinds(survey), 180)
    assert outcome.sends == {survey: 1}
    (dispatching,) = [e for e in outcome.events[survey] if e.type == "SurveyDispatching"]
    assert dispatching.occurred_at >= quiet_end
