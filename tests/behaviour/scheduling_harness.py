"""One behaviour suite, two runtimes: scheduling and dispatch as a test sees them.

A behaviour test schedules surveys (their contact details on the vault
topic and their SurveyScheduled on the surveys topic, as the intake writes
them), writes answers and skips, lets time pass, and reads what was sent
and what the surveys topic says. :class:`MemoryScheduling` runs the
scheduler stage on the in-memory runtime with a clock of its own, writes
ticks as the worker's timer does, and records every send with a
deterministic recorder in place of a provider; a crash can be injected at
any step of any of its stages. :class:`KafkaScheduling` feeds ``palaute
worker`` on the session's broker, whose real twilio client sends to the
Twilio simulator.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaProducer
from pydantic import TypeAdapter

from engine.lifecycle import Accepted, Transient
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.contacts import TouchpointChannel
from schemas.responses import AnswerVia, OptOut, RatingReceived
from schemas.surveys import SkipReason, SurveyLifecycleEvent, SurveyScheduled, SurveySkipped
from schemas.topics import TopicNames
from schemas.vault import ContactDetails
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.fanout import FanOut
from streams.runtime.memory import MemoryBroker, MemoryRuntime
from streams.runtime.model import Produce
from streams.scheduling import Pacer, RunAgenda
from streams.sending import Deliveries
from streams.stages.dispatch import (
    BY_SURVEY,
    RESPONSES,
    SURVEYS,
    VAULT,
    ForwardAnswers,
    ForwardDetails,
    ForwardSurveyEvents,
    ScheduleSurveys,
    retry_policy,
)
from streams.stages.dispatch_records import SendSurvey, tick_value

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from engine.lifecycle import ProviderOutcome
    from tests.integration.dispatch_harness import Reader, Worker

CITIZEN = "ab" * 32
TOPICS = {
    BY_SURVEY: "by-survey",
    SURVEYS: "surveys",
    RESPONSES: "responses",
    VAULT: "vault",
    DEADLETTER: "dlq",
}
_EVENTS: TypeAdapter[Any] = TypeAdapter(SurveyLifecycleEvent)
ENDINGS = ("SurveySent", "SurveyFailed", "SurveyExpired", "SurveySkipped")
#: How long a worker may take to send its first survey (its start, on a busy machine).
WARM_UP_SECONDS = 120.0


def phone_of(number: int) -> str:
    """Give a valid Finnish mobile number, one per survey of a test."""
    return f"+35840{7_000_000 + number:07d}"


def scheduled_event(
    survey_id: str,
    send_at: datetime,
    *,
    reminder_at: datetime | None = None,
    expires_at: datetime,
) -> SurveyScheduled:
    """Write a survey by SMS, as the intake schedules it."""
    return SurveyScheduled(
        survey_id=survey_id,
        citizen_key=CITIZEN,
        contact_id=f"c-{survey_id}",
        touchpoint_id="phone-service",
        occurred_at=send_at,
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=send_at,
        send_at=send_at,
        reminder_at=reminder_at,
        expires_at=expires_at,
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
    )


def details_of(survey_id: str, phone: str, now: datetime) -> ContactDetails:
    """Give the survey's contact details, as the intake writes them to the vault."""
    return ContactDetails(
        survey_id=survey_id,
        citizen_key=CITIZEN,
        phone=phone,
        language=Language.FI,
        stored_at=now,
    )


def skip_event(survey_id: str, now: datetime) -> SurveySkipped:
    """Give a newer contact's supersession of a pending survey."""
    return SurveySkipped(
        survey_id=survey_id,
        citizen_key=CITIZEN,
        contact_id=f"c-{survey_id}",
        touchpoint_id="phone-service",
        occurred_at=now,
        reason=SkipReason.SUPERSEDED,
    )


@dataclass
class Outcome:
    """What was sent (messages per survey) and what the surveys topic says of each survey."""

    sends: dict[str, int] = field(default_factory=dict)
    events: dict[str, list[Any]] = field(default_factory=dict)

    def kinds(self, survey_id: str) -> list[str]:
        """Give the distinct kinds of event the surveys topic holds for a survey, in order."""
        return list(dict.fromkeys(event.type for event in self.events.get(survey_id, [])))

    def endings(self, survey_id: str) -> set[str]:
        """Give a survey's distinct endings: a repeat of the same record counts once."""
        return {
            event.model_dump_json()
            for event in self.events.get(survey_id, [])
            if event.type in ENDINGS and not (event.type == "SurveyExpired" and event.was_sent)
        }


def outcome_of(sends: dict[str, int], surveys: list[bytes | None]) -> Outcome:
    """Read the sends and the surveys topic's records into an outcome."""
    outcome = Outcome(dict(sends))
    for value in surveys:
        event = _EVENTS.validate_json(value or b"")
        outcome.events.setdefault(event.survey_id, []).append(event)
    return outcome


class SchedulingHarness(Protocol):
    """What a behaviour test of scheduling and dispatch needs, whichever runtime is under it."""

    def now(self) -> datetime:
        """Give the runtime's present moment."""

    async def schedule(
        self,
        survey_id: str,
        send_at: datetime,
        *,
        reminder_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        """Write the survey's details to the vault and its SurveyScheduled to the surveys topic."""

    async def sending(self) -> None:
        """Wait until the runtime sends what is due, so that a test's clock starts there.

        A test that times one record against another (an answer before the
        reminder is due) must not count the runtime's start-up in that time.
        """

    async def answer(self, survey_id: str, *, opt_out: bool = False) -> None:
        """Write a confirmed rating (or an opt-out) of the survey to the responses topic."""

    async def skip(self, survey_id: str) -> None:
        """Write a SurveySkipped (superseded) of the survey to the surveys topic."""

    async def run_until(self, done: Callable[[Outcome], bool], seconds: float) -> Outcome:
        """Let up to ``seconds`` pass until ``done`` holds (then a little longer, for repeats)."""


class RecordingSenders:
    """A provider that records every send; each survey's answers can be scripted, in order."""

    def __init__(self) -> None:
        self.sent: list[SendSurvey] = []
        self.script: dict[str, list[ProviderOutcome]] = {}
        self.answers: dict[str, list[ProviderOutcome]] = {}
        self.phones: dict[str, str] = {}

    async def send(self, command: SendSurvey) -> ProviderOutcome:
        """Record the send and give the next scripted answer (Accepted when none is left)."""
        self.sent.append(command)
        scripted = self.script.get(command.survey_id)
        answer = scripted.pop(0) if scripted else Accepted(f"SM{len(self.sent):032d}", 1)
        self.answers.setdefault(command.survey_id, []).append(answer)
        return answer

    def delivered(self, survey_id: str, *, reminder: bool = False) -> int:
        """Count the messages that may have reached the citizen: every answer but a transient."""
        return sum(
            1
            for command, answer in zip(self.sent, self._all_answers(), strict=True)
            if command.survey_id == survey_id
            and command.reminder is reminder
            and not isinstance(answer, Transient)
        )

    def _all_answers(self) -> list[ProviderOutcome]:
        taken = dict.fromkeys(self.answers, 0)
        ordered = []
        for command in self.sent:
            ordered.append(self.answers[command.survey_id][taken[command.survey_id]])
            taken[command.survey_id] += 1
        return ordered

    def per_survey(self) -> dict[str, int]:
        """Count the messages sent per survey."""
        counts: dict[str, int] = {}
        for command in self.sent:
            counts[command.survey_id] = counts.get(command.survey_id, 0) + 1
        return counts


class MemoryScheduling:
    """The scheduler on the in-memory runtime, with its own clock, ticks and a send recorder."""

    def __init__(
        self,
        config: Path,
        start: datetime,
        crash: Callable[[str, str], bool] = lambda _stage, _step: False,
    ) -> None:
        self.settings = load_settings(config)
        self.clock = start
        self.partitions = self.settings.streams.partitions
        self.broker = MemoryBroker(partitions=self.partitions)
        self.runtime = MemoryRuntime(self.broker, clock=self.now, crash=crash)
        self.senders = RecordingSenders()
        runs = iter(range(1_000_000))
        # The clock is replaced as time passes: read it at each call.
        pacer = Pacer(self.settings.dispatch, monotonic=lambda: self.clock.timestamp())  # noqa: PLW0108
        self.agenda = RunAgenda(
            retry_policy(self.settings),
            pacer,
            lambda: self.runtime.state(ScheduleSurveys.name).items(),
            lambda: set(range(self.partitions)),
            tokens=lambda: f"run-{next(runs)}",
        )
        self.stage = ScheduleSurveys(self.settings, self.agenda)
        self.runtime.add(
            self.stage,
            TOPICS[BY_SURVEY],
            TOPICS,
            execute=Deliveries(self.senders, pacer, clock=self.now),
            observe=self.agenda.observe,
        )
        self.runtime.add(ForwardDetails(), TOPICS[VAULT], TOPICS)
        # The worker's shared readers, with the scheduler's parts.
        for role, part in (("surveys", ForwardSurveyEvents()), ("responses", ForwardAnswers())):
            reader = FanOut(f"{role}-reader")
            reader.add(part, {BY_SURVEY: TOPICS[BY_SURVEY], DEADLETTER: TOPICS[DEADLETTER]})
            self.runtime.add(reader, TOPICS[role], reader.topics)
        self._restarts = 0
        self._phones = 0

    def now(self) -> datetime:
        """Give the harness's clock."""
        return self.clock

    async def schedule(
        self,
        survey_id: str,
        send_at: datetime,
        *,
        reminder_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        """Write details and SurveyScheduled to the in-memory topics."""
        self._phones += 1
        phone = phone_of(self._phones)
        self.senders.phones[phone] = survey_id
        details = details_of(survey_id, phone, self.clock)
        self.broker.send(TOPICS[VAULT], survey_id.encode(), details.model_dump_json().encode())
        event = scheduled_event(
            survey_id,
            send_at,
            reminder_at=reminder_at,
            expires_at=expires_at or send_at + timedelta(days=3),
        )
        self.broker.send(TOPICS[SURVEYS], CITIZEN.encode(), event.model_dump_json().encode())

    async def sending(self) -> None:
        """Nothing to wait for: the in-memory runtime sends at its first step."""

    async def answer(self, survey_id: str, *, opt_out: bool = False) -> None:
        """Write a confirmed rating or an opt-out to the in-memory responses topic."""
        self.broker.send(
            TOPICS[RESPONSES], survey_id.encode(), _answer(survey_id, self.clock, opt_out=opt_out)
        )

    async def skip(self, survey_id: str) -> None:
        """Write a supersession to the in-memory surveys topic."""
        value = skip_event(survey_id, self.clock).model_dump_json().encode()
        self.broker.send(TOPICS[SURVEYS], CITIZEN.encode(), value)

    def tick(self) -> None:
        """Write a tick of this run to every partition, as the worker's timer does."""
        for partition in range(self.partitions):
            self.broker.append(
                TOPICS[BY_SURVEY],
                Produce(TOPICS[BY_SURVEY], b"tick", tick_value(self.agenda.run()), partition),
            )

    async def run_dry(self) -> None:
        """Run every stage until none has work; a crashed scheduler begins a new run."""
        for _ in range(100_000):
            worked = await self.runtime.step()
            restarts = self.runtime.restarts(ScheduleSurveys.name)
            if restarts != self._restarts:
                self._restarts = restarts
                self.agenda.restart()
            if not worked:
                return
        raise AssertionError("the runtime was still busy")

    async def advance(self, seconds: float, step: timedelta | None = None) -> None:
        """Let time pass tick by tick, running the stages dry after each tick."""
        interval = step or self.settings.dispatch.tick
        end = self.clock + timedelta(seconds=seconds)
        await self.run_dry()
        while self.clock < end:
            self.clock = min(end, self.clock + interval)
            self.tick()
            await self.run_dry()

    def outcome(self) -> Outcome:
        """Give what was sent and what the surveys topic holds."""
        return outcome_of(
            self.senders.per_survey(), [r.value for r in self.broker.records(TOPICS[SURVEYS])]
        )

    async def run_until(self, done: Callable[[Outcome], bool], seconds: float) -> Outcome:
        """Advance the clock until ``done`` holds, and five seconds more."""
        end = self.clock + timedelta(seconds=seconds)
        while not done(self.outcome()):
            assert self.clock < end, self.outcome()
            await self.advance(1.0)
        await self.advance(5.0)
        return self.outcome()


def _answer(survey_id: str, now: datetime, *, opt_out: bool) -> bytes:
    if opt_out:
        event: OptOut | RatingReceived = OptOut(
            answer_id=f"o-{survey_id}",
            survey_id=survey_id,
            citizen_key=CITIZEN,
            via=AnswerVia.SMS_REPLY,
            received_at=now,
        )
    else:
        event = RatingReceived(
            answer_id=f"a-{survey_id}",
            survey_id=survey_id,
            score=4,
            via=AnswerVia.SMS_REPLY,
            received_at=now,
            confirmed=True,
        )
    return event.model_dump_json().encode()


class KafkaScheduling:
    """``palaute worker`` on the session's broker; its SMS go to the Twilio simulator."""

    def __init__(
        self, bootstrap: str, suffix: str, worker: Worker, surveys: Reader, simulator: Any
    ) -> None:
        self.bootstrap = bootstrap
        self.names = TopicNames.with_suffix(suffix)
        self.worker = worker
        self.surveys = surveys
        self.simulator = simulator
        self.phones: dict[str, str] = {}

    def now(self) -> datetime:
        """Give the wall clock: the worker's."""
        return datetime.now(UTC)

    async def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(topic, key=key, value=value)
        finally:
            await producer.stop()

    async def schedule(
        self,
        survey_id: str,
        send_at: datetime,
        *,
        reminder_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        """Produce the details to the vault and the SurveyScheduled to the surveys topic."""
        phone = phone_of(len(self.phones) + 1)
        self.phones[phone] = survey_id
        details = details_of(survey_id, phone, self.now())
        await self._produce(
            self.names.vault, survey_id.encode(), details.model_dump_json().encode()
        )
        event = scheduled_event(
            survey_id,
            send_at,
            reminder_at=reminder_at,
            expires_at=expires_at or send_at + timedelta(days=3),
        )
        await self._produce(self.names.surveys, CITIZEN.encode(), event.model_dump_json().encode())

    async def sending(self) -> None:
        """Send one survey that no test counts, and wait until the worker has sent it.

        The worker takes its partitions some time after it starts (tens of
        seconds on a busy machine); until then nothing is sent, and a
        reminder due meanwhile goes out with the first message.
        """
        survey_id = f"warm-up-{uuid.uuid4().hex[:8]}"
        details = details_of(survey_id, phone_of(999_999), self.now())
        await self._produce(
            self.names.vault, survey_id.encode(), details.model_dump_json().encode()
        )
        event = scheduled_event(survey_id, self.now(), expires_at=self.now() + timedelta(days=3))
        await self._produce(self.names.surveys, CITIZEN.encode(), event.model_dump_json().encode())
        deadline = time.monotonic() + WARM_UP_SECONDS
        while "SurveySent" not in self.outcome().kinds(survey_id):
            assert self.worker.alive(), f"worker died:\n{self.worker.tail()}"
            assert time.monotonic() < deadline, f"nothing sent:\n{self.worker.tail()}"
            await self.surveys.poll()
            await asyncio.sleep(0.1)

    async def answer(self, survey_id: str, *, opt_out: bool = False) -> None:
        """Produce a confirmed rating or an opt-out to the responses topic."""
        value = _answer(survey_id, self.now(), opt_out=opt_out)
        await self._produce(self.names.responses, survey_id.encode(), value)

    async def skip(self, survey_id: str) -> None:
        """Produce a supersession to the surveys topic."""
        value = skip_event(survey_id, self.now()).model_dump_json().encode()
        await self._produce(self.names.surveys, CITIZEN.encode(), value)

    def outcome(self) -> Outcome:
        """Give what reached the simulator and what the surveys topic holds."""
        sends: dict[str, int] = {}
        for message in self.simulator.messages:
            survey_id = self.phones.get(message["to"])
            if survey_id is not None:
                sends[survey_id] = sends.get(survey_id, 0) + 1
        return outcome_of(sends, [r.value for r in self.surveys.records])

    async def run_until(self, done: Callable[[Outcome], bool], seconds: float) -> Outcome:
        """Read until ``done`` holds, then three seconds more, so that a repeat would show."""
        deadline = time.monotonic() + seconds * 2 + 30
        while not done(self.outcome()):
            assert self.worker.alive(), f"worker died:\n{self.worker.tail()}"
            assert time.monotonic() < deadline, f"timed out: {self.outcome()}\n{self.worker.tail()}"
            await self.surveys.poll()
            await asyncio.sleep(0.1)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            await self.surveys.poll()
        return self.outcome()
