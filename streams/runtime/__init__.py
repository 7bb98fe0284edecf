"""The stream runtime: stages as pure handlers, run in one checkpoint order.

A stage (:class:`~streams.runtime.model.Stage`) turns one record and the
state it keys into an :class:`~streams.runtime.model.Output`: state changes,
records to produce, a rejection, observations. It does no I/O. A runtime
takes a batch of records, has the stage handle each one, and commits the
batch by :meth:`~streams.runtime.checkpoint.Checkpoint.commit`, the one
place that states the order (produce, await the acknowledgements, write
state, commit offsets) and the per-record containment.

Two runtimes run the same stages: :mod:`streams.runtime.faust_agent` on
Kafka (a faust agent, a changelog-backed table, the worker's producer) and
:mod:`streams.runtime.memory` in memory, deterministic and with crashes
injectable at every step, for the behaviour and property tests.
"""
