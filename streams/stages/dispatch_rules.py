"""The scheduler's rules between records and :mod:`engine.lifecycle`, each public and pure.

:class:`streams.stages.dispatch.ScheduleSurveys` is made of these: what the
forwarders put on its topic (:func:`survey_to_forward`,
:func:`answer_to_forward`), whose tick may end a send in flight
(:func:`is_own_tick`, :func:`act_on`), when an event read back is
published again (:func:`republishes`), whether an outcome read back is
that of the send in flight (:func:`belongs`, :func:`fold_outcome`), and
how a lifecycle step becomes records, state and observations, in the order
they must go (:func:`effects`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.lifecycle import (
    Drop,
    ForgetDetails,
    Phase,
    Publish,
    RecordOptOut,
    RetryPolicy,
    Step,
    due,
    due_at,
    on_outcome,
)
from engine.sendtime import SendingHours
from schemas.responses import OptOut, RatingReceived
from schemas.vault import ContactDetails
from streams.runtime.model import Output, Produce, Rejection
from streams.stages.dispatch_records import (
    ANSWER_MARKERS,
    ECHO_HEADER,
    DeliveryOutcome,
    SendSurvey,
    decode_record,
    encode_entry,
    encode_outcome,
    is_echo,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from engine.lifecycle import ProviderOutcome, SurveyState
    from schemas.base import SurveyChannel
    from schemas.config import Settings
    from schemas.surveys import SurveyEvent
    from streams.runtime.model import Header

#: The stage label of the scheduler's dead letters and counters.
LABEL = "scheduler"
#: Output roles, which the runtime maps onto topics: the stage's own input
#: (echoes, outcomes), the surveys, responses and vault topics.
BY_SURVEY = "surveys-by-id"
SURVEYS = "surveys"
RESPONSES = "responses"
VAULT = "vault"
#: Surveys one checkpoint hands to the provider; a tick with more due goes again.
SENDS_PER_TICK = 1
#: Surveys one tick looks at; a tick with more due goes again.
ACTS_PER_TICK = 500
UNREADABLE = "unreadable_survey_record"
UNREADABLE_REASON = "not a survey lifecycle event or contact details of a known version"
_IN_FLIGHT = frozenset({Phase.DISPATCHING, Phase.REMINDING})
_ECHO: tuple[Header, ...] = ((ECHO_HEADER, b"1"),)


@dataclass(frozen=True, slots=True)
class Due:
    """An observation: look at this survey again at ``when`` (None: only an event can)."""

    partition: int
    survey_id: str
    when: datetime | None


@dataclass(frozen=True, slots=True)
class Tally:
    """An observation: a survey was sent, failed or expired unsent, by this channel."""

    outcome: str
    channel: SurveyChannel | None


@dataclass(frozen=True, slots=True)
class Ticked:
    """An observation: a tick of this partition, written by this run, was handled."""

    partition: int
    writer: str


@dataclass(frozen=True, slots=True)
class Later:
    """A tick's answer for a survey not to act on now: look again at ``when``."""

    when: datetime | None


def retry_policy(settings: Settings) -> RetryPolicy:
    """Build the lifecycle's retry policy from ``[dispatch]``, with ``[policy]``'s quiet hours.

    The quiet hours and excluded days are checked again at the moment of
    every send (:func:`engine.lifecycle.due`), not only when the intake plans it.
    """
    dispatch = settings.dispatch
    return RetryPolicy(
        base=dispatch.retry_base,
        cap=dispatch.retry_cap,
        max_attempts=dispatch.max_attempts,
        forget_after=dispatch.finished_retention,
        outcome_grace=dispatch.outcome_grace,
        last_call=dispatch.last_call,
        hours=SendingHours(settings.policy, settings.policy.holiday_calendar()),
    )


def survey_to_forward(value: bytes | None) -> bytes | Rejection | None:
    """Give the survey id a surveys or vault record is forwarded under, or its rejection.

    None leaves the record: a vault tombstone is ours, with nothing to schedule.
    """
    if value is None:
        return None
    record = decode_record(value)
    if record is None:
        return Rejection(UNREADABLE, UNREADABLE_REASON)
    return record.survey_id.encode()


def answer_to_forward(value: bytes | None) -> bytes | None:
    """Give the survey id an answer is forwarded under; None for what other stages read."""
    if value is None or not any(marker in value for marker in ANSWER_MARKERS):
        return None
    record = decode_record(value)
    return record.survey_id.encode() if isinstance(record, RatingReceived | OptOut) else None


def is_own_tick(writer: str, run: str) -> bool:
    """Tell whether a tick was written by this run (a tick of an unknown run never is)."""
    return writer != "" and writer == run


def act_on(
    state: SurveyState, now: datetime, policy: RetryPolicy, *, own_tick: bool
) -> Step | Later:
    """Say what a tick does to one survey: a lifecycle step, or look again later.

    A send in flight seen by an earlier owner's tick waits for this run's own
    tick: its outcome may still be ahead in the partition.
    """
    when = due_at(state, policy)
    if when is None or when > now:
        return Later(when)
    if not own_tick and state.phase in _IN_FLIGHT:
        return Later(now)
    return due(state, now, policy)


def republishes(
    record: object, headers: Sequence[Header], before: SurveyState | None, step: Step
) -> bool:
    """Tell whether an event read back must be published (again) to the surveys topic.

    An echo of the scheduler's own event that finds the state behind it was
    written before a crash that may have kept it from the surveys topic; it
    is published again, identical, which readers count once.
    """
    return (
        step.state != before
        and is_echo(headers)
        and not isinstance(record, ContactDetails | RatingReceived | OptOut)
    )


def belongs(state: SurveyState, outcome: DeliveryOutcome) -> bool:
    """Tell whether an outcome read back is that of the send now in flight.

    A replayed outcome of an earlier attempt must not end a later one.
    """
    if outcome.reminder:
        return state.phase is Phase.REMINDING
    return state.phase is Phase.DISPATCHING and state.attempts == outcome.attempt


def fold_outcome(state: SurveyState, outcome: DeliveryOutcome, policy: RetryPolicy) -> Step:
    """Fold in what the provider answered, at the time it answered."""
    if not belongs(state, outcome):
        return Step(state)
    return on_outcome(state, outcome.outcome, outcome.at, policy)


def outcome_record(command: SendSurvey, outcome: ProviderOutcome, at: datetime) -> Produce:
    """Write the provider's answer back to the survey's partition, for the stage to fold in."""
    value = encode_outcome(
        DeliveryOutcome(command.survey_id, command.attempt, command.reminder, outcome, at)
    )
    return Produce(BY_SURVEY, command.survey_id.encode(), value, command.partition)


def _tally(event: SurveyEvent, state: SurveyState | None) -> Tally | None:
    channel = None if state is None or state.scheduled is None else state.scheduled.channel
    kind = getattr(event, "type", "")
    if kind == "SurveySent":
        return Tally("sent", channel)
    if kind == "SurveyFailed":
        return Tally("failed", channel)
    if kind == "SurveyExpired" and state is not None and state.phase is Phase.EXPIRED:
        return Tally("expired", channel)
    return None


@dataclass
class Effects:
    """The records, state and observations one or more steps add up to."""

    echoes: list[Produce]
    publishes: list[Produce]
    after: list[Produce]
    state: dict[str, str | None]
    observations: list[Any]

    @classmethod
    def empty(cls) -> Effects:
        """Nothing yet."""
        return cls([], [], [], {}, [])

    def output(self, commands: Sequence[SendSurvey] = (), *, again: bool = False) -> Output:
        """Give the stage's output: these effects, the commands, and whether to go again."""
        return Output(
            produce=(*self.echoes, *self.publishes, *self.after),
            state=self.state,
            observations=tuple(self.observations),
            commands=tuple(commands),
            again=again,
        )


def effects(partition: int, survey_id: str, step: Step, policy: RetryPolicy, into: Effects) -> None:
    """Turn a lifecycle step into records, state and observations, in the order they must go.

    Echoes first (to the survey's partition), then the publications, then
    the vault tombstones; the state last (the runtime stores it once all of
    them are acknowledged). A Deliver is not here: the tick makes it a command.
    """
    for command in step.commands:
        if isinstance(command, Publish):
            value = command.event.model_dump_json().encode()
            into.echoes.append(Produce(BY_SURVEY, survey_id.encode(), value, partition, _ECHO))
            into.publishes.append(Produce(SURVEYS, command.event.citizen_key.encode(), value))
            tally = _tally(command.event, step.state)
            if tally is not None:
                into.observations.append(tally)
        elif isinstance(command, RecordOptOut):
            opt_out = command.opt_out
            into.publishes.append(
                Produce(RESPONSES, opt_out.survey_id.encode(), opt_out.model_dump_json().encode())
            )
        elif isinstance(command, ForgetDetails):
            into.after.append(Produce(VAULT, command.survey_id.encode(), None))
    dropped = step.state is None or any(isinstance(c, Drop) for c in step.commands)
    into.state[survey_id] = (
        None if dropped or step.state is None else encode_entry(partition, step.state)
    )
    when = None if dropped or step.state is None else due_at(step.state, policy)
    into.observations.append(Due(partition, survey_id, when))
