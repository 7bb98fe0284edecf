"""The plain-aiokafka runtime on a real broker: a kill, a rebalance and a stop lose nothing.

Each test runs :class:`~tests.integration.plain_runtime_harness.Tally`, an
idempotent stage whose state must follow its partitions, on fresh topics.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.runtime.kafka_plain.store import encode_key, encode_value
from tests.integration.dispatch_harness import PARTITIONS, Reader, produce
from tests.integration.plain_runtime_harness import check_tally, tally_runner

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.conftest import TopicFactory

pytestmark = pytest.mark.integration

KEYS = 12
DEADLINE_S = 90.0


def _records(start: int, count: int) -> list[tuple[bytes, bytes]]:
    return [(f"key-{n % KEYS}".encode(), f"r{n}".encode()) for n in range(start, start + count)]


def _sent(records: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}
    for key, value in records:
        sent.setdefault(key.decode(), []).append(value.decode())
    return sent


def _outputs(reader: Reader) -> list[tuple[bytes | None, bytes | None]]:
    return [(record.key, record.value) for record in reader.records]


async def _read_until(reader: Reader, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await reader.poll()


def _distinct(reader: Reader) -> int:
    return len({record.value.partition(b"=")[0] for record in reader.records})


async def test_a_second_worker_takes_partitions_and_their_state_without_a_loss(
    kafka_bootstrap: str, unique_topic: TopicFactory
) -> None:
    """Scaling out moves partitions mid-stream: their state must move with them."""
    source = unique_topic("plain-in", PARTITIONS)
    out = unique_topic("plain-out", PARTITIONS)
    changelog = unique_topic("plain-changelog", PARTITIONS)
    group = f"plain-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    reader = Reader(kafka_bootstrap, out)
    await reader.start()
    first = tally_runner(
        kafka_bootstrap, source, out=out, changelog=changelog, group=group, producer=producer
    )
    second = tally_runner(
        kafka_bootstrap, source, out=out, changelog=changelog, group=group, producer=producer
    )
    records = _records(0, 600)
    try:
        await first.start()
        await produce(kafka_bootstrap, source, records[:300])
        await _read_until(reader, lambda: _distinct(reader) >= 100, "the first outputs")
        await second.start()
        await produce(kafka_bootstrap, source, records[300:])
        await _read_until(reader, lambda: _distinct(reader) >= len(records), "every output")
        await asyncio.sleep(2.0)
        await reader.poll()
    finally:
        await second.stop()
        await first.stop()
        await producer.stop()
        await reader.stop()
    check_tally(_outputs(reader), _sent(records))


async def test_a_stopped_worker_committed_only_what_it_handled(
    kafka_bootstrap: str, unique_topic: TopicFactory
) -> None:
    """A stop mid-stream must leave every unhandled record for the next worker."""
    source = unique_topic("plain-in", PARTITIONS)
    out = unique_topic("plain-out", PARTITIONS)
    changelog = unique_topic("plain-changelog", PARTITIONS)
    group = f"plain-{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    reader = Reader(kafka_bootstrap, out)
    await reader.start()
    records = _records(0, 2000)
    await produce(kafka_bootstrap, source, records)
    runner = tally_runner(
        kafka_bootstrap, source, out=out, changelog=changelog, group=group, producer=producer
    )
    try:
        await runner.start()
        await _read_until(reader, lambda: _distinct(reader) >= 200, "the first outputs")
        await runner.stop()
        committed = await admin.list_consumer_group_offsets(group)
        await asyncio.sleep(1.0)
        await reader.poll()
        done = {record.value.partition(b"=")[0].decode() for record in reader.records}
        # Records land in partitions by key; map each record to its offset the same way.
        by_key = await _offsets(kafka_bootstrap, source)
        assert committed, "the stop committed nothing at all"
        assert sum(meta.offset for meta in committed.values()) < len(records), "all done already"
        for tp, meta in committed.items():
            below = [value for offset, value in by_key[tp.partition] if offset < meta.offset]
            assert set(below) <= done, f"{tp}: committed past records never handled"
        again = tally_runner(
            kafka_bootstrap, source, out=out, changelog=changelog, group=group, producer=producer
        )
        await again.start()
        await _read_until(reader, lambda: _distinct(reader) >= len(records), "every output")
        await again.stop()
    finally:
        await producer.stop()
        await reader.stop()
        await admin.close()
    check_tally(_outputs(reader), _sent(records))


async def _offsets(bootstrap: str, topic: str) -> dict[int, list[tuple[int, str]]]:
    reader = Reader(bootstrap, topic)
    await reader.start()
    try:
        for _ in range(20):
            await reader.poll()
    finally:
        await reader.stop()
    found: dict[int, list[tuple[int, str]]] = {}
    for record in reader.records:
        found.setdefault(record.partition, []).append((record.offset, record.value.decode()))
    return found


async def test_a_killed_worker_is_followed_by_one_that_recovers_its_state(
    kafka_bootstrap: str, unique_topic: TopicFactory
) -> None:
    """A kill -9 leaves a batch produced but uncommitted: repeated, never lost or recounted."""
    source = unique_topic("plain-in", PARTITIONS)
    out = unique_topic("plain-out", PARTITIONS)
    changelog = unique_topic("plain-changelog", PARTITIONS)
    group = f"plain-{uuid.uuid4().hex}"
    reader = Reader(kafka_bootstrap, out)
    await reader.start()
    records = _records(0, 3000)
    await produce(kafka_bootstrap, source, records)
    command = [sys.executable, "-m", "tests.integration.plain_runtime_harness"]
    arguments = [kafka_bootstrap, source, out, changelog, group]
    try:
        child = subprocess.Popen([*command, *arguments])  # noqa: ASYNC220 - our own module
        await _read_until(reader, lambda: _distinct(reader) >= 500, "the first outputs")
        child.kill()
        child.wait()
        child = subprocess.Popen([*command, *arguments])  # noqa: ASYNC220 - as above
        await _read_until(reader, lambda: _distinct(reader) >= len(records), "every output")
        child.terminate()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
        await reader.stop()
    check_tally(_outputs(reader), _sent(records))


def test_state_is_written_as_a_faust_table_of_strings_writes_it() -> None:
    """Keeping faust's changelog format is what lets the history survive the move off faust."""
    from faust.serializers import codecs  # noqa: PLC0415 - only to compare with faust

    history = '{"format": 2, "decided": ["a"]}'
    assert encode_key("citizen-1") == codecs.dumps("json", "citizen-1")
    assert encode_value(history) == codecs.dumps("json", history)
    assert encode_value(None) is None
