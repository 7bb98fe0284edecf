"""Silence alerts on a real broker: a touchpoint's contacts stop, an alert fires, and resolves.

``palaute worker`` runs with a 12-second silence window. Two weeks of
backdated decisions give ``tp-silent`` a baseline at this time of day; live
decisions then flow at the same rate, stop, and flow again. A second
touchpoint, ``tp-new``, has the same live traffic but no history: with no
baseline, its silence is no evidence, and it must never alert.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engine.silence import reference_days
from schemas.alerts import AlertKind, AlertState, ScoreDropAlert
from schemas.config import PolicyConfig
from schemas.topics import ALERTS, CONTACTS, DEADLETTER, METRICS, RATINGS, SURVEYS, VAULT
from tests.fixtures import RunTopics, start_worker, stop_process

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

pytestmark = pytest.mark.integration

PARTITIONS = 2
SILENT = "tp-silent"
NEW = "tp-new"
PROBE = "tp-probe"
WINDOW_SECONDS = 12
#: One decision every two seconds: six expected per window, as the baseline says.
GAP_SECONDS = 2.0
WEEKS = 2
DEADLINE_SECONDS = 120.0


def _decision(touchpoint: str, at: datetime) -> tuple[bytes, bytes]:
    survey = f"{touchpoint}-{uuid.uuid4().hex[:16]}"
    event = {
        "type": "SurveySkipped",
        "survey_id": survey,
        "citizen_key": "b" * 64,
        "contact_id": f"c-{survey}",
        "touchpoint_id": touchpoint,
        "occurred_at": at.isoformat(),
        "reason": "not-sampled",
    }
    return b"b" * 64, json.dumps(event).encode()


def _probe_rating(at: datetime) -> tuple[bytes, bytes]:
    rating = {
        "type": "Rating",
        "rating_id": "probe-1.r1",
        "survey_id": "probe-1",
        "revision": 1,
        "touchpoint_id": PROBE,
        "service": "tax",
        "touchpoint_channel": "phone",
        "survey_channel": "sms",
        "language": "fi",
        "scale": "csat-5",
        "score": 4,
        "normalised": 0.75,
        "answered_after_seconds": 60.0,
        "answered_at": at.isoformat(),
    }
    return PROBE.encode(), json.dumps(rating).encode()


def history(now: datetime) -> list[tuple[bytes, bytes]]:
    """Whole hours of decisions at the live rate, on the reference days, around this time."""
    records: list[tuple[bytes, bytes]] = []
    per_hour = int(3_600 / GAP_SECONDS)
    days = reference_days(now.date(), WEEKS, PolicyConfig().holiday_calendar())
    for day in days:
        same_time = datetime.combine(day, now.time(), tzinfo=UTC)
        first = (same_time - timedelta(minutes=15)).replace(minute=0, second=0, microsecond=0)
        last = same_time + timedelta(minutes=5)
        hour = first
        while hour <= last:
            records += [
                _decision(SILENT, hour + timedelta(seconds=GAP_SECONDS * n))
                for n in range(per_hour)
            ]
            hour += timedelta(hours=1)
    return records


def _config(tmp_path: Path, bootstrap: str, suffix: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "integration-pseudonymisation-key-0123456789"
link_signing_key = "integration-link-signing-key-9876543210abc"

[streams]
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = {PARTITIONS}

[policy]
time_zone = "UTC"

[metrics]
emit_interval = "1s"

[alerts]
silence_window = "{WINDOW_SECONDS}s"
silence_weeks = {WEEKS}
silence_probability = 0.01
silence_min_expected = 5.0
silence_check_interval = "1s"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def run_topics() -> RunTopics:
    """Create the topics the silence run uses, with this test's partition count."""
    return RunTopics(
        bases=(CONTACTS, SURVEYS, VAULT, DEADLETTER, RATINGS, METRICS, ALERTS),
        internal=(),
        partitions=PARTITIONS,
    )


class Reader:
    """Read a topic from its start."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.topic = topic
        self.values: list[dict[str, Any]] = []

    async def start(self) -> None:
        """Assign every partition from the beginning."""
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def poll(self) -> None:
        """Take in whatever arrived."""
        batches = await self.consumer.getmany(timeout_ms=300)
        for batch in batches.values():
            self.values += [json.loads(record.value) for record in batch]

    async def stop(self) -> None:
        """Close the consumer."""
        await self.consumer.stop()

    def alerts(self) -> list[ScoreDropAlert]:
        """Give the detector's alerts read so far."""
        return [
            ScoreDropAlert.model_validate(value)
            for value in self.values
            if value.get("type") == "ScoreDropAlert"
        ]


class Traffic:
    """Live decisions for two touchpoints, one every two seconds each, while flowing."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def run(self) -> None:
        """Produce until cancelled."""
        while True:
            await self.flowing.wait()
            now = datetime.now(UTC)
            for touchpoint in (SILENT, NEW):
                key, value = _decision(touchpoint, now)
                await self.producer.send_and_wait(self.topic, key=key, value=value)
            await asyncio.sleep(GAP_SECONDS)


async def _until(
    condition: Any, reader: Reader, worker: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert worker.poll() is None, f"worker died; its log is {log}"
        assert time.monotonic() < deadline, [a.model_dump() for a in reader.alerts()]
        await reader.poll()


@pytest.mark.timeout(300)
@pytest.mark.slow
async def test_a_touchpoint_whose_contacts_stop_gets_a_silence_alert_that_resolves(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """A broken front-office integration sends nothing, and only silence detection sees it."""
    config = _config(tmp_path, kafka_bootstrap, run_suffix)
    log = tmp_path / "worker.log"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    alerts = Reader(kafka_bootstrap, ALERTS + run_suffix)
    metrics = Reader(kafka_bootstrap, METRICS + run_suffix)
    await alerts.start()
    await metrics.start()
    surveys = SURVEYS + run_suffix
    for key, value in history(datetime.now(UTC)):
        await producer.send(surveys, key=key, value=value)
    await producer.flush()
    traffic = Traffic(producer, surveys)
    flow = asyncio.create_task(traffic.run())
    worker = start_worker(config, log)
    try:
        # The worker is up once a rating's figures come out.
        key, value = _probe_rating(datetime.now(UTC))
        await producer.send_and_wait(RATINGS + run_suffix, key=key, value=value)
        await _until(
            lambda: any(v.get("key") == PROBE for v in metrics.values), metrics, worker, log
        )
        # Steady traffic for longer than the start-up grace and a window: nothing fires.
        steady_until = time.monotonic() + 2.5 * WINDOW_SECONDS
        while time.monotonic() < steady_until:
            await alerts.poll()
        assert alerts.alerts() == []

        traffic.flowing.clear()
        await _until(lambda: len(alerts.alerts()) >= 1, alerts, worker, log)
        traffic.flowing.set()
        await _until(lambda: len(alerts.alerts()) >= 2, alerts, worker, log)
        for _ in range(5):
            await alerts.poll()  # time for a wrong extra alert to show
    finally:
        flow.cancel()
        returncode = stop_process(worker)
        await producer.stop()
        await alerts.stop()
        await metrics.stop()
    assert returncode == 0, log.read_text(errors="replace")[-4000:]

    found = alerts.alerts()
    assert [(a.touchpoint_id, a.kind, a.state) for a in found] == [
        (SILENT, AlertKind.SILENCE, AlertState.FIRING),
        (SILENT, AlertKind.SILENCE, AlertState.RESOLVED),
    ]
    firing, resolved = found
    assert resolved.alert_id == firing.alert_id
    assert firing.evidence.probability is not None
    assert firing.evidence.probability < 0.01  # the configured threshold
    assert firing.before is not None
    assert 4.0 <= firing.before <= 8.0  # six expected in a 12 s window
    assert firing.after is not None
    assert firing.after < firing.before / 2
    assert "contacts" in firing.summary
