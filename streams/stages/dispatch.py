"""The scheduler as a pure stage: each survey's life, its sends asked for as commands.

:class:`ScheduleSurveys` reads the internal topic ``<app>-surveys-by-id``
(keyed by survey id; the forwarders decide what goes there with
:func:`survey_to_forward`, :func:`answer_to_forward` and
:class:`ForwardDetails`) and keeps one :class:`~engine.lifecycle.SurveyState`
per survey. The rules are :mod:`engine.lifecycle`'s; this module says how
records become calls to them and how their steps become the stage's output
(:func:`effects`):

- a survey event, contact details or an answer is folded in with
  :func:`~engine.lifecycle.on_event`; an echo of the scheduler's own event
  that finds the state behind is published again (:func:`republishes`);
- a **tick** acts on the surveys the :class:`Agenda` says are due in its
  partition (:func:`act_on`), under the **own-tick rule** (:func:`is_own_tick`):
  a send in flight is ended as outcome-unknown only by a tick of the run
  that owns the partition now, since every record of an earlier owner,
  its last outcome included, precedes such a tick;
- a **send** is asked for as a :class:`~streams.stages.dispatch_records.SendSurvey`
  command, in the same output that stores the survey as DISPATCHING and
  publishes SurveyDispatching. The runtime carries a command out only once
  those are acknowledged and the state is durable
  (:meth:`streams.runtime.checkpoint.Checkpoint.carry_out`), and writes what
  the provider answered back to the survey's partition; the stage folds it
  in (:func:`fold_outcome`) with the time it carries, so a replay publishes
  the same events. A checkpoint hands at most one survey to the provider
  (:data:`~streams.stages.dispatch_rules.SENDS_PER_TICK`, and the agenda's
  one place a checkpoint); a tick with more due asks to be handled again
  (``Output.again``), so a crash leaves at most one send whose outcome
  nobody knows.

The :class:`Agenda` is the stage's view of the process around it: the run's
token, the due index (in memory, a hint re-checked against the state) and
the rate limit. It can delay a send, never repeat one: at most once rests on
the stored state alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from engine.lifecycle import Deliver, Publish, Refused, Step, due_at, on_event, on_outcome
from engine.tokens import SigningKey, TokenSigner
from schemas.responses import OptOut, RatingReceived
from schemas.vault import ContactDetails
from streams.runtime.model import NOTHING, Output, Produce, Rejection
from streams.stages.dispatch_records import (
    Composer,
    SendSurvey,
    compose,
    decode_entry,
    decode_outcome,
    decode_record,
    tick_run,
)
from streams.stages.dispatch_rules import (
    ACTS_PER_TICK,
    BY_SURVEY,
    LABEL,
    RESPONSES,
    SENDS_PER_TICK,
    SURVEYS,
    UNREADABLE,
    UNREADABLE_REASON,
    VAULT,
    Due,
    Effects,
    Later,
    Tally,
    Ticked,
    act_on,
    answer_to_forward,
    effects,
    fold_outcome,
    is_own_tick,
    outcome_record,
    republishes,
    retry_policy,
    survey_to_forward,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from engine.lifecycle import RetryPolicy
    from schemas.base import SurveyChannel
    from schemas.config import Settings
    from streams.runtime.model import Record, StateView
    from streams.stages.dispatch_records import DeliveryOutcome

__all__ = [
    "BY_SURVEY",
    "LABEL",
    "RESPONSES",
    "SURVEYS",
    "VAULT",
    "Agenda",
    "Due",
    "ForwardAnswers",
    "ForwardDetails",
    "ForwardSurveyEvents",
    "ScheduleSurveys",
    "Tally",
    "Ticked",
    "answer_to_forward",
    "outcome_record",
    "retry_policy",
    "survey_to_forward",
]


class Agenda(Protocol):
    """The scheduler's view of its process: its run, the due index and the rate limit."""

    def run(self) -> str:
        """Give the token of this run, new at every assignment of partitions."""

    def due(self, partition: int, now: datetime, limit: int) -> Sequence[str]:
        """Give up to ``limit`` survey ids of the partition that may be due by ``now``.

        Each id given is in hand until a :class:`Due` observation for it is
        settled, and given again until then.
        """

    def admit(self, channel: SurveyChannel, now: datetime) -> datetime | None:
        """Take a send's place; None: go, else when to try again (``now``: at the next batch).

        A send needs room in the channel's rate limit, and is the one send of
        its batch: the runtime carries out a batch's sends one after the
        other, so one a batch keeps what a crash can leave in flight to one.
        The place is free again once a batch with a tick is done (the
        :class:`Ticked` observation).
        """


class ScheduleSurveys:
    """The scheduler: one SurveyState per survey, its sends asked for as commands."""

    name = "dispatch-scheduler"
    label = LABEL

    def __init__(self, settings: Settings, agenda: Agenda) -> None:
        dispatch = settings.dispatch
        self._policy = retry_policy(settings)
        self._agenda = agenda
        key = settings.secrets.link_signing_key.get_secret_value().encode()
        self._composer = Composer(
            settings,
            TokenSigner([SigningKey(dispatch.link_key_id, key)]),
            str(settings.web.public_base_url),
        )

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy the stage decides with."""
        return self._policy

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Apply one record of the internal topic (an event, an outcome or a tick)."""
        writer = tick_run(record.value)
        if writer is not None:
            return self.on_tick(state, record.partition, writer, now)
        try:
            outcome = decode_outcome(record.value)
        except ValueError:
            return Output(rejection=Rejection(UNREADABLE, "a damaged delivery outcome"))
        if outcome is not None:
            return self._on_outcome(state, record.partition, outcome)
        decoded = decode_record(record.value or b"")
        if decoded is None:
            return Output(rejection=Rejection(UNREADABLE, UNREADABLE_REASON))
        survey_id = decoded.survey_id
        stored = state.get(survey_id)
        before = None if stored is None else decode_entry(stored)[1]
        step = on_event(before, decoded, now)
        if not isinstance(decoded, ContactDetails | RatingReceived | OptOut) and republishes(
            decoded, record.headers, before, step
        ):
            step = Step(step.state, (Publish(decoded), *step.commands))
        if step.state == before and not step.commands:
            return NOTHING
        into = Effects.empty()
        effects(record.partition, survey_id, step, self._policy, into)
        return into.output()

    def _on_outcome(self, state: StateView, partition: int, outcome: DeliveryOutcome) -> Output:
        stored = state.get(outcome.survey_id)
        if stored is None:
            return NOTHING
        before = decode_entry(stored)[1]
        step = fold_outcome(before, outcome, self._policy)
        if step.state == before and not step.commands:
            return NOTHING
        into = Effects.empty()
        effects(partition, outcome.survey_id, step, self._policy, into)
        return into.output()

    def on_tick(self, state: StateView, partition: int, writer: str, now: datetime) -> Output:
        """Act on the surveys due in the partition; hand at most SENDS_PER_TICK to the provider."""
        own = is_own_tick(writer, self._agenda.run())
        ids = self._agenda.due(partition, now, ACTS_PER_TICK)
        into = Effects.empty()
        into.observations.append(Ticked(partition, writer))
        commands: list[SendSurvey] = []
        more = len(ids) >= ACTS_PER_TICK
        for survey_id in ids:
            stored = state.get(survey_id)
            if stored is None:
                into.observations.append(Due(partition, survey_id, None))
                continue
            current = decode_entry(stored)[1]
            step = act_on(current, now, self._policy, own_tick=own)
            if isinstance(step, Later):
                into.observations.append(Due(partition, survey_id, step.when))
                continue
            deliver = next((c for c in step.commands if isinstance(c, Deliver)), None)
            if deliver is not None:
                if len(commands) >= SENDS_PER_TICK:
                    into.observations.append(Due(partition, survey_id, now))
                    more = True
                    continue
                wait = self._agenda.admit(deliver.channel, now)
                if wait is not None:
                    into.observations.append(Due(partition, survey_id, wait))
                    # Held only by the checkpoint's one send: the next can go at once.
                    more = more or wait <= now
                    continue
                step, command = self._send(step, deliver, partition, now)
                if command is not None:
                    commands.append(command)
            if step.state == current and not step.commands:
                into.observations.append(Due(partition, survey_id, due_at(current, self._policy)))
                continue
            effects(partition, survey_id, step, self._policy, into)
        return into.output(commands, again=more)

    def _send(
        self, step: Step, deliver: Deliver, partition: int, now: datetime
    ) -> tuple[Step, SendSurvey | None]:
        """Compose the message of a step that delivers; one that cannot be built is refused."""
        sending = step.state
        assert sending is not None  # noqa: S101 - due() delivers only with a state
        message = compose(sending, deliver.channel, self._composer, now, reminder=deliver.reminder)
        others = tuple(c for c in step.commands if not isinstance(c, Deliver))
        if isinstance(message, Refused):
            after = on_outcome(sending, message, now, self._policy)
            return Step(after.state, (*others, *after.commands)), None
        command = SendSurvey(
            survey_id=sending.survey_id,
            partition=partition,
            channel=deliver.channel,
            attempt=sending.attempts,
            reminder=deliver.reminder,
            message=message,
        )
        return Step(sending, others), command


class ForwardSurveyEvents:
    """The scheduler's part of the surveys topic: every survey event, by survey id."""

    label = LABEL

    def handle(self, record: Record, now: datetime) -> Output:
        """Forward a survey event under its survey id; reject what no stage can read."""
        del now
        return _forwarded(survey_to_forward(record.value), record)


class ForwardAnswers:
    """The scheduler's part of the responses topic: ratings and opt-outs, by survey id."""

    label = LABEL

    def handle(self, record: Record, now: datetime) -> Output:
        """Forward an answer under its survey id; statements and the rest are others'."""
        del now
        return _forwarded(answer_to_forward(record.value), record)


def _forwarded(forward: bytes | Rejection | None, record: Record) -> Output:
    if forward is None:
        return NOTHING
    if isinstance(forward, Rejection):
        return Output(rejection=forward)
    return Output(produce=(Produce(BY_SURVEY, forward, record.value),))


class ForwardDetails:
    """The vault's forwarder: each survey's contact details onto the internal topic."""

    name = "dispatch-vault-by-id"
    label = LABEL

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Forward readable details by survey id; a tombstone is ours; the rest is rejected."""
        del state, now
        return _forwarded(survey_to_forward(record.value), record)
