"""A stage's state on plain aiokafka: a dict per partition, kept in a compacted changelog topic.

The changelog is the state; the dicts are what this worker has read of it.
The topic and its records are those of a faust table of string keys and
values (``<app id>-<table>-changelog``, key and value each a JSON string,
a deleted key a tombstone), so a stage moved off faust keeps its state.

* **Reads** look a key up in the partition of the record being handled
  (:meth:`ChangelogStore.at`): a stage's state is partitioned as its input.
* **Writes** are taken in two steps, as the checkpoint order needs them:
  :meth:`ChangelogStore.changelog_record` gives the record to produce, and
  only once the broker has acknowledged it does :meth:`ChangelogStore.apply`
  change the dict. A write the broker refused is therefore in neither.
* **Recovery** (:meth:`ChangelogStore.recover`) reads each newly assigned
  partition of the changelog up to its end before a record of the input
  partition is handled. A partition this worker held before is read on from
  where it left off (its own acknowledged writes included); any other from
  the log's start.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from aiokafka.structs import TopicPartition

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aiokafka import AIOKafkaConsumer

log = logging.getLogger(__name__)

#: How long one fetch of a recovery waits for records before it looks at the positions again.
RECOVERY_FETCH_MS = 500


def changelog_topic(app_id: str, table: str) -> str:
    """Name a table's changelog topic as faust names it, so the state survives a move."""
    return f"{app_id}-{table}-changelog"


def encode_key(key: str) -> bytes:
    """Write a state key as a faust table of strings writes it (a JSON string)."""
    return orjson.dumps(key)


def encode_value(value: str | None) -> bytes | None:
    """Write a state value as a faust table writes it; None is a tombstone."""
    return None if value is None else orjson.dumps(value)


@dataclass
class _Partition:
    """One partition of the state, and the changelog offset it has been read up to."""

    values: dict[str, str] = field(default_factory=dict)
    next_offset: int = 0


class ChangelogStore:
    """The state of one stage: its changelog topic, and a dict of each owned partition."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._partitions: dict[int, _Partition] = {}
        self._current: _Partition = _Partition()

    def at(self, partition: int) -> None:
        """Look keys up in ``partition`` until told otherwise (the record being handled)."""
        self._current = self._partitions.setdefault(partition, _Partition())

    def get(self, key: str) -> str | None:
        """Give the value stored under ``key`` in the current partition."""
        return self._current.values.get(key)

    def changelog_record(self, key: str, value: str | None) -> tuple[bytes, bytes | None]:
        """Give the changelog record (key, value) that stores ``value`` under ``key``."""
        return encode_key(key), encode_value(value)

    def apply(self, partition: int, key: str, value: str | None, offset: int) -> None:
        """Take a write into the dict, once its changelog record at ``offset`` is acknowledged."""
        held = self._partitions.setdefault(partition, _Partition())
        if value is None:
            held.values.pop(key, None)
        else:
            held.values[key] = value
        held.next_offset = max(held.next_offset, offset + 1)

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget the partitions this worker no longer owns."""
        keep = set(partitions)
        for number in set(self._partitions) - keep:
            del self._partitions[number]

    async def recover(self, reader: AIOKafkaConsumer, partitions: Iterable[int]) -> int:
        """Read each partition's changelog up to its end; give how many records were read.

        ``reader`` is a consumer of no group; it is left with no assignment.
        """
        tps = [TopicPartition(self.topic, number) for number in sorted(set(partitions))]
        if not tps:
            return 0
        started = time.monotonic()
        reader.assign(tps)
        try:
            ends = await reader.end_offsets(tps)
            for tp in tps:
                held = self._partitions.setdefault(tp.partition, _Partition())
                if held.next_offset >= ends[tp]:
                    # Nothing new (an offset past the end means the topic was recreated).
                    held.next_offset = min(held.next_offset, ends[tp])
                    reader.pause(tp)
                    continue
                reader.seek(tp, held.next_offset)
            read = await self._read_to(reader, ends)
        finally:
            reader.unsubscribe()
        log.info(
            "recovered %d changelog records of %s partitions %s in %.1f s",
            read,
            self.topic,
            [tp.partition for tp in tps],
            time.monotonic() - started,
        )
        return read

    async def _read_to(self, reader: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> int:
        read = 0
        pending = {tp for tp in ends if tp not in reader.paused()}
        while pending:
            fetched = await reader.getmany(*pending, timeout_ms=RECOVERY_FETCH_MS)
            for tp, records in fetched.items():
                held = self._partitions[tp.partition]
                for record in records:
                    if record.key is None:
                        continue
                    key = orjson.loads(record.key)
                    if record.value is None:
                        held.values.pop(key, None)
                    else:
                        held.values[key] = orjson.loads(record.value)
                    held.next_offset = record.offset + 1
                read += len(records)
            for tp in list(pending):
                # A compacted log has gaps: the position, not the last record, says where it is.
                position = await reader.position(tp)
                if position >= ends[tp]:
                    self._partitions[tp.partition].next_offset = ends[tp]
                    pending.discard(tp)
        return read
