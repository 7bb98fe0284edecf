"""One stage on plain aiokafka: a consumer group of its own, batches by ``getmany``.

The checkpoint's steps (:mod:`streams.runtime.checkpoint`) map onto the
clients so:

* *take a batch*: ``getmany`` of up to ``batch`` records from the partitions
  this worker owns in the stage's group (``<app id>-<stage name>``);
* *produce*: each record to the runtime's one idempotent producer
  (``enable_idempotence=True``, so ``acks=all``);
* *await the acknowledgements*: of every record of the batch, at once;
* *write state*: the batch's state changes go to the stage's changelog
  topic, and once every one is acknowledged they are taken into the local
  store (:class:`~streams.runtime.kafka_plain.store.ChangelogStore`);
* *commit*: the offset after each partition's last record of the batch,
  committed explicitly (auto-commit is off).

A rebalance waits for the batch in hand to be committed before the
partitions go (the revocation takes the batch lock). A batch fetched
across a rebalance (or a stop) and not yet begun is not handled: the
consumer is sent back to its first records (every record before them was
handled and stored, so nothing is skipped); a batch that raised is sent
back the same way. Partitions newly assigned are recovered from the
changelog before any of their records is handled. A stop lets the batch
in hand finish, or cancels it if it cannot within :data:`STOP_GRACE_S`;
either way nothing is committed for a record that was not handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from connectors import telemetry
from streams.diagnostics import note_agent_crash
from streams.runtime.checkpoint import (
    RETRY_FIRST_S,
    RETRY_MAX_S,
    CheckpointFailedError,
    forget,
    run_batch,
)
from streams.runtime.deadletters import kafka_headers
from streams.runtime.model import Record
from streams.runtime.reporting import report_checkpoint, retry_counter
from streams.runtime.transient import is_transient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from aiokafka import AIOKafkaProducer
    from aiokafka.structs import ConsumerRecord, RecordMetadata

    from streams.runtime.kafka_plain.store import ChangelogStore
    from streams.runtime.model import Produce, Stage, StateView

log = logging.getLogger(__name__)

#: How long a stop waits for the batch in hand before it cancels it.
STOP_GRACE_S = 10.0
#: How long one ``getmany`` waits for records before the stage notes it is idle.
IDLE_FETCH_MS = 1000


class _NoState:
    def get(self, key: str) -> str | None:
        del key
        return None


def record_of(message: ConsumerRecord[bytes, bytes]) -> Record:
    """Turn an aiokafka record into the runtime's record, its headers as the client sent them."""
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        tuple(kafka_headers(message.headers)),
    )


class _PlainIO:
    """The aiokafka side of one checkpoint."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        consumer: AIOKafkaConsumer,
        topics: Mapping[str, str],
        store: ChangelogStore | None,
        perform: Callable[[Sequence[Any]], Awaitable[None]],
    ) -> None:
        self._producer = producer
        self._consumer = consumer
        self._topics = topics
        self._store = store
        self._perform = perform
        self._writes: list[tuple[int, str, str | None]] = []

    async def produce(self, record: Produce) -> Awaitable[Any] | None:
        sent: Awaitable[Any] = await self._producer.send(
            self._topics[record.topic],
            record.value,
            key=record.key,
            partition=record.partition,
            headers=list(record.headers),
        )
        return sent

    async def acknowledged(self, sent: list[Awaitable[Any]]) -> list[Any]:
        return await asyncio.gather(*sent, return_exceptions=True)

    async def perform(self, effects: Sequence[Any]) -> None:
        await self._perform(effects)

    def write_state(self, record: Record, key: str, value: str | None) -> None:
        # Written to the changelog, and into the store, by commit(): before the offsets.
        self._writes.append((record.partition, key, value))

    async def commit(self, records: Sequence[Record]) -> None:
        await self._store_writes()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp not in offsets or offsets[tp].offset <= record.offset:
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "")
        if offsets:
            await self._consumer.commit(offsets)

    async def _store_writes(self) -> None:
        """Write the batch's state to the changelog; take it in locally once acknowledged."""
        if self._store is None or not self._writes:
            return
        store = self._store
        sent = []
        for partition, key, value in self._writes:
            changelog_key, changelog_value = store.changelog_record(key, value)
            sent.append(
                await self._producer.send(
                    store.topic, changelog_value, key=changelog_key, partition=partition
                )
            )
        outcomes = await asyncio.gather(*sent, return_exceptions=True)
        refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if refused:
            # Nothing taken in, no offset committed: the batch is handled again.
            raise CheckpointFailedError(type(refused[0]).__name__)
        for (partition, key, value), metadata in zip(self._writes, outcomes, strict=True):
            store.apply(partition, key, value, cast("RecordMetadata", metadata).offset)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc] # aiokafka is untyped
    def __init__(self, runner: StageRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._runner.partitions_assigned(assigned)


class StageRunner:
    """Run one stage on its input topic in its own consumer group."""

    def __init__(
        self,
        stage: Stage,
        source: str,
        *,
        topics: Mapping[str, str],
        group_id: str,
        consumer: Callable[..., AIOKafkaConsumer],
        producer: Callable[[], AIOKafkaProducer],
        store: ChangelogStore | None = None,
        batch: int = 500,
        observe: Callable[[Any], None] = lambda _observation: None,
        seed: Callable[[AIOKafkaConsumer, set[TopicPartition]], Awaitable[None]] | None = None,
        perform: Callable[[Sequence[Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.stage = stage
        self.source = source
        self.group_id = group_id
        self._topics = topics
        self._new_consumer = consumer
        self._producer = producer
        self._store = store
        self._batch = batch
        self._observe = observe
        self._seed = seed
        self._perform = perform or _no_effects
        self._lock = asyncio.Lock()
        #: Moves on at every revocation and assignment: a batch fetched before is stale.
        self._epoch = 0
        #: Partitions assigned and not yet recovered (and seeded).
        self._unrecovered: set[TopicPartition] | None = None
        self._stopping = False
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        #: Per partition, the offset after the last record committed here.
        self._done: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Join the stage's group and start taking batches."""
        self._stopping = False
        consumer = self._new_consumer(group_id=self.group_id)
        await consumer.start()
        consumer.subscribe([self.source], listener=_Listener(self))
        self._consumer = consumer
        if self._store is not None:
            self._reader = self._new_consumer(group_id=None)
            await self._reader.start()
        telemetry.agent_progress(self.stage.name, datetime.now(UTC))
        self._task = asyncio.create_task(self._run(), name=f"stage-{self.stage.name}")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # The stage takes no more records: /healthz reports it failing, then stalled.
            log.error("%s: stopped by an error", self.stage.name, exc_info=task.exception())
            note_agent_crash(self.stage.name)

    async def stop(self) -> None:
        """Finish (or cancel) the batch in hand, commit nothing more, and leave the group."""
        self._stopping = True
        if self._task is not None:
            done, _pending = await asyncio.wait({self._task}, timeout=STOP_GRACE_S)
            if not done:
                log.warning("%s: the batch in hand did not finish; stopped", self.stage.name)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        for client in (self._consumer, self._reader):
            if client is not None:
                await client.stop()
        self._consumer = self._reader = None

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let the batch in hand be committed before the partitions go."""
        async with self._lock:
            self._epoch += 1
        numbers = sorted(tp.partition for tp in revoked)
        log.info("%s: partitions %s revoked", self.stage.name, numbers)

    def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Note the partitions to recover before any of their records is handled."""
        self._epoch += 1
        self._unrecovered = set(assigned)
        forget(self.stage, moved=True)  # what it keeps in memory: the store is the truth again

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - started above
        while not self._stopping:
            try:
                if self._unrecovered is not None:
                    await self._recover(consumer)
                    continue
                epoch = self._epoch
                fetched = await consumer.getmany(timeout_ms=IDLE_FETCH_MS, max_records=self._batch)
                if not fetched:
                    telemetry.agent_progress(self.stage.name, datetime.now(UTC))
                else:
                    await self._take(consumer, epoch, fetched)
                await self._publish_lag(consumer)
            except (CommitFailedError, IllegalStateError) as error:
                # Rebalanced away meanwhile: the partition's next owner handles the batch again.
                log.warning("%s: offsets not committed (%s)", self.stage.name, type(error).__name__)
            except KafkaError as error:
                log.warning("%s: %s; trying again", self.stage.name, type(error).__name__)
                await asyncio.sleep(RETRY_FIRST_S)

    async def _take(
        self,
        consumer: AIOKafkaConsumer,
        epoch: int,
        fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        async with self._lock:
            if epoch != self._epoch or self._unrecovered is not None or self._stopping:
                # Fetched across a rebalance (or a stop): not handled, so read again. Every
                # record before a batch's first was handled, so none is skipped.
                _rewind(consumer, fetched)
                return
            records = [record_of(message) for messages in fetched.values() for message in messages]
            io = _PlainIO(self._producer(), consumer, self._topics, self._store, self._perform)
            state: StateView = self._store if self._store is not None else _NoState()
            try:
                checkpoint = await run_batch(
                    self.stage,
                    state,
                    records,
                    io,
                    at_record=functools.partial(_at_record, self._store),
                    transient=is_transient,
                    on_retry=retry_counter(self.stage.label),
                )
            except BaseException:
                # Not committed: read the batch again rather than go on past it.
                _rewind(consumer, fetched)
                raise
            for tp, messages in fetched.items():
                self._done[tp] = messages[-1].offset + 1
        report_checkpoint(checkpoint, self._observe)
        telemetry.agent_progress(self.stage.name, datetime.now(UTC))

    def owned(self) -> list[TopicPartition]:
        """Give the input partitions this worker owns in the stage's group."""
        return [] if self._consumer is None else sorted(self._consumer.assignment())

    async def _publish_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Publish how many records of each owned partition wait (the consumer's last fetch).

        A partition none of whose records this worker has handled yet (an idle
        one) waits from the consumer's position: its figure is published too,
        so the lag alert sees every owned partition.
        """
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None:
                continue
            done = self._done.get(tp)
            if done is None:
                done = await consumer.position(tp)
            telemetry.set_consumer_lag(tp.topic, tp.partition, max(end - done, 0))

    async def _recover(self, consumer: AIOKafkaConsumer) -> None:
        """Seed offsets and read the changelog of the partitions assigned, until it works."""
        delay = RETRY_FIRST_S
        while self._unrecovered is not None and not self._stopping:
            assigned = self._unrecovered
            try:
                if self._seed is not None:
                    await self._seed(consumer, assigned)
                if self._store is not None and self._reader is not None:
                    self._store.keep_only(tp.partition for tp in assigned)
                    await self._store.recover(self._reader, (tp.partition for tp in assigned))
            except KafkaError as error:
                log.warning(
                    "%s: recovery failed (%s); trying again in %.1f s",
                    self.stage.name,
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self._unrecovered is assigned:  # no newer assignment came meanwhile
                self._unrecovered = None
            telemetry.agent_progress(self.stage.name, datetime.now(UTC))


async def _no_effects(effects: Sequence[Any]) -> None:
    raise RuntimeError(f"a stage asked for {len(effects)} effects and its wiring performs none")


def _at_record(store: ChangelogStore | None, record: Record) -> None:
    if store is not None:
        store.at(record.partition)


def _rewind(
    consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
) -> None:
    for tp, messages in fetched.items():
        if messages:
            with contextlib.suppress(IllegalStateError):  # no longer this worker's partition
                consumer.seek(tp, messages[0].offset)
