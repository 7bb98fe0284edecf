"""The Kafka runtime: a stage as a faust agent, its state in a changelog-backed table.

faust gives the batch (``take_events``), the table (a local store whose
writes go to a compacted changelog topic, recovered on assignment) and the
consumer; the worker's producer is idempotent with ``acks=all``
(:mod:`streams.app`). The checkpoint's steps map onto them so:

* *produce*: each record goes straight to the worker's producer
  (:class:`~streams.producer.DirectProducer`);
* *await the acknowledgements*: :func:`streams.acks.acknowledged` sends the
  open batches at once and waits for every record of the checkpoint;
* *write state*: ``table[key] = value`` under the event of the record that
  made the change, so the write goes to that record's partition of the store
  and the changelog. Reads are made under the record being handled, too:
  faust's store looks a key up in the partition of the current event, and
  within a batch that is not the record being handled unless it is set;
* *carry out the effects*: the wiring's ``perform`` (notifying an alert),
  awaited before any state is written;
* *commit*: the agent returns to faust, which acks the batch's events;
  faust flushes the producer (changelog writes included) before it commits
  acked offsets, and commits nothing once a stop has begun
  (:class:`streams.app.StopSafeConsumer`);
* *wait until the state is durable* (a batch with commands only): the
  producer is flushed, its send buffer (where table writes wait for the
  changelog) drained and every record acknowledged;
* *carry out the commands*: the agent awaits the stage's executor before it
  takes the next batch, so a partition is handed over in a rebalance only
  once the command in hand has finished and its outcome is produced;
* *fed back and again*: the commands' outcome records for this stage's
  input, then the records that asked for it, are handled in the next
  checkpoint, under the event of their partition in the batch; records
  ask again for at most :data:`~streams.runtime.checkpoint.AGAIN_WITHIN_S`.

A stage with several tables is given them as :class:`Tables`, its state
keys ``<table>/<key>``. A stage that keeps parsed state in memory
(:class:`~streams.runtime.model.Forgetful`) is told to forget it when
partitions are revoked or assigned: the tables are the truth again.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from connectors import telemetry
from streams.acks import acknowledged
from streams.producer import DirectProducer
from streams.runtime.checkpoint import AGAIN_WITHIN_S, fed_back, forget, run_batch
from streams.runtime.deadletters import kafka_headers
from streams.runtime.model import Forgetful, Record
from streams.runtime.overrides.events import at_event
from streams.runtime.reporting import report_checkpoint, retry_counter
from streams.runtime.transient import is_transient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

    import faust
    from faust.types import EventT

    from streams.runtime.model import Executor, Produce, Stage


class _NoState:
    def get(self, key: str) -> str | None:
        del key
        return None


class Tables:
    """Several faust tables as one stage's state, keyed ``<table>/<key>`` (a ScanView).

    Each table keeps its own name, changelog topic and keys, so a stage
    moved onto the runtime finds the state its predecessor stored.
    """

    def __init__(self, tables: Mapping[str, Any]) -> None:
        self._tables = dict(tables)

    def _split(self, key: str) -> tuple[Any, str]:
        name, _slash, rest = key.partition("/")
        return self._tables[name], rest

    def get(self, key: str) -> str | None:
        """Read a key of one of the tables."""
        table, rest = self._split(key)
        value: str | None = table.get(rest)
        return value

    def scan(self, table: str) -> Iterable[tuple[str, str]]:
        """Give one table's entries (of every partition this worker holds)."""
        return ((str(key), str(value)) for key, value in self._tables[table].items())

    def __setitem__(self, key: str, value: str) -> None:
        table, rest = self._split(key)
        table[rest] = value

    def pop(self, key: str, default: None = None) -> str | None:
        """Delete a key of one of the tables."""
        table, rest = self._split(key)
        value: str | None = table.pop(rest, default)
        return value


async def _no_effects(effects: Sequence[Any]) -> None:
    raise RuntimeError(f"a stage asked for {len(effects)} effects and its wiring performs none")


class _FaustIO:
    """The faust side of one checkpoint."""

    def __init__(
        self,
        app: faust.App,
        producer: DirectProducer,
        table: Any,
        topics: Mapping[str, str],
        events: _Events,
        *,
        perform: Callable[[Sequence[Any]], Awaitable[None]],
    ) -> None:
        self._app = app
        self._producer = producer
        self._table = table
        self._topics = topics
        self._events = events
        self._perform = perform

    async def produce(self, record: Produce) -> Awaitable[Any] | None:
        return await self._producer.send_to(
            self._topics[record.topic], record.key, record.value, record.headers, record.partition
        )

    async def acknowledged(self, sent: list[Awaitable[Any]]) -> list[Any]:
        return await acknowledged(self._app, sent)

    async def perform(self, effects: Sequence[Any]) -> None:
        await self._perform(effects)

    def write_state(self, record: Record, key: str, value: str | None) -> None:
        at_event(self._events[record.topic, record.partition, record.offset])
        if value is None:
            self._table.pop(key, None)
        else:
            self._table[key] = value

    async def commit(self, records: Sequence[Record]) -> None:
        # faust acks the batch's events when the agent takes the next batch, and
        # commits acked offsets only after flushing the producer.
        del records

    async def durable(self) -> None:
        # The idempotent producer's flush drains the buffer that holds table
        # writes, then waits for every record's acknowledgement.
        await self._app.producer.flush()


class _Events:
    """The faust event of each record of a batch; a fed-back record takes its partition's."""

    def __init__(self, records: Sequence[Record], events: Sequence[EventT[bytes]]) -> None:
        self._by_offset = {
            (record.topic, record.partition, record.offset): event
            for record, event in zip(records, events, strict=True)
        }
        self._by_partition = {
            (record.topic, record.partition): event
            for record, event in zip(records, events, strict=True)
        }

    def __getitem__(self, place: tuple[str, int, int]) -> EventT[bytes]:
        event = self._by_offset.get(place)
        return self._by_partition[place[0], place[1]] if event is None else event


def _at_record(events: _Events, record: Record) -> None:
    at_event(events[record.topic, record.partition, record.offset])


async def _again(
    checkpoint: Callable[[list[Record]], Awaitable[list[Record]]], pending: list[Record]
) -> None:
    """Hand the stage its fed-back outcomes and what asked again, within the time budget."""
    budget_ends = time.monotonic() + AGAIN_WITHIN_S
    while pending:
        if time.monotonic() > budget_ends:
            # Out of time: outcomes are still folded in, nothing asks again.
            pending = [record for record in pending if record.offset < 0]
        pending = await checkpoint(pending) if pending else []


def record_of(event: EventT[bytes]) -> Record:
    """Turn a faust event into the runtime's record, its headers as the client sent them."""
    message = event.message
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        tuple(kafka_headers(message.headers)),
    )


def run_stage(
    app: faust.App,
    stage: Stage,
    source: faust.TopicT,
    *,
    topics: Mapping[str, str],
    table: Any = None,
    batch: int = 500,
    within: float = 0.01,
    observe: Callable[[Any], None] = lambda _observation: None,
    perform: Callable[[Sequence[Any]], Awaitable[None]] = _no_effects,
    execute: Executor | None = None,
) -> None:
    """Add an agent that runs ``stage`` on ``source`` in the checkpoint order.

    ``table`` is a faust table or :class:`Tables`; ``perform`` carries out
    the effects the stage asks for (see :mod:`streams.runtime.checkpoint`).
    ``execute`` carries out the
    stage's commands, after the checkpoint, with the table's writes
    acknowledged (:meth:`~streams.runtime.checkpoint.Checkpoint.carry_out`).
    """
    producer = DirectProducer(app)
    state = table if table is not None else _NoState()
    if isinstance(stage, Forgetful):

        def moved(*_args: Any, **_kwargs: Any) -> None:
            forget(stage, moved=True)

        # Typed as Any: mode's stubs describe receivers more narrowly than it calls them.
        receiver: Any = moved
        app.on_partitions_revoked.connect(receiver, weak=False)
        app.on_partitions_assigned.connect(receiver, weak=False)

    # A source may name several topics (the metrics stage reads two).
    sources = tuple(source.topics)

    async def checkpoint(records: list[Record], events: _Events) -> list[Record]:
        """Handle and commit one batch, carry out its commands; give what goes next."""
        io = _FaustIO(app, producer, table, topics, events, perform=perform)
        done = await run_batch(
            stage,
            state,
            records,
            io,
            at_record=functools.partial(_at_record, events),
            execute=execute,
            transient=is_transient,
            on_retry=retry_counter(stage.label),
        )
        report_checkpoint(done, observe)
        return [*fed_back(done, topics, sources), *done.again]

    async def agent(stream: faust.StreamT[bytes]) -> None:
        # faust's StreamT does not declare take_events; its Stream, which agents get, does.
        batches = cast("faust.Stream[bytes]", stream).take_events
        async for events in batches(batch, within=within):
            records = [record_of(event) for event in events]
            by_offset = _Events(records, events)
            pending = await checkpoint(records, by_offset)
            await _again(functools.partial(checkpoint, events=by_offset), pending)
            telemetry.agent_progress(stage.name, datetime.now(UTC))

    app.agent(source, name=stage.name)(agent)
