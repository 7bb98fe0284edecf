"""Per-record containment: a failing record is dead-lettered, a transient failure retried."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, RequestTimedOutError

from connectors import telemetry
from schemas.deadletter import DeadLetter
from streams import containment
from streams.containment import Containment
from streams.runtime.deadletters import HANDLER_FAILED, kafka_headers

SECRET_VALUE = b'{"phone": "+358401234567"}'


@dataclass
class Record:
    """A consumed record, as faust and aiokafka hand one over."""

    offset: int
    value: bytes | None = SECRET_VALUE
    key: bytes | None = b"k"
    topic: str = "palaute.contacts.v1"
    partition: int = 0
    headers: Any = (("traceparent", b"00-ab"), ("x-empty", None), ("x-empty", b"2"))


@dataclass
class Produced:
    """A producer that keeps what it was given, and can be told to fail a few times."""

    records: list[tuple[str, bytes | None, bytes | None, list[Any]]] = field(default_factory=list)
    failures: int = 0

    async def produce(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[Any]
    ) -> None:
        """Keep the record, or fail as a broker that is away does."""
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError
        assert isinstance(headers, list)  # what the Kafka client insists on
        self.records.append((topic, key, value, headers))


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containment, "RETRY_FIRST_S", 0.001)
    monkeypatch.setattr(containment, "RETRY_MAX_S", 0.002)


def test_headers_in_every_form_a_client_sends_become_the_list_a_producer_takes() -> None:
    """The Kafka client gives a tuple; passing it on unchanged crashed the intake on any header."""
    assert kafka_headers((("a", b"1"), ("a", None))) == [("a", b"1"), ("a", None)]
    assert kafka_headers({"a": b"1"}) == [("a", b"1")]
    assert kafka_headers(None) == []
    assert kafka_headers([("a", bytearray(b"x"))]) == [("a", b"x")]


async def test_a_handler_that_raises_dead_letters_its_record_and_the_next_is_processed() -> None:
    """An exception must never skip a record: it ends as a dead letter naming stage and error."""
    producer = Produced()
    guard = Containment(producer, "dlq", telemetry.Stage.METRICS)
    handled: list[int] = []

    async def handle(record: Record) -> int:
        if record.offset == 1:
            raise KeyError(record.value)  # the message quotes the record: must not leak
        handled.append(record.offset)
        return record.offset

    results = [await guard.run(record, handle, record) for record in map(Record, range(3))]
    assert results == [0, None, 2]
    assert handled == [0, 2]
    [(topic, key, value, headers)] = producer.records
    assert (topic, key, value) == ("dlq", b"k", SECRET_VALUE)
    assert headers[:3] == [("traceparent", b"00-ab"), ("x-empty", None), ("x-empty", b"2")]
    letter = DeadLetter.from_headers(headers)
    assert letter.stage == "metrics"
    assert letter.reason_code == HANDLER_FAILED
    assert letter.error_class == "KeyError"
    assert letter.source_offset == 1
    assert "+358" not in letter.model_dump_json()


async def test_a_transient_failure_is_retried_until_it_passes_and_nothing_is_dead_lettered() -> (
    None
):
    """A broker away is not the record's fault: the record waits, it is not set aside."""
    producer = Produced()
    guard = Containment(producer, "dlq", telemetry.Stage.INTAKE)
    attempts: list[int] = []

    async def handle() -> str:
        attempts.append(1)
        if len(attempts) < 4:
            error = RequestTimedOutError if len(attempts) % 2 else ConnectionResetError
            raise error
        return "done"

    assert await guard.run(Record(0), handle) == "done"
    assert len(attempts) == 4
    assert producer.records == []


async def test_the_dead_letter_itself_waits_for_an_unavailable_broker() -> None:
    """A dead letter that cannot be written yet is retried, not given up."""
    producer = Produced(failures=3)
    guard = Containment(producer, "dlq", telemetry.Stage.SCHEDULER)

    async def handle() -> bool:
        raise ValueError

    assert await guard.run(Record(7), handle) is None
    assert len(producer.records) == 1


async def test_cancellation_passes_through_and_nothing_is_written() -> None:
    """A stopping worker leaves the record uncommitted rather than dead-lettering it."""
    producer = Produced()
    guard = Containment(producer, "dlq", telemetry.Stage.RESPONSES)

    async def handle() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await guard.run(Record(0), handle)
    assert producer.records == []
