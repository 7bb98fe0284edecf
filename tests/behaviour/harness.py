"""One behaviour suite, two runtimes: the intake as a test sees it, in memory or on Kafka.

A behaviour test sends contact records and waits for an outcome (the
decisions on the surveys topic, the dead letters); it does not know which
runtime runs the stages. :class:`MemoryIntake` runs the intake stages on
the in-memory runtime, in the test's process; :class:`KafkaIntake` runs
``palaute worker`` as a real process on the session's broker. The fast
tier runs the suite in memory; CI runs it on Kafka too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import TypeAdapter

from schemas.config import load_settings
from schemas.deadletter import DeadLetter
from schemas.surveys import SkipReason, SurveyLifecycleEvent, SurveyScheduled, SurveySkipped
from schemas.topics import TopicNames
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.memory import MemoryBroker, MemoryRuntime
from streams.stages.intake import BY_CITIZEN, SURVEYS, VAULT, AdmitContacts, DecideContacts

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.integration.dispatch_harness import Reader, Worker

Headers = Sequence[tuple[str, bytes | None]]
SOURCE = "/crm/behaviour"
_EVENTS: TypeAdapter[Any] = TypeAdapter(SurveyLifecycleEvent)


def contact(event_id: str, contact_id: str, citizen: str, *, source: str = SOURCE) -> bytes:
    """Write a valid contact event, ended two minutes ago, of a citizen who gave no consent."""
    ended = datetime.now(UTC) - timedelta(minutes=2)
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": "fi.palaute.contact.completed.v1",
            "time": ended.isoformat(),
            "data": {
                "contact": {"id": contact_id, "ended_at": ended.isoformat()},
                # No consent: every decision is a skip, so nothing is sent anywhere.
                "citizen": {
                    "id": citizen,
                    "email": f"{citizen}@example.fi",
                    "consent": {"sms": False, "email": False},
                },
                "touchpoint": {
                    "id": "phone-service",
                    "name": "Puhelinpalvelu",
                    "channel": "phone",
                    "service": "tax",
                },
            },
        }
    )


@dataclass
class Outcome:
    """What the intake wrote so far: decisions per contact id, and dead letters."""

    decisions: dict[str, list[Any]] = field(default_factory=dict)
    dead_letters: list[tuple[DeadLetter, bytes | None]] = field(default_factory=list)

    def decided(self, contact_id: str) -> int:
        """Count the distinct decisions of a contact (a repeat of the same record counts once)."""
        return len(
            {
                event.model_dump_json(exclude={"occurred_at"})
                for event in self.decisions.get(contact_id, [])
            }
        )


def outcome_of(
    surveys: Sequence[bytes | None], dead: Sequence[tuple[Headers, bytes | None]]
) -> Outcome:
    """Read the surveys and dead-letter topics' records into an outcome."""
    outcome = Outcome()
    for value in surveys:
        event = _EVENTS.validate_json(value or b"")
        if isinstance(event, SurveyScheduled) or (
            isinstance(event, SurveySkipped) and event.reason is not SkipReason.SUPERSEDED
        ):
            outcome.decisions.setdefault(event.contact_id, []).append(event)
    outcome.dead_letters = [(DeadLetter.from_headers(list(h)), v) for h, v in dead]
    return outcome


class IntakeHarness(Protocol):
    """What a behaviour test of the intake needs, whichever runtime is under it."""

    async def send(self, value: bytes, headers: Headers = (), key: bytes = b"k") -> None:
        """Write one record to the contacts topic, as a front office would."""

    async def settle(self, done: Callable[[Outcome], bool]) -> Outcome:
        """Run until ``done`` holds of the outcome (and a little longer, for repeats)."""


class MemoryIntake:
    """The intake stages on the in-memory runtime."""

    def __init__(self, config: Path) -> None:
        settings = load_settings(config)
        secret = settings.secrets.pseudonymisation_key.get_secret_value().encode()
        names = {BY_CITIZEN: "by-citizen", SURVEYS: "surveys", VAULT: "vault", DEADLETTER: "dlq"}
        self.broker = MemoryBroker(partitions=4)
        self.runtime = MemoryRuntime(self.broker)
        self.runtime.add(AdmitContacts(secret), "contacts", names)
        self.runtime.add(DecideContacts(settings), "by-citizen", names)

    async def send(self, value: bytes, headers: Headers = (), key: bytes = b"k") -> None:
        """Write the record to the in-memory contacts topic."""
        self.broker.send("contacts", key, value, headers)

    async def settle(self, done: Callable[[Outcome], bool]) -> Outcome:
        """Run every stage dry; the outcome must then be done."""
        await self.runtime.run_until_idle()
        outcome = outcome_of(
            [r.value for r in self.broker.records("surveys")],
            [(r.headers, r.value) for r in self.broker.records("dlq")],
        )
        assert done(outcome), outcome
        return outcome


class KafkaIntake:
    """``palaute worker`` on the session's broker, fed and read with aiokafka."""

    def __init__(
        self, bootstrap: str, suffix: str, worker: Worker, readers: tuple[Reader, Reader]
    ) -> None:
        self.bootstrap = bootstrap
        self.names = TopicNames.with_suffix(suffix)
        self.worker = worker
        self.surveys, self.dead = readers

    async def send(self, value: bytes, headers: Headers = (), key: bytes = b"k") -> None:
        """Produce the record to the run's contacts topic and wait for its acknowledgement."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(
                self.names.contacts,
                key=key,
                value=value,
                headers=list(headers),  # type: ignore[arg-type] # a None header value is valid Kafka
            )
        finally:
            await producer.stop()

    def _outcome(self) -> Outcome:
        return outcome_of(
            [r.value for r in self.surveys.records],
            [(r.headers, r.value) for r in self.dead.records],
        )

    async def settle(self, done: Callable[[Outcome], bool], seconds: float = 90.0) -> Outcome:
        """Read until ``done`` holds, then two seconds more, so that a repeat would show."""
        deadline = time.monotonic() + seconds
        while not done(self._outcome()):
            assert self.worker.alive(), f"worker died:\n{self.worker.tail()}"
            assert time.monotonic() < deadline, f"timed out:\n{self.worker.tail()}"
            await self.surveys.poll()
            await self.dead.poll()
            await asyncio.sleep(0.05)
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            await self.surveys.poll()
            await self.dead.poll()
        return self._outcome()
