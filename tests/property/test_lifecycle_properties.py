"""Property tests of the survey lifecycle: one ending per survey, never two sends.

A survey is driven through random histories: ticks at random times, every
kind of provider answer, crashes at any point of a send (the table then
keeps what was stored before the provider was called), supersedes and
replays of every event. Whatever happens, at most one send may have reached
the citizen, at most one reminder, and the survey ends exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    on_event,
    on_outcome,
)
from schemas.base import Language, Scale, SurveyChannel
from schemas.surveys import SkipReason, SurveyScheduled, SurveySkipped
from schemas.vault import ContactDetails

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
KEY = "b" * 32
POLICY = RetryPolicy(
    base=timedelta(seconds=30),
    cap=timedelta(minutes=10),
    outcome_grace=timedelta(seconds=30),
    last_call=timedelta(minutes=1),
)
ENDINGS = {"SurveySent", "SurveyFailed"}

outcomes = st.sampled_from(
    [
        Accepted("SM1", 1),
        Transient("503"),
        Transient("429"),
        Refused("invalid number", "21211"),
        Refused("unsubscribed", "21610", opted_out=True),
        Unknown("timeout"),
        None,  # the worker crashed during the call
    ]
)
actions = st.one_of(
    st.tuples(st.just("tick"), st.integers(min_value=0, max_value=4 * 3600), outcomes),
    st.tuples(st.just("skip"), st.just(0), st.none()),
    st.tuples(st.just("replay"), st.just(0), st.none()),
    st.tuples(st.just("details"), st.just(0), st.none()),
)


def _scheduled(reminder: bool, life_hours: int) -> SurveyScheduled:
    send_at = T0 + timedelta(minutes=5)
    expires_at = send_at + timedelta(hours=life_hours)
    return SurveyScheduled(
        survey_id="sv-9",
        citizen_key=KEY,
        contact_id="contact-9",
        touchpoint_id="tp-9",
        occurred_at=T0,
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=T0,
        send_at=send_at,
        reminder_at=send_at + timedelta(hours=life_hours / 2) if reminder else None,
        expires_at=expires_at,
    )


def _details() -> ContactDetails:
    return ContactDetails(
        survey_id="sv-9",
        citizen_key=KEY,
        phone="+358401234567",
        language=Language.FI,
        stored_at=T0,
    )


class World:
    """The shell, played in memory: the table, the topic, and what reached the citizen."""

    def __init__(self, scheduled: SurveyScheduled) -> None:
        self.scheduled = scheduled
        self.state: SurveyState | None = None
        self.topic: list[object] = []
        self.maybe_delivered = 0  # sends that may have reached the citizen
        self.maybe_reminded = 0
        self.skipped = False

    def apply(self, step: Step) -> None:
        """Carry out a step: publish its events, store its state."""
        for command in step.commands:
            if isinstance(command, Publish):
                self.topic.append(command.event)
        self.state = step.state

    def feed(self, event: object, now: datetime) -> None:
        """Read an event from the topics, noting a skip that ended the survey."""
        before = self.state
        step = on_event(self.state, event, now)
        self.apply(step)
        if (
            isinstance(event, SurveySkipped)
            and before is not None
            and step.state is not None
            and step.state.phase is Phase.SKIPPED
            and before.phase is not Phase.SKIPPED
        ):
            self.skipped = True

    def tick(self, now: datetime, outcome: ProviderOutcome | None) -> None:
        """Act on what is due; a Deliver gets ``outcome``, or a crash when it is None."""
        if self.state is None:
            return
        step = due(self.state, now, POLICY)
        self.apply(step)
        deliver = next((c for c in step.commands if isinstance(c, Deliver)), None)
        if deliver is None or step.state is None:
            return
        if outcome is None or isinstance(outcome, Accepted | Unknown):
            # A crash during the call, an acceptance or a timeout: it may have arrived.
            if deliver.reminder:
                self.maybe_reminded += 1
            else:
                self.maybe_delivered += 1
        if outcome is None:
            return  # crashed: the table keeps the DISPATCHING state stored before the call
        self.apply(on_outcome(step.state, outcome, now, POLICY))


@settings(max_examples=300, deadline=None)
@given(
    reminder=st.booleans(),
    life_hours=st.integers(min_value=1, max_value=6),
    details_first=st.booleans(),
    history=st.lists(actions, max_size=25),
)
def test_a_survey_is_sent_at_most_once_and_ends_exactly_once(
    reminder: bool,
    life_hours: int,
    details_first: bool,
    history: list[tuple[str, int, ProviderOutcome | None]],
) -> None:
    """The two promises of the dispatcher, under any order of events, answers and crashes."""
    scheduled = _scheduled(reminder, life_hours)
    world = World(scheduled)
    now = T0
    first, second = (_details(), scheduled) if details_first else (scheduled, _details())
    world.feed(first, now)
    world.feed(second, now)
    for kind, seconds, outcome in history:
        now += timedelta(seconds=seconds)
        if kind == "tick":
            world.tick(now, outcome)
        elif kind == "skip":
            world.feed(
                SurveySkipped(
                    survey_id="sv-9",
                    citizen_key=KEY,
                    contact_id="contact-9",
                    touchpoint_id="tp-9",
                    occurred_at=now,
                    reason=SkipReason.SUPERSEDED,
                ),
                now,
            )
        elif kind == "replay":
            for event in [scheduled, *world.topic]:
                world.feed(event, now)
        else:
            world.feed(_details(), now)
        assert world.maybe_delivered <= 1
        assert world.maybe_reminded <= 1
    # Time runs out: every survey reaches its ending, and is then forgotten.
    while world.state is not None:
        when = due_at(world.state, POLICY)
        assert when is not None, world.state
        now = max(now, when)
        before = world.state
        world.tick(now, Accepted())
        assert world.state != before, "a due survey made no progress"
    assert world.maybe_delivered <= 1
    assert world.maybe_reminded <= 1
    endings = [e for e in world.topic if getattr(e, "type", None) in ENDINGS]
    expired_unsent = [
        e for e in world.topic if getattr(e, "type", None) == "SurveyExpired" and not e.was_sent
    ]
    assert len(endings) + len(expired_unsent) + int(world.skipped) == 1
    sent = [e for e in world.topic if getattr(e, "type", None) == "SurveySent"]
    assert len(sent) <= world.maybe_delivered
    closed = [e for e in world.topic if getattr(e, "type", None) == "SurveyExpired" and e.was_sent]
    assert len(closed) == len(sent)
