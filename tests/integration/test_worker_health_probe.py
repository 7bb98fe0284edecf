"""``/healthz`` of a real worker turns bad when a stage is stuck or fails on every record.

The worker is ``palaute worker`` with one fault put into its intake by a small
runner script: either the acknowledgement its decisions wait for never comes
(records wait, nothing progresses), or the policy raises on every contact
(each is set aside as a dead letter, so the agent keeps making progress and
has no lag). Both were answered ``{"status": "ok"}`` before.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from schemas.topics import CONTACTS
from tests.fixtures import RunTopics, start_process

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

#: Short, so that the test does not wait five minutes; the judgement is the same.
STALLED_AFTER_SECONDS = 10
#: Start-up and the judgement on a busy shared machine.
DEADLINE_SECONDS = 180.0

#: Runs the real worker with one fault in its intake (``stuck`` or ``failing``).
FAULTY_WORKER = """
import asyncio, sys
import streams.runtime.kafka_plain.runner as runner
import streams.stages.intake
from palaute.cli import main

if sys.argv[2] == "failing":
    def decide(*args, **kwargs):
        raise RuntimeError("injected: the policy fails on every contact")

    streams.stages.intake.decide = decide
else:
    real = runner._PlainIO.acknowledged

    async def acknowledged(self, sent):
        # The deciding stage (the one with the citizens' history) never hears back.
        if self._store is not None:
            await asyncio.Event().wait()
        return await real(self, sent)

    runner._PlainIO.acknowledged = acknowledged
sys.exit(main(["worker", "--config", sys.argv[1]]))
"""


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
pseudonymisation_key = "health-probe-pseudonymisation-key-0123456789"
link_signing_key = "health-probe-link-signing-key-9876543210abcdef"

[streams]
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = 2
web_port = {port}
stalled_after = "{STALLED_AFTER_SECONDS}s"
""",
        encoding="utf-8",
    )
    return path


def _contact() -> bytes:
    ended = datetime.now(UTC) - timedelta(minutes=5)
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"evt-{uuid.uuid4().hex}",
            "source": "/crm/health-probe-test",
            "type": "fi.palaute.contact.completed.v1",
            "time": ended.isoformat(),
            "data": {
                "contact": {"id": f"contact-{uuid.uuid4().hex}", "ended_at": ended.isoformat()},
                "citizen": {"email": "asiakas@example.fi", "consent": {"email": False}},
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
    return RunTopics(prefix="-health-", create=False)


class FaultyWorker:
    """A ``palaute worker`` process with a fault in its intake."""

    def __init__(self, tmp_path: Path, config: Path, fault: str) -> None:
        self.log = tmp_path / "worker.log"
        script = tmp_path / "faulty_worker.py"
        script.write_text(FAULTY_WORKER, encoding="utf-8")
        self.process = start_process([sys.executable, str(script), str(config), fault], self.log)

    def tail(self) -> str:
        """Give the end of the worker's log, for a failure message."""
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """Kill it: a stuck stage would only hold a clean stop up."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


async def _health(session: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]] | None:
    try:
        async with session.get(base + "/healthz", timeout=aiohttp.ClientTimeout(total=10)) as got:
            return got.status, await got.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError):
        return None  # not listening yet


async def _until_health(
    worker: FaultyWorker, session: aiohttp.ClientSession, base: str, wanted: object
) -> dict[str, Any]:
    """Poll /healthz until ``wanted(status, body)`` holds; return the body."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    seen: tuple[int, dict[str, Any]] | None = None
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, f"the worker exited:\n{worker.tail()}"
        seen = await _health(session, base)
        assert callable(wanted)
        if seen is not None and wanted(*seen):
            return seen[1]
        await asyncio.sleep(0.5)
    pytest.fail(f"/healthz never answered as wanted; last {seen}:\n{worker.tail()}")


async def _send_contacts(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for number in range(count):
            await producer.send_and_wait(topic, key=f"citizen-{number}".encode(), value=_contact())
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("fault", "status", "key", "stage"),
    [
        ("stuck", "stalled", "stalled_agents", "intake-decide"),
        ("failing", "failing", "failing_stages", "intake"),
    ],
)
async def test_healthz_turns_bad_with_a_reason_when_a_stage_does_no_work(
    kafka_bootstrap: str,
    run_suffix: str,
    tmp_path: Path,
    *,
    fault: str,
    status: str,
    key: str,
    stage: str,
) -> None:
    """An orchestrator restarts only what /healthz calls bad: a worker that decides nothing is."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    worker = FaultyWorker(tmp_path, _config(tmp_path, kafka_bootstrap, run_suffix, port), fault)
    try:
        async with aiohttp.ClientSession() as session:
            await _until_health(worker, session, base, lambda code, _: code == 200)
            await _send_contacts(kafka_bootstrap, CONTACTS + run_suffix, 8)
            body = await _until_health(worker, session, base, lambda code, _: code != 200)
    finally:
        worker.kill()
    assert body["status"] == status, body
    assert stage in body[key], body
    assert stage in body["reason"], body
