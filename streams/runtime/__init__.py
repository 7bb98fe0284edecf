"""The stream runtime: stages as pure handlers, run in one checkpoint order.

A stage (:class:`~streams.runtime.model.Stage`) turns one record and the
state it keys into an :class:`~streams.runtime.model.Output`: state changes,
records to produce, a rejection, observations, and effects (work outside
Kafka that the runtime's wiring carries out before the state is written).
It does no I/O. A runtime
takes a batch of records, has the stage handle each one, and commits the
batch by :meth:`~streams.runtime.checkpoint.Checkpoint.commit`, the one
place that states the order (produce, await the acknowledgements, write
state, commit offsets) and the per-record containment.

Three runtimes run the same stages: two on Kafka,
:mod:`streams.runtime.faust_agent` (a faust agent, a changelog-backed
table, the worker's producer) and :mod:`streams.runtime.kafka_plain` (a
consumer group of its own per stage, ``getmany`` batches, a changelog
topic, explicit commits: several times cheaper per record, for the
intake), and :mod:`streams.runtime.memory` in memory, deterministic and
with crashes injectable at every step, for the behaviour and property tests.
"""
