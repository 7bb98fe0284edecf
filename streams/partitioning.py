"""Which partition a key goes to, for stages that must know it ahead of the producer.

A stage that rebuilds per-partition state from a table (the metrics stage's
roll-up parts) has to know which partition each stored key came from; the
table does not say. It sends those keys to the partition this function
gives, and asks the same function when it rebuilds, so the two cannot drift
apart whatever partitioner the producer is configured with.

The responses stage writes each Rating to the partition of the ratings
topic that matches the one where the metrics stage counts its touchpoint
(:func:`touchpoint_partition`), so the metrics stage can count it where it
lands instead of routing it through an internal topic first. That holds
only while the ratings topic has as many partitions as the worker's
internal topics (:func:`copartitioned`): faust assigns partition *p* of
every topic with the same partition count to the same worker, and a table
write lands in the partition of the record being processed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiokafka.partitioner import murmur2

from engine.ledger import owner_key
from schemas.metrics import Dimension

if TYPE_CHECKING:
    import faust


def key_partition(key: bytes, partitions: int) -> int:
    """Give the partition Kafka's default partitioner picks for a key (murmur2, as Java's)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def touchpoint_partition(touchpoint_id: str, partitions: int) -> int:
    """Give the partition in which the metrics stage counts a touchpoint."""
    return key_partition(owner_key(Dimension.TOUCHPOINT, touchpoint_id).encode(), partitions)


def copartitioned(app: faust.App, topic: str, partitions: int) -> bool:
    """Tell whether ``topic`` has ``partitions`` partitions, as this worker's consumer last saw.

    False while the consumer has no metadata for it yet: the caller then
    takes the path that does not depend on it.
    """
    consumer = app.consumer
    return consumer is not None and consumer.topic_partitions(topic) == partitions
