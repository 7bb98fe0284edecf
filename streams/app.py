"""The faust application: broker, local store, producer guarantees and topic names.

:func:`create_app` turns :class:`~schemas.config.Settings` into a configured
:class:`faust.App` with every stage's agents registered. The worker command
runs it; tests build it with a topic suffix so each run has its own topics.

These choices keep the guarantees of DESIGN.md:

* ``processing_guarantee="at_least_once"``, never ``exactly_once`` (its
  transactions crash and duplicate on rebalance): every stage is idempotent
  instead, and faust flushes the producer before it commits the consumer's
  offsets, so an offset is committed only after the work it stands for.
* no offset commit once a stop has begun (:class:`StopSafeConsumer`):
  faust acks records it skips or cancels while stopping; and no commit past
  a record that was never acked (faust's own check is one record short).
* no commit across records faust fetched and never handed to an agent: a
  batch it cut short is fetched again from its first record not handed
  over, and a partition never committed starts at its log's start
  (:class:`StopSafeConsumer`).
* a guard that reads a stream partition again from its committed offset
  when records were fetched and never processed (:mod:`streams.refetch`).
* a producer whose ``flush`` drains faust's own send buffer for real:
  faust's gives up after 0.1 s without a message sent, and table changelog
  records go through it, so an offset could be committed before the table
  write it stands for was on the broker (see :class:`DrainingProducerBuffer`).
* agents' queues emptied before the stream partitions resume after a
  rebalance, not after (:class:`OrderedRecovery`): records fetched during
  faust's seek were cleared from the queues while the consumer took them as
  read, so a partition stopped short of its end until the next restart.
* an idempotent producer (``enable_idempotence=True``, ``acks=all``). faust
  0.15 asks aiokafka for one only inside transactions, and has no setting for
  it, so :class:`IdempotentProducer` adds it to the producer's settings and
  :class:`PalauteApp` uses a transport built on that producer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer

from connectors.kafka_client import client_options
from schemas import topics
from streams import alerting, dispatch, intake, metrics, refetch, responses, web
from streams.diagnostics import kafka_client, note_agent_crash

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Iterable, Mapping

    from mode import ServiceT

    from schemas.config import KafkaConfig, Settings

#: How long the producer waits for more records before it sends a batch, and how
#: large a batch per partition may grow (below the broker's 1 MiB message limit).
PRODUCER_LINGER_SECONDS = 0.005
PRODUCER_MAX_BATCH_BYTES = 512 * 1024

#: The web server's port when none is configured (it is then turned off).
_UNUSED_WEB_PORT = 6066


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The topics a worker reads and writes; the names come from schemas.topics."""

    contacts: str = topics.CONTACTS
    surveys: str = topics.SURVEYS
    vault: str = topics.VAULT
    deadletter: str = topics.DEADLETTER
    responses: str = topics.RESPONSES
    ratings: str = topics.RATINGS
    metrics: str = topics.METRICS
    alerts: str = topics.ALERTS

    @classmethod
    def with_suffix(cls, suffix: str) -> TopicNames:
        """Give every name the suffix, for a test run or an environment of its own."""
        return cls(
            contacts=topics.CONTACTS + suffix,
            surveys=topics.SURVEYS + suffix,
            vault=topics.VAULT + suffix,
            deadletter=topics.DEADLETTER + suffix,
            responses=topics.RESPONSES + suffix,
            ratings=topics.RATINGS + suffix,
            metrics=topics.METRICS + suffix,
            alerts=topics.ALERTS + suffix,
        )


#: How long a flush waits for the buffer's sender between checks.
_FLUSH_POLL_SECONDS = 0.1


class DrainingProducerBuffer(ProducerBuffer):
    """faust's send buffer, whose ``flush`` returns once what it held has been handed over.

    Table writes reach the changelog through this buffer (``send_soon``).
    The consumer flushes the producer before it commits offsets, and the app
    flushes it before the producer stops; faust's ``flush`` returns as soon
    as 0.1 s pass without a message sent (a busy broker or a full batch is
    enough), and does not count the message being handed to the client, so
    a commit could go ahead with table writes still here. Were the worker
    stopped then, those writes would be gone while their offsets stay
    committed, and a worker without its local store would never count them.
    """

    #: Messages put into the buffer, and handed to the Kafka client, so far.
    queued: int = 0
    handed_over: int = 0
    in_flight: int = 0

    def put(self, fut: Any) -> None:
        """Add a message; a flush from now on waits for it."""
        self.queued += 1
        super().put(fut)

    async def _send_pending(self, fut: Any) -> None:
        self.in_flight += 1
        try:
            await super()._send_pending(fut)
        finally:
            self.in_flight -= 1
        self.handed_over += 1

    async def flush(self) -> None:
        """Wait until every message buffered before the call is handed to the Kafka client.

        Messages added meanwhile are not waited for (the buffer is first in,
        first out), so a busy agent cannot hold a commit back for long.
        """
        target = self.queued
        while self.handed_over < target:
            if self.should_stop and not self.in_flight:
                # The sending task ends once the buffer stops: send the rest here.
                await self._send_pending(self.pending.get_nowait())
                continue
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), _FLUSH_POLL_SECONDS)


class IdempotentProducer(faust_aiokafka.Producer):
    """faust's aiokafka producer, always idempotent with ``acks=all``.

    Without idempotence a retried produce request after a lost acknowledgement
    writes the record twice; with it the broker drops the repeat. Its buffer
    is a :class:`DrainingProducerBuffer`, so ``flush`` (before every offset
    commit and at a stop) covers the table changelogs too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.app.conf.producer_threaded:
            buffer = DrainingProducerBuffer(loop=self.loop, beacon=self.beacon)
            buffer.app = self.app
            self.buffer = buffer

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    def send_now(self) -> None:
        """End the linger of the batches being filled: their acknowledgement is awaited now.

        Records wait ``producer_linger`` in their batch for company, and
        aiokafka's ``flush`` waits that out. A stage that waits for its own
        records before it goes on (the intake's decision before the history,
        the dispatcher's intent before the provider call) would wait the
        linger for every record it handles: 5 ms a contact capped the intake
        at under 200 decisions a second. Closed batches go at once; records
        sent afterwards start new ones.
        """
        producer = self._producer
        if producer is None:
            return
        accumulator = producer._message_accumulator  # noqa: SLF001 - aiokafka has no public way
        for batches in accumulator._batches.values():  # noqa: SLF001 - as its flush_for_commit does
            for batch in batches:
                batch._builder.close()  # noqa: SLF001 - as above
        waiter = accumulator._waiter_future  # noqa: SLF001 - wakes the sender
        if not waiter.done():
            waiter.set_result(None)

    async def flush(self) -> None:
        """Wait until every buffered record is acknowledged, without waiting out the linger."""
        await self.buffer.flush()
        self.send_now()
        await super().flush()


class StopSafeConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer that commits nothing once the app began to stop.

    When a worker stops, faust suspends the flow of records and then acks
    what the agents are given or were in the middle of: a record taken from
    a queue after the suspension is skipped *and acked*, and an agent
    cancelled between two sends of one record has it acked when its stream
    closes. faust then commits those offsets, so the records were never (or
    only partly) processed, and a restarted worker starts after them.
    :class:`PalauteApp` commits what was acked before the stop began; after
    that nothing is committed, and the records in between are processed
    again on restart, which every stage takes (replays are harmless).

    It also keeps faust from committing past records that no agent was
    given, in the two ways the rebalance fault test found:

    * faust's ``getmany`` ends a fetched batch early when the flow stops or
      the generation changes, and skips records of a partition it no longer
      counts as active, after aiokafka has moved its position past them. The
      next record of that partition then looks like a gap in the log (as a
      compacted topic has) and faust commits across it. Here a batch cut
      short seeks each partition back to its first record not handed over.
    * a partition the group never committed has no committed offset, and
      faust then commits from whatever acked record comes first, even if the
      records before it were fetched and dropped. Here such a partition is
      sought to the start of its log at every assignment (where aiokafka's
      ``earliest`` reset would begin) and that start stands for the
      committed offset until the first commit.
    """

    _batch: tuple[Mapping[Any, list[Any]], int] | None = None
    _log_starts: dict[Any, int] | None = None

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:  # noqa: FBT001, FBT002 - faust's signature
        """Commit acked offsets, unless the app is stopping."""
        if getattr(self.app, "commits_frozen", False):
            return False
        return await super().commit(topics, start_new_transaction=start_new_transaction)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109 - faust's signature
        """Keep the batch faust is about to hand over, and the generation it belongs to."""
        records, active = await super()._wait_next_records(timeout)
        self._batch = None if not records else (records, self.app.consumer_generation_id)
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109 - faust's signature
        """Hand over a fetched batch; fetch again what faust left of it (see the class)."""
        handed: dict[Any, int] = {}
        async for tp, message in super().getmany(timeout):
            handed[tp] = message.offset
            yield tp, message
        batch, self._batch = self._batch, None
        if batch is None or self.should_stop:
            return
        records, generation = batch
        if generation != self.app.consumer_generation_id or not self.flow_active:
            # A rebalance (the flow stops when one begins) or a stop came between:
            # the rebalance seeks every partition it assigns (perform_seek).
            return
        assignment = self.assignment()
        for tp, fetched in records.items():
            last = handed.get(tp)
            left = [record.offset for record in fetched if last is None or record.offset > last]
            if left and tp in assignment:
                await self.seek(tp, left[0])

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and partitions never committed to their log's start."""
        await super().perform_seek()
        changelogs = self.app.tables.changelog_topics
        uncommitted = [
            tp
            for tp in self.assignment()
            if tp.topic not in changelogs and self._committed_offset[tp] is None
        ]
        starts: dict[Any, int] = {}
        if uncommitted:
            kafka = kafka_client(self.app)
            found = await self._thread.call_thread(
                kafka.beginning_offsets,
                [faust_aiokafka.ensure_aiokafka_TP(tp) for tp in uncommitted],
            )
            for tp in uncommitted:
                start = found.get(faust_aiokafka.ensure_aiokafka_TP(tp))
                if isinstance(start, int) and start >= 0:
                    starts[tp] = start
                    await self.seek(tp, start)
        self._log_starts = starts

    def _new_offset(self, tp: Any) -> int | None:
        """Give the offset to commit for ``tp``, never past a record that was not acked.

        faust 0.15 keeps the committed offset as the next one to process, yet
        its check for an unacked record at the head of a partition lets
        exactly that record through (it asks for a gap of more than one), so
        a record dropped from an agent's queue at a rebalance while the ones
        after it were processed was committed as done. Here the acked offsets
        (with faust's gaps, the offsets a compacted topic does not have) must
        start at the committed offset, or nothing is committed.
        """
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if committed is None and self._log_starts:
            committed = self._log_starts.get(tp)
        if acked and committed is not None:
            first = min(acked)
            gaps = self._gap[tp]
            head_gap = gaps.overlap(committed, first) if gaps else set()
            covered = {offset for gap in head_gap for offset in range(gap.begin, gap.end)}
            if first > committed and not set(range(committed, first)) <= covered:
                return None
        result: int | None = super()._new_offset(tp)
        return result


class OrderedRecovery(Recovery):
    """faust's table recovery, handing the stream partitions back in a safe order.

    After a rebalance (and at start) faust 0.15 resumes the stream partitions,
    then seeks them to their committed offsets, and only then resumes the
    app's flow control, which empties every agent's queue. Records fetched
    while the seek was under way were put in those queues and then dropped,
    yet the consumer had noted them as read, so when the seek made it fetch
    them again it skipped them as already seen. None of them was acked, so
    nothing was committed past them and a restart would read them again;
    but until then the live worker never processed that partition's
    records: a busy worker (more likely on a loaded machine) kept figures
    short for as long as it ran. Here the queues are emptied before the
    partitions are resumed, and nothing empties them afterwards; otherwise
    faust's order is kept (seeking partitions while paused left a restarted
    worker idle in the fault suite).
    """

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Tell the tables that recovery is over, then hand the stream partitions back."""
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        completions = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if completions:
            await asyncio.wait(completions)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._hand_back_stream_partitions()
        self.completed.set()
        await self._start_streams()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _resume_streams(self, generation_id: int = 0) -> None:
        # The path without tables to recover: the same order.
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._hand_back_stream_partitions()
        self.completed.set()
        await self._start_streams()
        self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _hand_back_stream_partitions(self) -> None:
        consumer = self.app.consumer
        # Empty the agents' queues before any stream record can be fetched, not after:
        # a record fetched during the seek below is then processed, not dropped...
        self.app.flow_control.resume()
        assignment = consumer.assignment()
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        if assignment:
            # ...and one fetched again after it is skipped as read, which it was.
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        consumer.resume_flow()

    async def _seek_offsets(
        self, consumer: Any, tps: set[Any], offsets: Counter[Any], title: str
    ) -> None:
        """Seek changelog partitions, reading from the start where faust has no valid offset.

        faust 0.15 can hand a standby partition an offset that is not a
        non-negative integer when a rebalance interrupts a recovery, and
        aiokafka's ``seek`` then raises, which crashed the whole worker (the
        rebalance fault test caught it). Reading such a changelog from its
        start is always correct for a table, only slower.
        """
        sane: Counter[Any] = Counter()
        for tp in tps:
            offset = offsets[tp]
            if not isinstance(offset, int) or offset < -1:
                self.log.warning(
                    "%s changelog %r had offset %r: reading it from the start", title, tp, offset
                )
                offset = -1
            sane[tp] = offset
        await super()._seek_offsets(consumer, tps, sane, title)

    async def _start_streams(self) -> None:
        app: Any = self.app  # the fetcher is not part of faust's AppT interface
        await app._fetcher.maybe_start()  # noqa: SLF001 - as faust's own recovery does
        self.tables.on_actives_ready()


class PalauteTableManager(TableManager):
    """faust's table manager with :class:`OrderedRecovery`."""

    @property
    def recovery(self) -> Recovery:
        """Build the recovery service once, as faust does, with the safe hand-back order."""
        if self._recovery is None:
            self._recovery = OrderedRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


class IdempotentTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with :class:`IdempotentProducer` and :class:`StopSafeConsumer`."""

    Consumer = StopSafeConsumer
    Producer = IdempotentProducer


class PalauteApp(faust.App):
    """A faust app whose transports produce idempotently, whatever the broker URL's scheme."""

    #: Set when the app begins to stop: :class:`StopSafeConsumer` commits no more.
    commits_frozen: bool = False

    async def on_start(self) -> None:
        """Commit again: an app object started anew (in tests) is not stopping."""
        self.commits_frozen = False
        await super().on_start()

    async def _stop_consumer(self) -> None:
        # Commit what the agents finished while records still flow normally,
        # then no more: see StopSafeConsumer.
        consumer = self._consumer
        if consumer is not None and not self.commits_frozen:
            with contextlib.suppress(ConsumerNotStarted):
                if consumer.assignment():
                    await consumer.commit()
        self.commits_frozen = True
        await super()._stop_consumer()

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        """Start without faust's Monitor sensor, which nothing here reads.

        The Monitor keeps faust's own statistics (for its web views, which the
        worker does not serve): it runs on every record read, every event an
        agent takes and every record sent, several per record end to end. The
        worker's figures are its Prometheus metrics (connectors/telemetry.py).
        """
        dependencies = super().on_init_dependencies()
        with contextlib.suppress(KeyError):
            self.sensors.remove(self.monitor)
        return dependencies

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """Count the crash for /healthz (streams.diagnostics), then do what faust does."""
        note_agent_crash(agent.name)
        await super()._on_agent_error(agent, exc)

    def _new_transport(self) -> IdempotentTransport:
        return IdempotentTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> IdempotentTransport:
        return IdempotentTransport(self.conf.broker_producer, self)


def broker_credentials(kafka: KafkaConfig) -> faust.types.auth.CredentialsT | None:
    """Map the ``[kafka]`` security settings onto faust's credentials (None: plaintext).

    Derived from :func:`connectors.kafka_client.client_options`, the one mapping
    every other client of Palaute uses, so the workers reach a TLS or SASL
    cluster exactly as the web service and the tools do.
    """
    options = client_options(kafka)
    context: ssl.SSLContext | None = options.get("ssl_context")
    if "sasl_mechanism" not in options:
        return faust.SSLCredentials(context) if context is not None else None
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=context,
        mechanism=options["sasl_mechanism"],
    )


def create_app(
    settings: Settings,
    *,
    app_id: str | None = None,
    topic_names: TopicNames | None = None,
) -> faust.App:
    """Build the faust app of a worker from its settings, with every stage registered.

    ``app_id`` (the consumer group, and the prefix of internal and changelog
    topics) and ``topic_names`` default to ``[streams]`` with its
    ``topic_suffix`` applied.
    """
    streams = settings.streams
    suffix = streams.topic_suffix
    names = topic_names or TopicNames.with_suffix(suffix)
    app = PalauteApp(
        app_id or streams.app_id + suffix,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers],
        broker_client_id=settings.kafka.client_id,
        broker_credentials=broker_credentials(settings.kafka),
        # faust 0.15 names its RocksDB store "rocksdb://" whichever driver it uses;
        # the tables pick the rocksdict driver (python-rocksdb is unmaintained).
        store="rocksdb://",
        datadir=str(streams.data_dir),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # Fewer, larger produce requests: a few ms of latency for far less per-record cost.
        producer_linger=PRODUCER_LINGER_SECONDS,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
        topic_partitions=streams.partitions,
        topic_replication_factor=streams.replication_factor,
        web_enabled=streams.web_port is not None,
        web_host=streams.web_host,
        web_port=streams.web_port or _UNUSED_WEB_PORT,
        autodiscover=False,
        TableManager=PalauteTableManager,
    )
    web.register(app, settings)
    intake.register(app, settings, names)
    responses.register(app, settings, names)
    metrics.register(app, settings, names)
    alerting.register(app, settings, names)
    dispatch.register(app, settings, names)
    refetch.register(app)
    return app
