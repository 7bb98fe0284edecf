"""Which partition a key goes to, for stages that must know it ahead of the producer.

A stage that rebuilds per-partition state from a table (the metrics stage's
roll-up parts) has to know which partition each stored key came from; the
table does not say. It sends those keys to the partition this function
gives, and asks the same function when it rebuilds, so the two cannot drift
apart whatever partitioner the producer is configured with.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def key_partition(key: bytes, partitions: int) -> int:
    """Give the partition Kafka's default partitioner picks for a key (murmur2, as Java's)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions
