"""The whole corpus through a running worker: every record dead-lettered, the worker alive.

Each malformed record must reach the dead-letter topic with its original bytes
and the documented reason code, and a valid contact sent after all of them must
still be decided: one bad record never stops the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from ops.kafka import create_topic, delete_topics
from schemas.deadletter import DeadLetter
from schemas.samples import contact_completed
from schemas.topics import CONTACTS, DEADLETTER, SURVEYS
from tests.fixtures import start_worker, stop_process

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
MANIFEST: dict[str, dict[str, str]] = json.loads(
    (HERE / "contacts.expected.json").read_text(encoding="utf-8")
)
# The broker itself refuses records over its 1 MB limit: they never reach a worker.
REFUSED_BY_BROKER = {"013-payload-2mb.raw"}
DEADLINE_SECONDS = 180.0  # worker start and every record, on a busy 2-core machine


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        records: list[Any] = []
        while await consumer.position(partition) < end:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_worker_dead_letters_every_corpus_record_and_keeps_deciding(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Nothing is dropped silently and nothing crashes the worker."""
    suffix = f".corpus-{uuid.uuid4().hex[:10]}"
    names = [CONTACTS + suffix, SURVEYS + suffix, DEADLETTER + suffix]
    for name in names:
        create_topic(kafka_bootstrap, name, partitions=1)
    config = tmp_path / "palaute.toml"
    config.write_text(
        f"""
[kafka]
bootstrap_servers = ["{kafka_bootstrap}"]

[secrets]
pseudonymisation_key = "{"p" * 40}"
link_signing_key = "{"l" * 40}"

[streams]
app_id = "palaute-corpus"
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = 1
""",
        encoding="utf-8",
    )
    log = tmp_path / "worker.log"
    worker = start_worker(config, log)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent: dict[bytes, str] = {}
        for name in sorted(MANIFEST):
            raw = (HERE / "contacts" / name).read_bytes()
            if name in REFUSED_BY_BROKER:
                with pytest.raises(MessageSizeTooLargeError):
                    await producer.send_and_wait(names[0], raw, key=name.encode())
                continue
            await producer.send_and_wait(names[0], raw, key=name.encode())
            sent[name.encode()] = name
        valid = contact_completed(datetime.now(UTC) - timedelta(minutes=1))
        await producer.send_and_wait(names[0], valid.model_dump_json().encode(), key=b"valid")

        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            assert worker.poll() is None, log.read_text(errors="replace")[-4000:]
            letters = await _read_all(kafka_bootstrap, names[2])
            decisions = await _read_all(kafka_bootstrap, names[1])
            if len(letters) >= len(sent) and decisions:
                break
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            await asyncio.sleep(0.5)

        assert len(letters) == len(sent)
        for letter in letters:
            name = sent[letter.key]
            assert letter.value == (HERE / "contacts" / name).read_bytes(), name
            reason = DeadLetter.from_headers(list(letter.headers))
            assert reason.reason_code == MANIFEST[name]["code"], name
        assert [json.loads(d.value)["contact_id"] for d in decisions] == [valid.data.contact.id]
        assert worker.poll() is None
    finally:
        await producer.stop()
        stop_process(worker)
        delete_topics(kafka_bootstrap, names)
