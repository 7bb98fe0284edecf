"""A first deployment works from its first minute: ``palaute worker`` on a new app id.

Nothing is created beforehand: not the public topics, not the internal ones,
not the changelogs. The settings are the defaults (8 partitions), apart from
where the broker is and a topic suffix of the run's own, which also gives the
worker a new app id. Before the worker created its topics itself, its
consumer subscribed to topics that did not exist yet, logged "Ignoring
missing topic" and decided nothing until its metadata refresh five minutes
later; and the contacts topic, auto-created by the first record written to
it, had one partition.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from palaute.commands.worker import EXIT_TOPICS_MISSING
from schemas.config import StreamsConfig, load_settings
from schemas.topics import CATALOGUE, CONTACTS, SURVEYS, TOPICS, VAULT
from streams.app import create_app
from streams.topics_setup import worker_topics
from tests.fixtures import RunTopics, start_worker, stop_process

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

#: The acceptance criterion: the first contact is decided within a minute of the start.
FIRST_DECISION_SECONDS = 60.0
DEFAULT_PARTITIONS = StreamsConfig().partitions


def _config(tmp_path: Path, bootstrap: str, suffix: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "first-start-pseudonymisation-key-0123456789"
link_signing_key = "first-start-link-signing-key-9876543210abcdef"

[streams]
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
""",
        encoding="utf-8",
    )
    return path


def _contact(contact_id: str) -> bytes:
    ended = datetime.now(UTC) - timedelta(minutes=5)
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"evt-{uuid.uuid4().hex}",
            "source": "/crm/first-start-test",
            "type": "fi.palaute.contact.completed.v1",
            "time": ended.isoformat(),
            "data": {
                "contact": {"id": contact_id, "ended_at": ended.isoformat()},
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


async def _run_topics(bootstrap: str, suffix: str) -> dict[str, int]:
    """Map every topic of the run (public, internal, changelog) to its partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(None)
    finally:
        await admin.close()
    return {
        entry["topic"]: len(entry["partitions"])
        for entry in described
        if suffix in entry["topic"] and entry["error_code"] == 0
    }


async def _topic_configs(bootstrap: str, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    resources = responses[0].to_object()["resources"]
    return {
        entry["config_names"]: entry["config_value"] for entry in resources[0]["config_entries"]
    }


@pytest.fixture
def run_topics() -> RunTopics:
    """Create nothing: the test checks what a first start creates for a suffix no one used."""
    return RunTopics(prefix="-first-", create=False)


class Worker:
    """A ``palaute worker`` process."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.process = start_worker(config, log)

    def tail(self) -> str:
        """Give the end of the worker's log, for a failure message."""
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop it as an orchestrator would: SIGTERM, then kill."""
        stop_process(self.process, timeout=60)


async def _decision_for(
    bootstrap: str, topic: str, contact_id: str, worker: Worker, deadline: float
) -> dict[str, Any]:
    """Read the surveys topic until the decision on ``contact_id`` arrives, or the deadline."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        while time.monotonic() < deadline:
            assert worker.process.poll() is None, f"the worker exited:\n{worker.tail()}"
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value or b"{}")
                    if event.get("contact_id") == contact_id:
                        return dict(event)
    finally:
        await consumer.stop()
    pytest.fail(f"no decision within {FIRST_DECISION_SECONDS:.0f} s:\n{worker.tail()}")


async def test_a_worker_on_a_new_app_id_decides_its_first_contact_within_a_minute(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """A first deployment that decides nothing for five minutes looks broken to everyone."""
    config = _config(tmp_path, kafka_bootstrap, run_suffix)
    settings = load_settings(config)
    assert settings.streams.partitions == DEFAULT_PARTITIONS == 8
    contacts, surveys = CONTACTS + run_suffix, SURVEYS + run_suffix
    assert await _run_topics(kafka_bootstrap, run_suffix) == {}, "the suffix is not new"

    started = time.monotonic()
    deadline = started + FIRST_DECISION_SECONDS
    worker = Worker(config, tmp_path / "worker.log")
    try:
        # A front office sends as soon as the contacts topic is there, as the
        # README's path does; the worker makes it before its consumer joins.
        while contacts not in await _run_topics(kafka_bootstrap, run_suffix):
            assert worker.process.poll() is None, f"the worker exited:\n{worker.tail()}"
            assert time.monotonic() < deadline, f"no contacts topic:\n{worker.tail()}"
            await asyncio.sleep(0.2)
        contact_id = f"contact-{uuid.uuid4().hex}"
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(contacts, key=b"citizen-1", value=_contact(contact_id))
        finally:
            await producer.stop()

        decision = await _decision_for(kafka_bootstrap, surveys, contact_id, worker, deadline)
        elapsed = time.monotonic() - started
        assert decision["type"] in {"SurveyScheduled", "SurveySkipped"}, decision
        assert elapsed < FIRST_DECISION_SECONDS
        print(f"first decision {elapsed:.1f} s after the worker was started")  # noqa: T201

        found = await _run_topics(kafka_bootstrap, run_suffix)
        plans = {plan.name: plan for plan in worker_topics(create_app(settings), settings)}
        public = {spec.name + run_suffix for spec in TOPICS}
        own = {name for name, plan in plans.items() if plan.role in {"internal", "changelog"}}
        assert own, "the app declares internal topics and changelogs"
        app_id = settings.streams.app_id + run_suffix
        assert all(name.startswith(app_id) for name in set(plans) - public)
        assert set(found) == set(plans), sorted(set(found) ^ set(plans))
        documented = dict.fromkeys(public | own, DEFAULT_PARTITIONS)
        # The catalogue's versions are in the order of one partition.
        documented[CATALOGUE + run_suffix] = 1
        assert {name: found[name] for name in documented} == documented
        assert found[app_id + "-__assignor-__leader"] == 1

        vault = await _topic_configs(kafka_bootstrap, VAULT + run_suffix)
        assert vault["cleanup.policy"] == "compact"
        assert vault["segment.ms"] == "3600000"
        retained = await _topic_configs(kafka_bootstrap, surveys)
        assert retained["retention.ms"] == str(35 * 86_400_000)
    finally:
        worker.stop()


def test_a_worker_that_may_not_create_its_topics_names_them_and_exits(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """A worker that starts anyway would idle on missing topics; the operator must know why."""
    config = _config(tmp_path, kafka_bootstrap, run_suffix)
    # One broker cannot hold three replicas: it refuses every topic, as it would without ACLs.
    with config.open("a", encoding="utf-8") as extra:
        extra.write("replication_factor = 3\n")
    done = subprocess.run(
        [sys.executable, "-m", "palaute", "worker", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_TOPICS_MISSING, done.stderr
    contacts = CONTACTS + run_suffix
    assert f"{contacts} (public): InvalidReplicationFactorError" in done.stderr
    assert (
        f"--topic {contacts} --partitions {DEFAULT_PARTITIONS} --replication-factor 3"
        in done.stderr
    )
    assert asyncio.run(_run_topics(kafka_bootstrap, run_suffix)) == {}, "nothing half made"
