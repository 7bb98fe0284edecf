"""The broker away is waited out, a batch's own fault is not: the Kafka runtimes' retry rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RequestTimedOutError

from connectors.errors import ConnectorError
from streams.runtime import checkpoint as checkpoint_module
from streams.runtime.checkpoint import run_batch
from streams.runtime.deadletters import kafka_headers
from streams.runtime.transient import is_transient
from tests.unit.test_checkpoint import NOW, Counting, Log, _records

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from streams.runtime.model import Produce


def test_headers_in_every_form_a_client_sends_become_the_list_a_producer_takes() -> None:
    """The Kafka client gives a tuple; passing it on unchanged crashed the intake on any header."""
    assert kafka_headers((("a", b"1"), ("a", None))) == [("a", b"1"), ("a", None)]
    assert kafka_headers({"a": b"1"}) == [("a", b"1")]
    assert kafka_headers(None) == []
    assert kafka_headers([("a", bytearray(b"x"))]) == [("a", b"x")]


class _RetriableError(ConnectorError):
    retriable = True


def test_the_infrastructures_failures_are_transient_and_a_records_are_not() -> None:
    assert is_transient(KafkaConnectionError())
    assert is_transient(RequestTimedOutError())
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionResetError())
    assert is_transient(_RetriableError("relay away"))
    assert not is_transient(MessageSizeTooLargeError())
    assert not is_transient(ConnectorError("refused"))
    assert not is_transient(KeyError("phone"))


@dataclass
class _Away(Log):
    """A producer that fails outright, as a client does while the broker is away."""

    away: int = 0
    error: type[Exception] = KafkaConnectionError

    async def produce(self, record: Produce) -> Awaitable[Any] | None:
        if self.away:
            self.away -= 1
            raise self.error
        return await super().produce(record)


async def test_a_producer_that_fails_while_the_broker_is_away_is_waited_out_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checkpoint_module, "RETRY_FIRST_S", 0.001)
    io = _Away(away=2)
    retries: list[str] = []
    done = await run_batch(
        Counting(),
        io,
        _records(b"a", b"b"),
        io,
        clock=lambda: NOW,
        transient=is_transient,
        on_retry=retries.append,
    )
    assert retries == ["KafkaConnectionError", "KafkaConnectionError"]
    assert io.state == {"k": "2"}  # handled three times from the stored state: counted once
    assert io.steps.count("commit [0, 1]") == 1
    assert len(done.records) == 2


async def test_a_failure_that_is_not_transient_is_not_retried() -> None:
    io = _Away(away=1, error=MessageSizeTooLargeError)
    with pytest.raises(MessageSizeTooLargeError):
        await run_batch(
            Counting(), io, _records(b"a"), io, clock=lambda: NOW, transient=is_transient
        )
    assert io.state == {}
    assert not any(step.startswith("commit") for step in io.steps)
