"""The stream runtime on plain aiokafka: the same stages and checkpoint order, without faust.

faust hands each record to an agent through its channels, streams and
acknowledgement bookkeeping, which cost several times the intake's own
work per record (docs/performance.md). Here a stage reads its input with
``getmany`` in a consumer group of its own, and each batch goes through
:func:`streams.runtime.checkpoint.run_batch` as on faust and in memory:
handle, produce, await the acknowledgements, write state (a compacted
changelog topic), commit. The runtime runs inside the worker as a service
of the faust app (:mod:`.service`); one stage's consumer, batches and
rebalances are in :mod:`.runner`, its state in :mod:`.store`.
"""

from streams.runtime.kafka_plain.service import (
    declared_topics,
    owned_partitions,
    run_stage,
    stage_inputs,
)

__all__ = ["declared_topics", "owned_partitions", "run_stage", "stage_inputs"]
