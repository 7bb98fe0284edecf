"""The worker's /metrics and /healthz, served by a real ``palaute worker`` against a real broker.

The worker is given a short ``stalled_after`` and left without records for
several times that long after handling one contact: /healthz must stay 200
all along, which only holds if the agents note progress while idle.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from schemas.config import load_settings
from schemas.topics import ALERTS, CONTACTS, DEADLETTER, METRICS, RATINGS, RESPONSES, SURVEYS, VAULT
from streams.app import create_app
from streams.runtime import kafka_plain
from streams.web import agent_inputs
from tests.fixtures import RunTopics, start_worker, stop_process

if TYPE_CHECKING:
    from pathlib import Path

    from faust.types import AppT

pytestmark = pytest.mark.integration

PARTITIONS = 2
STALLED_AFTER_SECONDS = 15
#: How long the worker is left without records: several times the stall limit.
QUIET_SECONDS = 40  # well past the stall limit: only idle progress keeps it healthy
#: Start-up (group join, table recovery) on a busy shared machine.
START_DEADLINE_SECONDS = 120.0
PROGRESS_FAMILY = "palaute_agent_last_progress_timestamp_seconds"
LAG_FAMILY = "palaute_consumer_lag_records"
#: Input topics of the worker's agents that the test creates (faust creates the internal ones).
CREATED_INPUTS = (CONTACTS, SURVEYS, VAULT, RESPONSES, RATINGS, ALERTS)


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
pseudonymisation_key = "worker-web-pseudonymisation-key-0123456789"
link_signing_key = "worker-web-link-signing-key-9876543210abcdef"

[streams]
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = {PARTITIONS}
web_host = "127.0.0.1"
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
            "source": "/crm/worker-web-test",
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
    """Create the topics the worker consumes and writes, with this test's partition count."""
    return RunTopics(
        bases=(CONTACTS, SURVEYS, VAULT, RESPONSES, RATINGS, METRICS, ALERTS, DEADLETTER),
        internal=(),
        partitions=PARTITIONS,
    )


class Worker:
    """A ``palaute worker`` process and its web address."""

    def __init__(self, config: Path, log: Path, port: int) -> None:
        self.log = log
        self.base = f"http://127.0.0.1:{port}"
        self.process = start_worker(config, log)

    def tail(self) -> str:
        """Give the end of the worker's log, for a failure message."""
        return self.log.read_text(errors="replace")[-4000:]

    def assert_alive(self) -> None:
        """Fail with the log when the worker has exited."""
        assert self.process.poll() is None, f"worker died:\n{self.tail()}"

    def stop(self) -> None:
        """Stop it as an orchestrator would: SIGTERM, then kill."""
        stop_process(self.process, timeout=60)


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def _progress(metrics_text: str) -> dict[str, float]:
    """Each agent's last progress (Unix time), from the worker's /metrics."""
    return {
        sample.labels["agent"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == PROGRESS_FAMILY
        for sample in family.samples
    }


def _lag(metrics_text: str) -> dict[tuple[str, str], float]:
    """Read the consumer lag by topic and partition from the worker's /metrics."""
    return {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == LAG_FAMILY
        for sample in family.samples
    }


def _assert_nothing_waits(metrics_text: str, suffix: str, inputs: frozenset[str]) -> None:
    """Check the lag alert's figure: every owned input partition, and nothing waits on one."""
    lag = _lag(metrics_text)
    partitions = [str(partition) for partition in range(PARTITIONS)]
    expected = {(base + suffix, partition) for base in CREATED_INPUTS for partition in partitions}
    assert expected <= set(lag), sorted(lag)
    assert {topic for topic, _ in lag} <= inputs, sorted(lag)
    # Not the internal topics: the scheduler's carries a tick per partition every
    # second, so a few records are always past the last commit there.
    assert {key: lag[key] for key in expected if lag[key] != 0} == {}


def _processed(metrics_text: str, stage: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "palaute_events_processed"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("stage") == stage
    )


async def _wait_until(worker: Worker, what: str, check: object) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while True:
        worker.assert_alive()
        assert callable(check)
        if await check():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{worker.tail()}"
        await asyncio.sleep(0.5)


def _stages_and_inputs(app: AppT) -> tuple[set[str], frozenset[str]]:
    """Name faust's agents and the stages on plain aiokafka, and every topic they read."""
    every_input = {**agent_inputs(app), **kafka_plain.stage_inputs(app)}
    return set(every_input), frozenset().union(*every_input.values())


@pytest.mark.slow
async def test_worker_serves_metrics_and_stays_healthy_while_idle(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """Prometheus must scrape every worker, and a quiet worker must not be restarted as stalled."""
    port = _free_port()
    config = _config(tmp_path, kafka_bootstrap, run_suffix, port)
    app = create_app(load_settings(config))
    # faust's agents and the stages on plain aiokafka (the intake's) all report progress.
    agents, inputs = _stages_and_inputs(app)
    assert {"intake", "intake-decide", "alerting", "surveys-reader"} <= agents
    worker = Worker(config, tmp_path / "worker.log", port)
    try:
        async with aiohttp.ClientSession() as session:

            async def every_agent_reports() -> bool:
                try:
                    status, _, text = await _get(session, worker.base + "/metrics")
                except aiohttp.ClientError:
                    return False
                return status == 200 and set(_progress(text)) >= agents

            # Idle progress: with no record yet, every agent appears on /metrics.
            await _wait_until(worker, "every agent on /metrics", every_agent_reports)

            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(CONTACTS + run_suffix, key=b"c-1", value=_contact())
            finally:
                await producer.stop()

            async def contact_done() -> bool:
                _, _, text = await _get(session, worker.base + "/metrics")
                return _processed(text, "intake") >= 1

            await _wait_until(worker, "the contact to be decided", contact_done)

            quiet_from = time.time()
            answers = []
            while time.time() - quiet_from < QUIET_SECONDS:
                worker.assert_alive()
                status, content_type, body = await _get(session, worker.base + "/healthz")
                answers.append((status, body))
                await asyncio.sleep(1.0)
            assert answers
            assert [a for a in answers if a[0] != 200] == [], worker.tail()
            # The topic was empty: the file's catalogue is its first version.
            assert json.loads(answers[-1][1]) == {"status": "ok", "catalogue_version": 1}
            assert content_type.startswith("application/json")

            status, content_type, text = await _get(session, worker.base + "/metrics")
            assert status == 200
            assert content_type.startswith("text/plain")
            progress = _progress(text)
            assert set(progress) >= agents
            # Progress was noted while idle, well after the last record was done.
            quiet_long = quiet_from + QUIET_SECONDS - STALLED_AFTER_SECONDS
            late = {agent: at for agent, at in progress.items() if at < quiet_long}
            assert late == {}, f"agents without idle progress: {late}"
            _assert_nothing_waits(text, run_suffix, inputs)

            # faust's own pages would show table contents to the network: they are off.
            table_status, _, _ = await _get(session, worker.base + "/table/")
            assert table_status == 404
    finally:
        worker.stop()
