"""Per-record containment: every record ends as processed or as a dead letter.

faust restarts an agent whose loop raised *after* the record it was handling,
so an exception in a stage would make that record vanish: neither processed
nor set aside, and nothing anyone sees. Every stage therefore hands each
record to :meth:`Containment.run`, which sorts a failure into one of two
kinds:

* **transient** (the broker or a provider is unavailable: a retriable Kafka
  error, a connection error, a timeout, a retriable connector error): not the
  record's fault, so the handler is called again after a back-off, for as
  long as it takes. The record is never skipped; a worker that stops
  meanwhile leaves it uncommitted and a restart handles it again (every
  stage is idempotent).
* **anything else** (a bug, an unexpected field, a header nobody planned
  for): the record's own problem, so it goes to the dead-letter topic with
  its original key, value and headers, the stage, and the error's class,
  never its message (which may quote a phone number from the record).

Dead letters are written by :func:`dead_letter_record` alone, for rejections
by a validation gate and for failures alike, and counted on ``/metrics`` by
stage and reason.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError

from connectors import telemetry
from connectors.errors import ConnectorError
from streams.runtime.checkpoint import RETRY_FIRST_S, RETRY_MAX_S
from streams.runtime.deadletters import (
    HANDLER_FAILED,
    Header,
    SourceRecord,
    dead_letter_headers,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


T = TypeVar("T")


class Producer(Protocol):
    """Anything that can produce a raw record to a topic by name."""

    async def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header],
    ) -> None:
        """Hand the record to Kafka (awaiting its batch, not its acknowledgement)."""


def is_transient(error: BaseException) -> bool:
    """Tell whether a failure is the infrastructure's (retry) rather than the record's."""
    if isinstance(error, KafkaConnectionError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, KafkaError):
        return bool(getattr(error, "retriable", False))
    if isinstance(error, ConnectorError):
        return bool(getattr(error, "retriable", False))
    return False


async def dead_letter_record(
    producer: Producer,
    topic: str,
    record: SourceRecord,
    stage: telemetry.Stage,
    *,
    reason_code: str,
    reason: str,
    error_class: str | None = None,
    now: datetime | None = None,
) -> None:
    """Write a record to the dead-letter topic, as it came, with why; count it."""
    headers = dead_letter_headers(
        record,
        stage.value,
        reason_code=reason_code,
        reason=reason,
        now=now or datetime.now(UTC),
        error_class=error_class,
    )
    await producer.produce(topic, record.key, record.value, headers)
    telemetry.record_dead_letter(stage, reason_code)
    telemetry.count_event(stage, telemetry.Outcome.DEAD_LETTERED)
    log.info(
        "dead-lettered %s[%d]@%d in %s: %s%s",
        record.topic,
        record.partition,
        record.offset,
        stage.value,
        reason_code,
        f" ({error_class})" if error_class else "",
    )


class Containment:
    """One stage's guard around the handling of each record (see the module)."""

    def __init__(self, producer: Producer, deadletter_topic: str, stage: telemetry.Stage) -> None:
        self.producer = producer
        self.deadletter_topic = deadletter_topic
        self.stage = stage

    async def reject(
        self, record: SourceRecord, reason_code: str, reason: str, now: datetime | None = None
    ) -> None:
        """Set a record aside that a validation gate refused."""
        await dead_letter_record(
            self.producer,
            self.deadletter_topic,
            record,
            self.stage,
            reason_code=reason_code,
            reason=reason,
            now=now,
        )

    async def run(
        self,
        record: SourceRecord,
        handler: Callable[..., Awaitable[T]],
        *args: Any,
    ) -> T | None:
        """Handle one record: its result, or None once it is dead-lettered.

        Cancellation passes through (a stopping worker leaves the record
        uncommitted). A transient error is retried with a growing back-off
        until the handler succeeds or the worker stops.
        """
        delay = RETRY_FIRST_S
        while True:
            try:
                return await handler(*args)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - containment is the point
                if not is_transient(error):
                    await self._set_aside(record, error)
                    return None
                self._retrying(record, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _retrying(self, record: SourceRecord, error: Exception, delay: float) -> None:
        kind = type(error).__name__
        telemetry.record_stage_retry(self.stage, kind)
        log.warning(
            "%s: transient %s on %s[%d]@%d; retrying in %.1f s",
            self.stage.value,
            kind,
            record.topic,
            record.partition,
            record.offset,
            delay,
        )

    async def _set_aside(self, record: SourceRecord, error: Exception) -> None:
        """Dead-letter a record whose handler failed; retry the write while Kafka is away."""
        kind = type(error).__name__
        # The frames say where it failed; the message is left out, as it may
        # quote the record (a phone number, an address).
        where = "".join(traceback.format_tb(error.__traceback__)[-3:])
        log.warning(
            "%s: %s while handling %s[%d]@%d; the record is dead-lettered\n%s",
            self.stage.value,
            kind,
            record.topic,
            record.partition,
            record.offset,
            where,
        )
        delay = RETRY_FIRST_S
        while True:
            try:
                await dead_letter_record(
                    self.producer,
                    self.deadletter_topic,
                    record,
                    self.stage,
                    reason_code=HANDLER_FAILED,
                    reason=f"{kind} raised in stage {self.stage.value} while handling the record",
                    error_class=kind,
                )
            except Exception as failure:
                if not is_transient(failure):
                    raise
                self._retrying(record, failure, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            else:
                return
