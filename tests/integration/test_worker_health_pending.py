"""A worker holding surveys that are not due yet stays healthy: waiting is not stalling.

``/healthz`` calls a partition stuck when records wait on it and its
committed offset does not move for ``stalled_after``. A survey due in an
hour must not look like that: the scheduler takes its record, keeps the
survey in its table and commits, so nothing waits on the partition.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.topics import CONTACTS, SURVEYS
from tests.fixtures import RunTopics, start_worker

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

STALLED_AFTER_SECONDS = 8
#: Watched after the surveys are scheduled: several times the stall limit.
WATCH_SECONDS = 40
#: Start-up and scheduling on a busy shared machine.
DEADLINE_SECONDS = 180.0
CONTACTS_SENT = 6


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(tmp_path: Path, bootstrap: str, suffix: str, port: int) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "health-pending-pseudonymisation-key-0123456789"
link_signing_key = "health-pending-link-signing-key-9876543210abcdef"

[streams]
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = 2
web_port = {port}
stalled_after = "{STALLED_AFTER_SECONDS}s"

[touchpoints.phone-service]
send_delay = "1h"
""",
        encoding="utf-8",
    )
    return path


def _contact(number: int) -> bytes:
    ended = datetime.now(UTC) - timedelta(minutes=5)
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"evt-{uuid.uuid4().hex}",
            "source": "/crm/health-pending-test",
            "type": "fi.palaute.contact.completed.v1",
            "time": ended.isoformat(),
            "data": {
                "contact": {"id": f"contact-{number}", "ended_at": ended.isoformat()},
                "citizen": {"phone": f"+35840{number:07d}", "consent": {"sms": True}},
                "touchpoint": {
                    "id": "phone-service",
                    "name": "Puhelinpalvelu",
                    "channel": "phone",
                    "service": "tax",
                },
            },
        }
    ).encode()


@pytest.fixture
def run_topics() -> RunTopics:
    """Create nothing beforehand: the worker creates its topics."""
    return RunTopics(prefix="-pending-", create=False)


async def _health(session: aiohttp.ClientSession, base: str) -> tuple[int, str] | None:
    try:
        async with session.get(base + "/healthz", timeout=aiohttp.ClientTimeout(total=10)) as got:
            return got.status, await got.text()
    except (aiohttp.ClientError, TimeoutError):
        return None


async def _scheduled(bootstrap: str, topic: str, expect: int, deadline: float) -> int:
    """Count SurveyScheduled records on ``topic`` until ``expect`` arrived or the deadline."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found = 0
    try:
        while found < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += sum(b'"SurveyScheduled"' in (record.value or b"") for record in records)
    finally:
        await consumer.stop()
    return found


@pytest.mark.slow
async def test_a_worker_holding_surveys_not_yet_due_stays_healthy(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """A probe that restarted every worker with pending surveys would restart them all day."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = _config(tmp_path, kafka_bootstrap, run_suffix, port)
    log = tmp_path / "worker.log"
    worker = start_worker(config, log)
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        async with aiohttp.ClientSession() as session:
            while (await _health(session, base) or (0, ""))[0] != 200:
                assert worker.poll() is None, log.read_text(errors="replace")[-4000:]
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
                await asyncio.sleep(0.5)
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                for number in range(CONTACTS_SENT):
                    await producer.send_and_wait(
                        CONTACTS + run_suffix, key=f"c-{number}".encode(), value=_contact(number)
                    )
            finally:
                await producer.stop()
            scheduled = await _scheduled(
                kafka_bootstrap, SURVEYS + run_suffix, CONTACTS_SENT, deadline
            )
            assert scheduled == CONTACTS_SENT, log.read_text(errors="replace")[-4000:]
            answers = []
            watch_until = time.monotonic() + WATCH_SECONDS
            while time.monotonic() < watch_until:
                assert worker.poll() is None, log.read_text(errors="replace")[-4000:]
                answers.append(await _health(session, base))
                await asyncio.sleep(1.0)
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
    assert len(answers) >= WATCH_SECONDS // 2
    assert [answer for answer in answers if answer is None or answer[0] != 200] == []
