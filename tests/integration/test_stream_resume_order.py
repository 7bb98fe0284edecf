"""A worker must process every record of every partition it resumes, however slow its seek.

faust 0.15 resumed a worker's stream partitions, then sought them to their
committed offsets, then emptied the agents' queues. Records fetched during
the seek were dropped from the queues although the consumer had noted them
as read, so the live worker never processed them (a restart would have).
On a busy machine this left the metrics of a whole partition short. Here
the seek is made slow on purpose, in a real ``palaute worker`` against the
real broker, so records are certainly fetched during it if the partitions
are already resumed; every rating must still be counted. The worker starts
on changelogs that hold state and without its local store, as after a move
to a new machine: faust's fetcher then runs before the partitions are
handed back.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.topics import ALERTS, CONTACTS, DEADLETTER, METRICS, RATINGS, SURVEYS, VAULT
from tests.fixtures import RunTopics, start_process, stop_process

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

pytestmark = pytest.mark.integration

PARTITIONS = 4
TOUCHPOINTS = [f"tp-{n}" for n in range(PARTITIONS)]
PER_TOUCHPOINT = 3_000
SEEK_DELAY_SECONDS = 5.0
DEADLINE_SECONDS = 240.0

#: Runs the real worker with one change: seeking to committed offsets takes a while.
SLOW_SEEK_WORKER = f"""
import asyncio, sys
from streams.runtime.overrides.consumer import StopSafeConsumer
from palaute.cli import main

original = StopSafeConsumer.seek_to_committed

async def slow_seek_to_committed(self):
    await asyncio.sleep({SEEK_DELAY_SECONDS})
    return await original(self)

StopSafeConsumer.seek_to_committed = slow_seek_to_committed
sys.exit(main(["worker", "--config", sys.argv[1]]))
"""


def _rating(touchpoint: str, number: int, at: datetime) -> dict[str, Any]:
    survey = f"{touchpoint}-s{number}"
    return {
        "type": "Rating",
        "rating_id": f"{survey}.r1",
        "survey_id": survey,
        "revision": 1,
        "touchpoint_id": touchpoint,
        "service": "tax",
        "touchpoint_channel": "phone",
        "survey_channel": "sms",
        "language": "fi",
        "scale": "csat-5",
        "score": 1 + number % 5,
        "normalised": (number % 5) / 4,
        "answered_after_seconds": 60.0,
        "answered_at": at.isoformat(),
    }


@pytest.fixture
def run_topics() -> RunTopics:
    """Create the topics the worker consumes and writes, with this test's partition count."""
    return RunTopics(
        bases=(CONTACTS, SURVEYS, VAULT, DEADLETTER, RATINGS, METRICS, ALERTS),
        internal=(),
        partitions=PARTITIONS,
    )


@pytest.fixture
def suffix(run_suffix: str) -> str:
    """Give this run's topic suffix (its topics made and deleted by ``run_suffix``)."""
    return run_suffix


def _config(tmp_path: Path, bootstrap: str, run: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "integration-pseudonymisation-key-0123456789"
link_signing_key = "integration-link-signing-key-9876543210abc"

[streams]
topic_suffix = "{run}"
data_dir = "{tmp_path / "data"}"
partitions = {PARTITIONS}

[metrics]
emit_interval = "1s"
""",
        encoding="utf-8",
    )
    return path


async def _produce_ratings(bootstrap: str, topic: str, numbers: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=20)
    await producer.start()
    at = datetime.now(UTC) - timedelta(hours=2)
    try:
        for number in numbers:
            for touchpoint in TOUCHPOINTS:
                rating = _rating(touchpoint, number, at + timedelta(seconds=number))
                await producer.send(
                    topic, key=touchpoint.encode(), value=json.dumps(rating).encode()
                )
        await producer.flush()
    finally:
        await producer.stop()


async def _counts_when_complete(
    bootstrap: str, topic: str, worker: subprocess.Popen[bytes], expected: int
) -> dict[str, int]:
    """Follow the metrics topic until every touchpoint's 24 h count is complete, or the deadline."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    counts: dict[str, int] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + DEADLINE_SECONDS
        wanted = {f"touchpoint:{tp}:24h" for tp in TOUCHPOINTS}
        while time.monotonic() < deadline and worker.poll() is None:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for batch in batches.values():
                for record in batch:
                    key = record.key.decode()
                    if key in wanted:
                        counts[key] = json.loads(record.value)["count"]
            if len(counts) == len(wanted) and all(n == expected for n in counts.values()):
                break
    finally:
        await consumer.stop()
    return counts


def _start_worker(
    config: Path, log: Path, script: str = SLOW_SEEK_WORKER
) -> subprocess.Popen[bytes]:
    return start_process([sys.executable, "-c", script, str(config)], log)


@pytest.mark.timeout(600)
async def test_every_rating_is_counted_when_the_seek_to_committed_offsets_is_slow(
    kafka_bootstrap: str, suffix: str, tmp_path: Path
) -> None:
    """A record fetched while partitions are handed back must reach its agent, not vanish."""
    config = _config(tmp_path, kafka_bootstrap, suffix)
    log = tmp_path / "worker.log"
    metrics = METRICS + suffix
    # First some state in the changelogs.
    await _produce_ratings(kafka_bootstrap, RATINGS + suffix, range(1))
    worker = _start_worker(config, log)
    try:
        first = await _counts_when_complete(kafka_bootstrap, metrics, worker, 1)
    finally:
        stop_process(worker, timeout=60)
    assert first == {f"touchpoint:{tp}:24h": 1 for tp in TOUCHPOINTS}, _tail(log)
    # Then a backlog, and a worker without its local store: recovery runs first.
    await _produce_ratings(kafka_bootstrap, RATINGS + suffix, range(1, PER_TOUCHPOINT))
    shutil.rmtree(tmp_path / "data")
    worker = _start_worker(config, log)
    try:
        counts = await _counts_when_complete(kafka_bootstrap, metrics, worker, PER_TOUCHPOINT)
        alive = worker.poll() is None
    finally:
        stop_process(worker, timeout=60)
    assert alive, f"the worker died:\n{_tail(log)}"
    assert "Restoring state from changelog topics" in log.read_text(errors="replace")
    assert counts == {f"touchpoint:{tp}:24h": PER_TOUCHPOINT for tp in TOUCHPOINTS}, _tail(log)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


#: Runs the real worker with faust's getmany ending two batches of ratings early,
#: as it does when the flow stops or the generation changes while it hands a batch
#: over: the first ratings record handed over (the head of a partition the group
#: never committed) and the 150th (the middle of one) end their batch.
CUT_BATCH_WORKER = """
import sys
from faust.transport.consumer import Consumer
from palaute.cli import main

original = Consumer.getmany
handed = 0

async def cut_getmany(self, timeout):
    global handed
    async for tp, message in original(self, timeout):
        if tp.topic.startswith("palaute.ratings.v1"):
            handed += 1
            if handed in (1, 150):
                print(f"test: batch cut at {tp.topic}[{tp.partition}]@{message.offset}", flush=True)
                return
        yield tp, message

Consumer.getmany = cut_getmany
sys.exit(main(["worker", "--config", sys.argv[1]]))
"""


@pytest.mark.timeout(600)
async def test_every_rating_is_counted_when_a_fetched_batch_is_cut_short(
    kafka_bootstrap: str, suffix: str, tmp_path: Path
) -> None:
    """Records left of a batch faust stopped handing over are fetched again, not committed past."""
    config = _config(tmp_path, kafka_bootstrap, suffix)
    log = tmp_path / "worker.log"
    first = 500
    await _produce_ratings(kafka_bootstrap, RATINGS + suffix, range(first))
    worker = _start_worker(config, log, CUT_BATCH_WORKER)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while log.read_text(errors="replace").count("test: batch cut") < 2:
            assert time.monotonic() < deadline, _tail(log)
            assert worker.poll() is None, _tail(log)
            await asyncio.sleep(0.5)
        # Later records are handed over and acknowledged after the cut: without the
        # fix faust committed across the records it dropped.
        await _produce_ratings(kafka_bootstrap, RATINGS + suffix, range(first, 2 * first))
        counts = await _counts_when_complete(kafka_bootstrap, METRICS + suffix, worker, 2 * first)
        alive = worker.poll() is None
    finally:
        stop_process(worker, timeout=60)
    cuts = [
        line for line in log.read_text(errors="replace").splitlines() if "test: batch cut" in line
    ]
    assert any(line.rstrip().endswith("@0") for line in cuts), cuts
    assert not all(line.rstrip().endswith("@0") for line in cuts), cuts
    assert alive, f"the worker died:\n{_tail(log)}"
    assert counts == {f"touchpoint:{tp}:24h": 2 * first for tp in TOUCHPOINTS}, _tail(log)
