"""Property: no survey or reminder is handed to a provider in quiet hours or on an excluded day.

Whatever the policy (any quiet hours, any holiday handling, several time
zones), whatever the survey's plan (a send time or reminder that the intake
computed under other rules, or none at all) and whatever happens on the way
(ticks early, late or after a long outage, transient errors and their
retries, refusals, crashes mid-send), every :class:`Deliver` that
:func:`engine.lifecycle.due` issues is issued at an allowed moment, and the
survey still ends on the record: held, never dropped silently.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.lifecycle import (
    Accepted,
    Deliver,
    Phase,
    ProviderOutcome,
    Publish,
    Refused,
    RetryPolicy,
    Step,
    SurveyState,
    Transient,
    Unknown,
    due,
    due_at,
    on_outcome,
)
from engine.sendtime import SendingHours
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import PolicyConfig
from schemas.surveys import SurveyExpired, SurveyFailed, SurveyScheduled, SurveySent
from schemas.vault import ContactDetails

START = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "d" * 32
ZONES = ["Europe/Helsinki", "Europe/Stockholm", "America/New_York", "Asia/Kolkata"]
_SATURDAY = 5

outcomes = st.sampled_from(
    [
        Accepted("SM1", 1),
        Transient("429"),
        Transient("503"),
        Refused("invalid number", "21211"),
        Unknown("timeout"),
        None,  # the worker crashed during the call
    ]
)
# A delay before the next tick: the usual second, a retry's minutes, an outage's hours or days.
delays = st.one_of(
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=0, max_value=6 * 3600),
    st.integers(min_value=0, max_value=3 * 24 * 3600),
)
# How long the provider call takes: the outcome is folded in that much later.
call_times = st.integers(min_value=0, max_value=90)


@st.composite
def policies(draw: st.DrawFn) -> PolicyConfig:
    """Any quiet hours (crossing midnight or not, or none), any holiday rule, a few zones."""
    start = draw(st.times())
    end = draw(st.times())
    return PolicyConfig(
        quiet_hours_start=start,
        quiet_hours_end=end,
        time_zone=draw(st.sampled_from(ZONES)),
        holiday_handling=draw(st.sampled_from(["quiet-all-day", "next-working-day", "ignore"])),
        holiday_country=draw(st.sampled_from(["FI", "SE"])),
    )


def allowed(moment: datetime, policy: PolicyConfig) -> bool:
    """Tell whether a message may leave at ``moment``, written out without the engine."""
    local = moment.astimezone(ZoneInfo(policy.time_zone))
    wall, day = local.time().replace(tzinfo=None, fold=0), local.date()
    start, end = policy.quiet_hours_start, policy.quiet_hours_end
    if start < end:
        quiet = start <= wall < end
    elif start > end:
        quiet = wall >= start or wall < end
    else:
        quiet = False
    holiday = policy.holiday_calendar()(day)
    if policy.holiday_handling == "ignore":
        blocked = False
    elif policy.holiday_handling == "next-working-day":
        blocked = holiday or day.weekday() >= _SATURDAY
    else:
        blocked = holiday
    return not quiet and not blocked


def _survey(send_at: datetime, expiry: timedelta, reminder: timedelta | None) -> SurveyState:
    scheduled = SurveyScheduled(
        survey_id="sv-q",
        citizen_key=KEY,
        contact_id="contact-q",
        touchpoint_id="tp-q",
        occurred_at=send_at,
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=send_at,
        send_at=send_at,
        reminder_at=None if reminder is None else send_at + reminder,
        expires_at=send_at + expiry,
    )
    details = ContactDetails(
        survey_id="sv-q",
        citizen_key=KEY,
        phone="+358401234567",
        language=Language.FI,
        stored_at=send_at,
    )
    return SurveyState("sv-q", Phase.PENDING, scheduled=scheduled, details=details)


class Shell:
    """The dispatcher, played in memory, checking every Deliver as it is issued."""

    def __init__(self, state: SurveyState, policy: PolicyConfig) -> None:
        self.state: SurveyState | None = state
        self.policy = policy
        self.retries = RetryPolicy(
            base=timedelta(seconds=30),
            cap=timedelta(minutes=20),
            hours=SendingHours(policy, policy.holiday_calendar()),
        )
        self.endings: list[object] = []
        self.deliveries: list[datetime] = []

    def apply(self, step: Step) -> None:
        """Carry out a step: note the survey's endings, store its state."""
        for command in step.commands:
            if isinstance(command, Publish) and isinstance(
                command.event, SurveySent | SurveyFailed | SurveyExpired
            ):
                self.endings.append(command.event)
        self.state = step.state

    def tick(self, now: datetime, outcome: ProviderOutcome | None, call: timedelta) -> None:
        """Call due() at ``now``, due or not; a Deliver gets ``outcome`` ``call`` later."""
        if self.state is None:
            return
        step = due(self.state, now, self.retries)
        self.apply(step)
        if not any(isinstance(command, Deliver) for command in step.commands):
            return
        assert allowed(now, self.policy), f"Deliver issued at {now} under {self.policy!r}"
        self.deliveries.append(now)
        if outcome is None or step.state is None:
            return  # crashed: the table keeps the DISPATCHING state
        self.apply(on_outcome(step.state, outcome, now + call, self.retries))


@settings(max_examples=400, deadline=None)
@given(
    policy=policies(),
    send_offset=st.integers(min_value=0, max_value=365 * 24 * 3600),
    expiry_hours=st.integers(min_value=1, max_value=24 * 7),
    reminder_hours=st.none() | st.integers(min_value=0, max_value=24 * 7),
    history=st.lists(st.tuples(delays, outcomes, call_times), max_size=30),
)
def test_no_deliver_is_ever_issued_in_quiet_hours_or_on_an_excluded_day(
    policy: PolicyConfig,
    send_offset: int,
    expiry_hours: int,
    reminder_hours: int | None,
    history: list[tuple[int, ProviderOutcome | None, int]],
) -> None:
    """Any schedule, any retries and delays, any ``now``: sends only ever leave when allowed."""
    send_at = START + timedelta(seconds=send_offset)
    expiry = timedelta(hours=expiry_hours)
    reminder = None
    if reminder_hours is not None and timedelta(hours=reminder_hours) < expiry:
        reminder = timedelta(hours=reminder_hours)
    shell = Shell(_survey(send_at, expiry, reminder), policy)
    now = send_at - timedelta(minutes=5)
    for seconds, outcome, call in history:
        now += timedelta(seconds=seconds)
        shell.tick(now, outcome, timedelta(seconds=call))

    # Then the dispatcher's own timing until the survey is gone: every step makes
    # progress, nothing leaves when it may not, and the survey ends on the record.
    while shell.state is not None:
        when = due_at(shell.state, shell.retries)
        assert when is not None, shell.state
        now = max(now, when)
        before = shell.state
        shell.tick(now, Accepted(), timedelta(seconds=1))
        assert shell.state != before, f"a due survey made no progress: {before}"
        if shell.state is not None and shell.state.phase.is_final:
            assert shell.endings, "the survey ended without an outcome on the surveys topic"
    assert len({type(event) for event in shell.endings if not _closing(event)}) <= 1


def _closing(event: object) -> bool:
    """Tell whether an event only closes a sent survey (SurveyExpired with was_sent)."""
    return isinstance(event, SurveyExpired) and event.was_sent


def test_the_written_out_rule_agrees_with_the_policy_on_a_known_night() -> None:
    """The test's own rule must see 23:30 on Christmas Eve in Helsinki as closed."""
    policy = PolicyConfig()
    christmas_eve = datetime.combine(date(2026, 12, 24), time(23, 30), ZoneInfo("Europe/Helsinki"))
    assert not allowed(christmas_eve, policy)
    assert allowed(datetime(2026, 12, 28, 8, 0, tzinfo=ZoneInfo("Europe/Helsinki")), policy)
