"""Read what a topic received from a point in time up to its end, without a consumer group.

The weekly digest and the console's comment export need the last weeks of a
topic, not all of it: the consumer seeks each partition by timestamp
(``offsets_for_times``) and stops at the end offsets it found when it began,
so records written meanwhile wait for the next reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer

from connectors.kafka_client import client_options, topic_partitions

if TYPE_CHECKING:
    from datetime import datetime

    from aiokafka import TopicPartition

    from schemas.config import KafkaConfig


async def records_since(
    kafka: KafkaConfig, topic: str, since: datetime
) -> list[tuple[bytes | None, bytes | None]]:
    """Give the (key, value) of every record from ``since`` on, tombstones included."""
    partitions = await topic_partitions(kafka, topic)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    records: list[tuple[bytes | None, bytes | None]] = []
    try:
        await consumer.start()
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times(
            dict.fromkeys(partitions, int(since.timestamp() * 1000))
        )
        remaining: dict[TopicPartition, int] = {}
        for partition in partitions:
            found = starts.get(partition)
            if found is None or found.offset >= ends[partition]:
                continue
            consumer.seek(partition, found.offset)
            remaining[partition] = ends[partition]
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for partition, batch in batches.items():
                records.extend((record.key, record.value) for record in batch)
                if batch and batch[-1].offset + 1 >= remaining[partition]:
                    del remaining[partition]
    finally:
        await consumer.stop()
    return records
