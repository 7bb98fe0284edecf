"""Reading and writing the catalogue topic: every process follows it into its live catalogue.

A process loads the topic from its start before it serves or processes
anything (:meth:`CatalogueFollower.load`), writes the configuration file's
catalogue as the first version when the topic is empty, and then follows
the topic (:meth:`CatalogueFollower.follow`), putting each version into
``settings.catalogue`` within a fraction of a second of its write. The topic
has one partition that matters, 0: its order is the order of the versions.

A writer produces a change and waits until its own follower has read it
back (:meth:`CatalogueFollower.write`): only then does it know whether the
change held or was refused, and the process it runs in already runs on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from connectors.kafka_client import client_options
from engine.catalogue import Applied, CatalogueLog, Outcome
from schemas.catalogue_document import seed_entries
from schemas.catalogue_records import (
    CatalogueAction,
    CatalogueChanged,
    TouchpointEntry,
    change_key,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from schemas.catalogue import LiveCatalogue
    from schemas.config import KafkaConfig, Settings

log = logging.getLogger(__name__)

#: The partition whose order is the order of the versions.
PARTITION = 0
#: How long a fetch waits for a new change: the most a new version waits to be read.
_POLL_MS = 200
_RETRY_SECONDS = 2.0
#: How long a writer waits to read its own change back before it gives up.
WRITE_TIMEOUT_SECONDS = 10.0


class CatalogueUnavailableError(RuntimeError):
    """The catalogue topic could not be read or written in time; try again."""


class ChangeProducer(Protocol):
    """The part of an aiokafka producer a writer needs (``AIOKafkaProducer.send``)."""

    async def send(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes,
        headers: list[tuple[str, bytes]],
        partition: int,
    ) -> Awaitable[Any]:
        """Queue a record; the returned awaitable gives its metadata (offset) once acknowledged."""
        ...


async def produce(producer: ChangeProducer, topic: str, change: CatalogueChanged) -> int:
    """Write one change to the versions' partition; give its offset once acknowledged."""
    sent = await producer.send(
        topic,
        value=change.model_dump_json().encode(),
        key=change_key(change),
        headers=[],
        partition=PARTITION,
    )
    metadata = await sent
    offset: int = metadata.offset
    return offset


def seed_change(settings: Settings, now: datetime) -> CatalogueChanged:
    """Give the configuration file's catalogue as the topic's first change."""
    defaults, touchpoints, targets = seed_entries(settings)
    return CatalogueChanged(
        change_id=uuid.uuid4().hex,
        at=now,
        by="configuration file",
        action=CatalogueAction.SEED,
        base_version=0,
        defaults=defaults,
        touchpoints={
            # A CSAT target may name a touchpoint that has no entry of its own
            # (it is surveyed with [defaults]); it still needs an entry to keep
            # its target, since the topic holds targets on the touchpoints.
            key: TouchpointEntry(entry=dict(touchpoints.get(key, {})), csat_target=targets.get(key))
            for key in sorted({*touchpoints, *targets})
        },
        replace_all=True,
    )


class CatalogueFollower:
    """The catalogue topic as this process has read it, and the live catalogue it feeds."""

    def __init__(self, kafka: KafkaConfig, topic: str, live: LiveCatalogue) -> None:
        self.kafka = kafka
        self.topic = topic
        self.live = live
        self.log = CatalogueLog()
        #: The offset of the next record to read.
        self.next_offset = 0
        self._read = asyncio.Event()
        self._following = False

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **client_options(self.kafka, client_id_suffix="-catalogue"),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    def take(self, offset: int, value: bytes | None) -> Outcome | None:
        """Fold one record read at ``offset`` into the catalogue; None for an unreadable one."""
        self.next_offset = max(self.next_offset, offset + 1)
        if value is None:
            return None
        try:
            change = CatalogueChanged.model_validate_json(value)
        except ValidationError:
            log.warning("catalogue record at offset %d is not a CatalogueChanged; skipped", offset)
            return None
        outcome = self.log.apply(change, offset + 1)
        if isinstance(outcome, Applied) and self.log.catalogue is not None:
            self.live.replace(self.log.catalogue)
            # Not who: an author may be named by an e-mail address, which no log carries.
            log.info("catalogue version %d in force (%s)", offset + 1, change.action.value)
        else:
            log.warning("catalogue change at offset %d refused: %s", offset, outcome)
        return outcome

    async def _read_to(self, consumer: AIOKafkaConsumer, end: int | None) -> None:
        """Read until ``end`` (or, with None, one fetch's worth)."""
        tp = TopicPartition(self.topic, PARTITION)
        while True:
            batches = await consumer.getmany(tp, timeout_ms=_POLL_MS)
            for record in batches.get(tp, []):
                self.take(record.offset, record.value)
            self._read.set()
            self._read = asyncio.Event()
            position = await consumer.position(tp)
            self.next_offset = max(self.next_offset, position)
            if end is None or self.next_offset >= end:
                return

    async def _open(self) -> tuple[AIOKafkaConsumer, int]:
        consumer = self._consumer()
        try:
            await consumer.start()
            topics = await consumer.topics()
        except BaseException:
            await consumer.stop()
            raise
        if self.topic not in topics:
            # Asking a missing partition's offsets waits out the request timeout.
            await consumer.stop()
            raise CatalogueUnavailableError(f"the catalogue topic {self.topic} does not exist")
        tp = TopicPartition(self.topic, PARTITION)
        consumer.assign([tp])
        consumer.seek(tp, self.next_offset)
        end = (await consumer.end_offsets([tp]))[tp]
        return consumer, end

    async def load(self, producer: ChangeProducer | None, seed: CatalogueChanged | None) -> None:
        """Read the topic to its end; on an empty topic, write ``seed`` first and read it."""
        consumer, end = await self._open()
        try:
            await self._read_to(consumer, end)
            if end == 0 and seed is not None and producer is not None:
                offset = await produce(producer, self.topic, seed)
                await self._read_to(consumer, offset + 1)
        finally:
            await consumer.stop()

    async def follow(self, stop: asyncio.Event) -> None:
        """Read new changes until ``stop``, starting over after any Kafka trouble."""
        self._following = True
        while not stop.is_set():
            consumer: AIOKafkaConsumer | None = None
            try:
                consumer, _end = await self._open()
                while not stop.is_set():
                    await self._read_to(consumer, None)
            except (KafkaError, CatalogueUnavailableError) as error:
                log.warning("catalogue follower cannot read (%s); retrying", type(error).__name__)
            finally:
                if consumer is not None:
                    await consumer.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _RETRY_SECONDS)

    async def wait_for(self, offset: int, timeout: float = WRITE_TIMEOUT_SECONDS) -> None:  # noqa: ASYNC109 - one deadline for several reads
        """Wait until the record at ``offset`` has been read (by :meth:`follow`)."""
        deadline = time.monotonic() + timeout
        while self.next_offset <= offset:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CatalogueUnavailableError(
                    "the change was written but not read back in time; see its history"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._read.wait(), min(left, _POLL_MS / 1000))

    async def write(self, producer: ChangeProducer, change: CatalogueChanged) -> Outcome:
        """Write a change, wait to read it back, and say whether it held."""
        try:
            offset = await produce(producer, self.topic, change)
        except KafkaError as error:
            raise CatalogueUnavailableError(
                f"the catalogue topic cannot be written ({type(error).__name__}); try again"
            ) from None
        if self._following:
            await self.wait_for(offset)
        else:
            consumer, _end = await self._open()
            try:
                await self._read_to(consumer, offset + 1)
            finally:
                await consumer.stop()
        outcome = self.log.outcomes.get(change.change_id)
        if outcome is None:
            raise CatalogueUnavailableError("the change was written but could not be read back")
        return outcome


def now() -> datetime:
    """Read the clock for a change's time (the shell reads it, never the engine)."""
    return datetime.now(UTC)
