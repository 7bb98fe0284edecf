"""The HTTP event ingress against a real broker: what is accepted is on the topic at 202.

The app runs on a real TCP socket on 127.0.0.1 (aiohttp's TestServer) with a
real idempotent aiokafka producer; every test reads its own fresh contacts
topic back to see exactly what was produced.
"""

from __future__ import annotations

import io
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from connectors.web import create_web_app
from connectors.web.ingress import hash_key
from schemas.config import Settings, load_settings
from schemas.samples import contact_completed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from ops.kafka import TopicFactory

pytestmark = pytest.mark.integration

CRM_KEY = secrets.token_urlsafe(32)
BOOKING_KEY = secrets.token_urlsafe(32)
REVOKED_KEY = secrets.token_urlsafe(32)
CRM_SOURCE = "/crm/helsinki-contact-centre"
BATCH = "application/cloudevents-batch+json"
SINGLE = "application/cloudevents+json"
#: A valid henkilötunnus of the kind published as an example (not a real person's).
IDENTITY_CODE = "131052-308T"


def _settings(tmp_path: Path, bootstrap: str, *, rate: float = 100.0, burst: int = 100) -> Settings:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "{"p" * 40}"
link_signing_key = "{"l" * 40}"

[ingress]
max_body_bytes = 1048576
max_batch_events = 50
requests_per_second = {rate}
burst = {burst}

[ingress.sources.crm-helsinki]
key_sha256 = "{hash_key(CRM_KEY)}"
event_sources = ["{CRM_SOURCE}"]

[ingress.sources.booking]
key_sha256 = "{hash_key(BOOKING_KEY)}"
event_sources = ["/booking/espoo"]

[ingress.sources.old-crm]
key_sha256 = "{hash_key(REVOKED_KEY)}"
event_sources = ["{CRM_SOURCE}"]
revoked = true
""",
        encoding="utf-8",
    )
    return load_settings(path)


def _event(number: int, *, source: str = CRM_SOURCE) -> dict[str, Any]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    event: dict[str, Any] = contact_completed(now).model_dump(mode="json", exclude_none=True)
    event["id"] = f"evt-{number}-{secrets.token_hex(4)}"
    event["source"] = source
    event["data"]["contact"]["id"] = f"c-{number}-{secrets.token_hex(4)}"
    return event


def _auth(key: str = CRM_KEY, content_type: str = BATCH) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": content_type}


async def _records(bootstrap: str, topic: str) -> list[Any]:
    """Read every record on the topic up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, 0)]  # unique_topic makes one partition
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(timeout_ms=1000)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    yield producer
    await producer.stop()


class _Names:
    def __init__(self, contacts: str) -> None:
        self.contacts = contacts


@pytest.fixture
async def service(
    tmp_path: Path,
    kafka_bootstrap: str,
    unique_topic: TopicFactory,
    producer: AIOKafkaProducer,
) -> AsyncIterator[tuple[TestClient[Any, Any], str]]:
    topic = unique_topic("contacts")
    app = create_web_app(
        _settings(tmp_path, kafka_bootstrap), producer=producer, topic_names=_Names(topic)
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, topic


Service = tuple["TestClient[Any, Any]", str]


async def test_a_valid_batch_is_on_the_topic_when_the_answer_arrives(
    service: Service, kafka_bootstrap: str
) -> None:
    """A 202 is a promise: the caller may forget the events once it has one."""
    client, topic = service
    events = [_event(n) for n in range(5)]
    response = await client.post("/v1/contacts", data=orjson.dumps(events), headers=_auth())
    assert response.status == 202
    ids = [event["id"] for event in events]
    assert (await response.json())["accepted"] == ids
    records = await _records(kafka_bootstrap, topic)
    assert [orjson.loads(record.value)["id"] for record in records] == ids
    assert [record.key.decode() for record in records] == ["cust-884211"] * 5


async def test_one_invalid_event_refuses_the_whole_batch_naming_it(
    service: Service, kafka_bootstrap: str
) -> None:
    """A half-written batch would leave the caller unsure what to resend."""
    client, topic = service
    events = [_event(n) for n in range(5)]
    events[3]["time"] = "2026-01-01T10:00:00"  # no offset: ambiguous
    response = await client.post("/v1/contacts", data=orjson.dumps(events), headers=_auth())
    assert response.status == 422
    body = await response.json()
    assert body["error"] == "invalid_events"
    assert [error["path"] for error in body["errors"]] == ["[3].time"]
    assert await _records(kafka_bootstrap, topic) == []


async def test_a_single_event_object_is_accepted(service: Service, kafka_bootstrap: str) -> None:
    """Most CloudEvents SDKs send one structured event per request."""
    client, topic = service
    event = _event(1)
    response = await client.post(
        "/v1/contacts", data=orjson.dumps(event), headers=_auth(content_type=SINGLE)
    )
    assert response.status == 202
    assert (await response.json())["accepted"] == [event["id"]]
    assert len(await _records(kafka_bootstrap, topic)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-configured-key"},
        {"X-Api-Key": "not-a-configured-key"},
        {},
        {"Authorization": f"Basic {CRM_KEY}"},
        {"Authorization": f"Bearer {REVOKED_KEY}"},
        {"X-Api-Key": REVOKED_KEY},
    ],
    ids=["wrong-bearer", "wrong-x-api-key", "none", "wrong-scheme", "revoked", "revoked-x-api"],
)
async def test_a_missing_wrong_or_revoked_key_gets_401(
    service: Service, kafka_bootstrap: str, headers: dict[str, str]
) -> None:
    """Only configured, unrevoked systems may write contacts that lead to messages."""
    client, topic = service
    response = await client.post(
        "/v1/contacts",
        data=orjson.dumps([_event(1)]),
        headers={"Content-Type": BATCH, **headers},
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"] == "unauthorized"
    assert await _records(kafka_bootstrap, topic) == []


async def test_the_x_api_key_header_authenticates_too(service: Service) -> None:
    """Some front-office platforms can set a custom header but not Authorization."""
    client, _ = service
    response = await client.post(
        "/v1/contacts",
        data=orjson.dumps([_event(1)]),
        headers={"X-Api-Key": CRM_KEY, "Content-Type": BATCH},
    )
    assert response.status == 202


async def test_a_system_cannot_send_events_of_another_source(
    service: Service, kafka_bootstrap: str
) -> None:
    """A leaked booking key must not let anyone speak for the CRM."""
    client, topic = service
    events = [_event(1, source="/booking/espoo"), _event(2)]
    response = await client.post(
        "/v1/contacts", data=orjson.dumps(events), headers=_auth(BOOKING_KEY)
    )
    assert response.status == 403
    assert [error["path"] for error in (await response.json())["errors"]] == ["[1].source"]
    assert await _records(kafka_bootstrap, topic) == []


async def test_an_oversized_body_gets_413(service: Service, kafka_bootstrap: str) -> None:
    """A flood must be refused before it is read into memory."""
    client, topic = service
    body = io.BytesIO(b"[" + b" " * (2 * 1024 * 1024) + b"]")
    response = await client.post("/v1/contacts", data=body, headers=_auth())
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"
    assert await _records(kafka_bootstrap, topic) == []


async def test_an_oversized_chunked_body_gets_413(service: Service) -> None:
    """Without a Content-Length the limit must hold while reading."""
    client, _ = service

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * (64 * 1024)

    response = await client.post("/v1/contacts", data=chunks(), headers=_auth())
    assert response.status == 413


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"[\xff\xfe]", "invalid_utf8"), (b"[{not json", "invalid_json"), (b"", "invalid_json")],
    ids=["invalid-utf8", "not-json", "empty"],
)
async def test_a_body_that_is_not_json_gets_400(service: Service, body: bytes, code: str) -> None:
    """A caller needs to know the body itself is broken, not an event in it."""
    client, _ = service
    response = await client.post("/v1/contacts", data=body, headers=_auth())
    assert response.status == 400
    assert [error["code"] for error in (await response.json())["errors"]] == [code]


async def test_an_identity_code_is_refused_by_field_without_echoing_it(
    service: Service, kafka_bootstrap: str
) -> None:
    """Identity codes are never accepted, and must not travel back in a response either."""
    client, topic = service
    event = _event(1)
    event["data"]["contact"]["context"]["case_type"] = f"asumistuki {IDENTITY_CODE}"
    response = await client.post("/v1/contacts", data=orjson.dumps([event]), headers=_auth())
    assert response.status == 422
    text = await response.text()
    assert IDENTITY_CODE not in text
    errors = (await response.json())["errors"]
    assert {"path": "[0].data.contact.context.case_type", "code": "personal_identity_code"} in [
        {"path": error["path"], "code": error["code"]} for error in errors
    ]
    assert await _records(kafka_bootstrap, topic) == []


async def test_a_repeated_event_id_is_accepted_again_and_produced_once(
    service: Service, kafka_bootstrap: str
) -> None:
    """Callers retry after timeouts; a retry must not become a second survey."""
    client, topic = service
    event = _event(1)
    first = await client.post("/v1/contacts", data=orjson.dumps([event]), headers=_auth())
    again = await client.post("/v1/contacts", data=orjson.dumps([event, event]), headers=_auth())
    assert (first.status, again.status) == (202, 202)
    assert (await again.json())["duplicates"] == [event["id"], event["id"]]
    records = await _records(kafka_bootstrap, topic)
    assert [orjson.loads(record.value)["id"] for record in records] == [event["id"]]


async def test_metrics_parse_as_prometheus_text_and_health_is_ok(service: Service) -> None:
    """Prometheus scrapes /metrics and the orchestrator probes /healthz."""
    client, _ = service
    await client.post("/v1/contacts", data=orjson.dumps([_event(1)]), headers=_auth())
    metrics = await client.get("/metrics")
    assert metrics.status == 200
    names = {family.name for family in text_string_to_metric_families(await metrics.text())}
    assert "palaute_events_processed" in names
    health = await client.get("/healthz")
    assert health.status == 200
    # No catalogue topic in this run: the file's catalogue, version 0.
    assert await health.json() == {"status": "ok", "catalogue_version": 0}
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    assert health.headers["Referrer-Policy"] == "no-referrer"


async def test_the_rate_limit_answers_429_with_retry_after(
    tmp_path: Path,
    kafka_bootstrap: str,
    unique_topic: TopicFactory,
    producer: AIOKafkaProducer,
) -> None:
    """One misbehaving system must not crowd out the others."""
    settings = _settings(tmp_path, kafka_bootstrap, rate=0.01, burst=2)
    app = create_web_app(settings, producer=producer, topic_names=_Names(unique_topic("c")))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        statuses = [
            (await client.post("/v1/contacts", data=b"[]", headers=_auth())).status
            for _ in range(3)
        ]
        limited = await client.post("/v1/contacts", data=b"[]", headers=_auth())
        other = await client.post("/v1/contacts", data=b"[]", headers=_auth(BOOKING_KEY))
    assert statuses == [400, 400, 429]
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status == 400  # another system's bucket is its own


async def test_kafka_unavailable_gets_503_with_retry_after(
    tmp_path: Path, kafka_bootstrap: str, unique_topic: TopicFactory
) -> None:
    """A caller told 503 retries; a 500 would look like its own fault."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    await producer.stop()  # a producer that can no longer reach anything
    settings = _settings(tmp_path, kafka_bootstrap)
    app = create_web_app(settings, producer=producer, topic_names=_Names(unique_topic("c")))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post(
            "/v1/contacts", data=orjson.dumps([_event(1)]), headers=_auth()
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"] == "kafka_unavailable"


def _odd_requests() -> list[tuple[str, str, bytes, dict[str, str]]]:
    valid = _event(1)
    naive = {**_event(2), "time": "2026-01-01T10:00:00"}
    return [
        ("POST", "/v1/contacts", b"null", _auth()),
        ("POST", "/v1/contacts", b"42", _auth(content_type=SINGLE)),
        ("POST", "/v1/contacts", b'"text"', _auth(content_type=SINGLE)),
        ("POST", "/v1/contacts", b"[[[[]]]]", _auth()),
        ("POST", "/v1/contacts", b"[null, 1, true]", _auth()),
        ("POST", "/v1/contacts", orjson.dumps(valid), _auth(content_type=BATCH)),
        ("POST", "/v1/contacts", orjson.dumps([valid] * 51), _auth()),
        ("POST", "/v1/contacts", orjson.dumps(naive), _auth(content_type=SINGLE)),
        ("POST", "/v1/contacts", orjson.dumps([valid]), _auth(content_type="text/plain")),
        ("POST", "/v1/contacts", orjson.dumps([valid]), {"Content-Type": BATCH}),
        ("POST", "/v1/contacts", b"{}", _auth("x" * 1000)),
        ("POST", "/v1/contacts", b"[" + b"[" * 100_000 + b"]", _auth()),
        ("POST", "/v1/contacts", orjson.dumps([{**valid, "data": "x" * 70_000}]), _auth()),
        ("GET", "/v1/contacts", b"", {}),
        ("POST", "/healthz", b"", {}),
        ("GET", "/no-such-page", b"", {}),
    ]


async def test_no_input_gets_a_5xx(service: Service) -> None:
    """A 5xx tells the caller the fault is ours; for bad input it never is."""
    client, _ = service
    answers = []
    for method, path, body, headers in _odd_requests():
        response = await client.request(method, path, data=body, headers=headers)
        body_json = await response.json()
        answers.append((response.status, body_json.get("error")))
    assert all(400 <= status < 500 for status, _ in answers), answers
    assert all(isinstance(code, str) for _, code in answers), answers
