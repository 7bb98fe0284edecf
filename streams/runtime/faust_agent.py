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
* *commit*: the agent returns to faust, which acks the batch's events;
  faust flushes the producer (changelog writes included) before it commits
  acked offsets, and commits nothing once a stop has begun
  (:class:`streams.app.StopSafeConsumer`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from connectors import telemetry
from streams.acks import acknowledged
from streams.producer import DirectProducer
from streams.runtime.checkpoint import run_batch
from streams.runtime.deadletters import kafka_headers
from streams.runtime.model import Record
from streams.runtime.overrides.events import at_event

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    import faust
    from faust.types import EventT

    from streams.runtime.model import Produce, Stage


class _NoState:
    def get(self, key: str) -> str | None:
        del key
        return None


class _FaustIO:
    """The faust side of one checkpoint."""

    def __init__(
        self,
        app: faust.App,
        producer: DirectProducer,
        table: Any,
        topics: Mapping[str, str],
        events: Mapping[tuple[int, int], EventT[bytes]],
    ) -> None:
        self._app = app
        self._producer = producer
        self._table = table
        self._topics = topics
        self._events = events

    async def produce(self, record: Produce) -> Awaitable[Any] | None:
        return await self._producer.send_to(
            self._topics[record.topic], record.key, record.value, record.headers, record.partition
        )

    async def acknowledged(self, sent: list[Awaitable[Any]]) -> list[Any]:
        return await acknowledged(self._app, sent)

    def write_state(self, record: Record, key: str, value: str | None) -> None:
        at_event(self._events[record.partition, record.offset])
        if value is None:
            self._table.pop(key, None)
        else:
            self._table[key] = value

    async def commit(self, records: Sequence[Record]) -> None:
        # faust acks the batch's events when the agent takes the next batch, and
        # commits acked offsets only after flushing the producer.
        del records


def _at_record(events: Mapping[tuple[int, int], EventT[bytes]], record: Record) -> None:
    at_event(events[record.partition, record.offset])


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
) -> None:
    """Add an agent that runs ``stage`` on ``source`` in the checkpoint order."""
    producer = DirectProducer(app)
    state = table if table is not None else _NoState()
    label = telemetry.Stage(stage.label)

    async def agent(stream: faust.StreamT[bytes]) -> None:
        # faust's StreamT does not declare take_events; its Stream, which agents get, does.
        batches = cast("faust.Stream[bytes]", stream).take_events
        async for events in batches(batch, within=within):
            records = [record_of(event) for event in events]
            by_offset = {
                (record.partition, record.offset): e
                for record, e in zip(records, events, strict=True)
            }
            io = _FaustIO(app, producer, table, topics, by_offset)
            checkpoint = await run_batch(
                stage,
                state,
                records,
                io,
                at_record=functools.partial(_at_record, by_offset),
            )
            for _record, rejection, _error_class in checkpoint.rejections:
                telemetry.record_dead_letter(label, rejection.code)
                telemetry.count_event(label, telemetry.Outcome.DEAD_LETTERED)
            for observation in checkpoint.observations:
                observe(observation)
            telemetry.agent_progress(stage.name, datetime.now(UTC))

    app.agent(source, name=stage.name)(agent)
