"""Operators acknowledge alerts over HTTP; /metrics parses as Prometheus text.

The web app runs on a real socket with a real producer and a real broker: an
alert published on the alerts topic becomes known to the web service, and
an acknowledgement ends up on the same topic as AlertAcknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from connectors import telemetry
from connectors.web import create_web_app
from connectors.web.alerts import ACKNOWLEDGEMENTS, KafkaAlertDirectory
from ops.kafka import create_topic, delete_topics
from schemas.alerts import (
    AlertAcknowledged,
    AlertKind,
    AlertState,
    Evidence,
    ScoreDropAlert,
    Severity,
)
from schemas.base import Scale
from schemas.config import Settings, load_settings
from schemas.metrics import TouchpointMetrics
from schemas.topics import ALERTS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

OPS_TOKEN = secrets.token_urlsafe(32)
ALERT = ScoreDropAlert(
    alert_id="drop-00aa11bb22cc33dd44ee",
    touchpoint_id="phone-service",
    kind=AlertKind.DROP,
    state=AlertState.FIRING,
    severity=Severity.WARNING,
    started_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
    before=4.3,
    after=3.4,
    sample_size=30,
    evidence=Evidence(method="cusum", statistic=11.0, threshold=9.0),
    summary="mean score dropped",
)

Service = tuple["TestClient[Any, Any]", str]


@pytest.fixture
def suffix(kafka_bootstrap: str) -> Iterator[str]:
    """Give a fresh topic suffix with its alerts topic, deleted afterwards."""
    found = f"-{secrets.token_hex(6)}"
    create_topic(kafka_bootstrap, ALERTS + found, partitions=2)
    yield found
    delete_topics(kafka_bootstrap, [ALERTS + found])


def _settings(tmp_path: Path, bootstrap: str, suffix: str) -> Settings:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "{"p" * 40}"
link_signing_key = "{"l" * 40}"

[streams]
topic_suffix = "{suffix}"

[web]
ops_token_sha256 = ["{hashlib.sha256(OPS_TOKEN.encode()).hexdigest()}"]
""",
        encoding="utf-8",
    )
    return load_settings(path)


@pytest.fixture
async def service(kafka_bootstrap: str, suffix: str, tmp_path: Path) -> AsyncIterator[Service]:
    """Serve the web app once the alert is on the topic and known to the app."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    await producer.send_and_wait(
        ALERTS + suffix, key=b"phone-service", value=ALERT.model_dump_json().encode()
    )
    app = create_web_app(_settings(tmp_path, kafka_bootstrap, suffix), producer=producer)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            directory = app[ACKNOWLEDGEMENTS].directory
            assert isinstance(directory, KafkaAlertDirectory)
            async with asyncio.timeout(120):
                await directory.wait_ready()
            yield client, ALERTS + suffix
    finally:
        await producer.stop()


def _auth(token: str = OPS_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _acknowledgements(bootstrap: str, topic: str) -> list[AlertAcknowledged]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(2)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[AlertAcknowledged] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend(
                    AlertAcknowledged.model_validate_json(r.value)
                    for r in batch
                    if b'"AlertAcknowledged"' in r.value
                )
        return found
    finally:
        await consumer.stop()


async def test_an_acknowledgement_is_published_keyed_by_the_alerts_touchpoint(
    service: Service, kafka_bootstrap: str
) -> None:
    """The acknowledgement is an event: the history of an alert shows who looked at it."""
    client, topic = service
    response = await client.post(
        f"/v1/alerts/{ALERT.alert_id}/ack",
        json={"by": "päivystäjä", "comment": "Looking into it; call +358 40 123 4567"},
        headers=_auth(),
    )
    assert response.status == 202, await response.text()
    [ack] = await _acknowledgements(kafka_bootstrap, topic)
    assert (ack.alert_id, ack.touchpoint_id, ack.acknowledged_by) == (
        ALERT.alert_id,
        "phone-service",
        "päivystäjä",
    )
    assert "123 4567" not in ack.comment, "a phone number reached the alerts topic"
    assert ack.comment.startswith("Looking into it")


async def test_the_readmes_example_works_and_a_bodyless_post_says_which_body_is_wanted(
    service: Service, kafka_bootstrap: str
) -> None:
    """A POST without a body used to answer invalid_body and nothing more."""
    client, topic = service
    path = f"/v1/alerts/{ALERT.alert_id}/ack"
    bare = await client.post(path, headers=_auth())
    assert bare.status == 400
    refusal = await bare.json()
    assert refusal["error"] == "invalid_body"
    assert '{"by": "your name"' in refusal["message"]
    readme = {"by": "päivystäjä", "comment": "Jonotilanne tarkistettu", "assigned_to": "Tiimi A"}
    response = await client.post(path, json=readme, headers=_auth())
    assert response.status == 202, await response.text()
    [ack] = await _acknowledgements(kafka_bootstrap, topic)
    assert (ack.acknowledged_by, ack.assigned_to) == ("päivystäjä", "Tiimi A")


Case = tuple[dict[str, str], str, dict[str, Any], int, str]


@pytest.mark.parametrize(
    "case",
    [
        ({}, ALERT.alert_id, {"by": "ops"}, 401, "unauthorized"),
        (_auth("not-a-token"), ALERT.alert_id, {"by": "ops"}, 401, "unauthorized"),
        (_auth(), "drop-ffffffffffffffffffff", {"by": "ops"}, 404, "unknown_alert"),
        (_auth(), ALERT.alert_id, {"comment": "no name"}, 422, "invalid_acknowledgement"),
        (_auth(), ALERT.alert_id, {"by": "ops@example.fi"}, 422, "invalid_acknowledgement"),
        (_auth(), ALERT.alert_id, {"by": "ops", "extra": 1}, 422, "invalid_acknowledgement"),
        (
            _auth(),
            ALERT.alert_id,
            {"by": "ops", "assigned_to": "a@b.fi"},
            422,
            "invalid_acknowledgement",
        ),
    ],
)
async def test_bad_acknowledgements_are_refused_with_a_reason(
    service: Service, kafka_bootstrap: str, case: Case
) -> None:
    """Only operators acknowledge, only known alerts, and only with a name that is no address."""
    client, topic = service
    headers, path, body, status, code = case
    response = await client.post(f"/v1/alerts/{path}/ack", json=body, headers=headers)
    assert response.status == status
    assert (await response.json())["error"] == code
    assert await _acknowledgements(kafka_bootstrap, topic) == []


async def test_the_metrics_endpoint_parses_as_prometheus_text(service: Service) -> None:
    """Prometheus must be able to scrape the figures and the firing alerts."""
    client, _ = service
    telemetry.observe_metrics(
        TouchpointMetrics(
            key="phone-service",
            window="24h",
            as_of=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
            scale=Scale.CSAT_5,
            count=12,
            mean=4.25,
            distribution={"4": 9, "5": 3},
            csat_share=1.0,
        )
    )
    telemetry.observe_alert(ALERT)
    response = await client.get("/metrics")
    assert response.status == 200
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    samples = [
        s for family in families.values() for s in family.samples if s.labels.get("touchpoint")
    ]
    assert any(
        s.labels == {"touchpoint": "phone-service", "window": "24h"} and s.value == 4.25
        for s in samples
    ), sorted({s.name for s in samples})
    firing = [s for s in samples if s.labels.get("kind") == "drop"]
    assert firing
    assert firing[0].value == 1
    assert orjson.dumps([s.labels for s in samples]).find(b"@") == -1
