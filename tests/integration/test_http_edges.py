"""The edges of the HTTP services: any body a 4xx, the real client behind proxies, bound hosts.

Three things a careless or hostile client, or a plain deployment, ran into:

- an extra field nested 253-1022 levels deep inside ``data`` made the
  ingress answer 500 (orjson could not write what the gate had let through);
- behind the ingress controller docs/deployment.md recommends, every
  request comes from the controller, so all citizens shared one rate-limit
  bucket; ``X-Forwarded-For`` must count, but only from trusted proxies;
- the worker's /metrics and /healthz listened on 0.0.0.0 while the
  settings said 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer

from connectors.web import create_web_app, pages
from connectors.web.ingress import hash_key
from connectors.web.open_surveys import SurveyIndex
from connectors.web.pages import PAGE_BURST
from ops.kafka import create_topic, delete_topics
from schemas.config import Settings, load_settings
from schemas.decoding import MAX_NESTING
from schemas.samples import contact_completed
from streams.app import create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.integration

KEY = secrets.token_urlsafe(32)
SOURCE = "/crm/helsinki-contact-centre"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/cloudevents+json"}
PSEUDONYMISATION_KEY = "http-edges-pseudonymisation-key-0123456789"
LINK_SIGNING_KEY = "http-edges-link-signing-key-9876543210abcdef"


class _Names:
    def __init__(self, contacts: str) -> None:
        self.contacts = contacts


def _settings(bootstrap: str, *, trusted_proxies: list[str] | None = None) -> Settings:
    return Settings.model_validate(
        {
            "kafka": {"bootstrap_servers": [bootstrap]},
            "secrets": {
                "pseudonymisation_key": PSEUDONYMISATION_KEY,
                "link_signing_key": LINK_SIGNING_KEY,
            },
            "web": {"trusted_proxies": trusted_proxies or []},
            "ingress": {
                "requests_per_second": 10_000,
                "burst": 10_000,
                "sources": {
                    "crm-helsinki": {"key_sha256": hash_key(KEY), "event_sources": [SOURCE]}
                },
            },
        }
    )


@pytest.fixture(scope="module")
async def contacts_topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """Give the tests a topic of their own, created beforehand as in production."""
    topic = f"palaute.http-edges.{secrets.token_hex(8)}"
    await asyncio.to_thread(create_topic, kafka_bootstrap, topic)
    yield topic
    await asyncio.to_thread(delete_topics, kafka_bootstrap, [topic])


@pytest.fixture(scope="module")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """Give a real, idempotent producer, as ``palaute web`` runs."""
    started = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await started.start()
    yield started
    await started.stop()


class ClientFactory(Protocol):
    """Makes a test client of ``palaute web`` that trusts the given proxies."""

    def __call__(self, *, trusted_proxies: list[str] | None = None) -> TestClient[Any, Any]:
        """Build the client; the caller enters it."""
        ...


@pytest.fixture
def make_client(
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    contacts_topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> ClientFactory:
    """Give a factory of test clients of ``palaute web``, trusting the proxies it is told.

    The answer pages' buckets refill at one token in 100 s here, not 2 a second:
    on a slow machine a spent bucket would otherwise refill between two requests.
    """
    monkeypatch.setattr(pages, "PAGE_RATE", 0.01)

    def make(*, trusted_proxies: list[str] | None = None) -> TestClient[Any, Any]:
        app = create_web_app(
            _settings(kafka_bootstrap, trusted_proxies=trusted_proxies),
            producer=producer,
            topic_names=_Names(contacts_topic),
            survey_index=SurveyIndex(secret=PSEUDONYMISATION_KEY.encode()),
        )
        return TestClient(TestServer(app, host="127.0.0.1"))

    return make


def _contact_with_extra(depth: int) -> bytes:
    """Give the sample contact with an extra field in ``data`` nested ``depth`` arrays deep."""
    event = json.loads(contact_completed(datetime.now(UTC)).model_dump_json(exclude_none=True))
    text = json.dumps(event, separators=(",", ":"))
    nested = "[" * depth + "]" * depth
    return text.replace('"data":{', f'"data":{{"extra":{nested},', 1).encode()


async def test_a_field_nested_any_depth_inside_data_gets_a_4xx_naming_the_limit(
    make_client: ClientFactory,
) -> None:
    """Every depth from 1 to 2,000: a 4xx with a reason, never a 500."""
    wrong: list[tuple[int, int, str]] = []
    async with make_client() as client:
        for depth in range(1, 2001):
            response = await client.post(
                "/v1/contacts", data=io.BytesIO(_contact_with_extra(depth)), headers=HEADERS
            )
            body = await response.json()
            codes = {error["code"] for error in body.get("errors", [])}
            # The extra field is level 3 of the document: {data: {extra: [...]}}.
            too_deep = 2 + depth > MAX_NESTING
            if too_deep and (response.status != 400 or codes != {"too_deep"}):
                wrong.append((depth, response.status, ",".join(sorted(codes))))
            if not too_deep and (response.status != 422 or "extra_forbidden" not in codes):
                wrong.append((depth, response.status, ",".join(sorted(codes))))
    assert wrong == []


@pytest.mark.parametrize(
    ("content_type", "body", "path"),
    [
        (
            "application/cloudevents+json",
            lambda event: event.replace('"data":{', '"data":{"contact":{"id":"c-1"},', 1),
            "data",
        ),
        (
            "application/cloudevents-batch+json",
            lambda event: f'[{event},{{"id":"x",{event[1:]}]',
            "[1]",
        ),
    ],
    ids=["single", "batch"],
)
async def test_the_ingress_refuses_a_repeated_member_name_with_a_400(
    make_client: ClientFactory,
    content_type: str,
    body: Any,
    path: str,
) -> None:
    """A repeated name was accepted (the last one won); now it is refused, nothing produced."""
    event = contact_completed(datetime.now(UTC)).model_dump_json(exclude_none=True)
    async with make_client() as client:
        response = await client.post(
            "/v1/contacts",
            data=body(event).encode(),
            headers={**HEADERS, "Content-Type": content_type},
        )
        answer = await response.json()
        assert response.status == 400, answer
        assert [(error["path"], error["code"]) for error in answer["errors"]] == [
            (path, "duplicate_member")
        ]
        # The same event, once, is accepted: the refusal is about the repeat only.
        accepted = await client.post("/v1/contacts", data=event.encode(), headers=HEADERS)
        assert accepted.status == 202, await accepted.text()


async def _spend_burst(client: TestClient[Any, Any], forwarded_for: str | None) -> int:
    """Ask answer pages as one client until refused; give how many were answered."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    for answered in range(PAGE_BURST * 3):
        response = await client.get("/r/not-a-token", headers=headers)
        await response.read()
        if response.status == 429:
            return answered
    return PAGE_BURST * 3


async def _page_status(client: TestClient[Any, Any], forwarded_for: str) -> int:
    response = await client.get("/r/not-a-token", headers={"X-Forwarded-For": forwarded_for})
    await response.read()
    return response.status


async def test_behind_a_trusted_proxy_each_citizen_has_a_bucket_of_their_own(
    make_client: ClientFactory,
) -> None:
    """One citizen's burst must not lock out the next citizen behind the same controller."""
    async with make_client(trusted_proxies=["127.0.0.0/8"]) as client:
        assert await _spend_burst(client, "203.0.113.7") < PAGE_BURST * 3
        assert await _page_status(client, "203.0.113.7") == 429
        # Another citizen, and the first one through a second trusted hop.
        assert await _page_status(client, "203.0.113.8") == 400  # the token's answer
        assert await _page_status(client, "203.0.113.7, 127.0.0.9") == 429


async def test_addresses_left_of_the_client_cannot_buy_a_fresh_bucket(
    make_client: ClientFactory,
) -> None:
    """A client can prepend anything to the chain; only what the proxy appended counts."""
    async with make_client(trusted_proxies=["127.0.0.0/8"]) as client:
        assert await _spend_burst(client, "203.0.113.7") < PAGE_BURST * 3
        assert await _page_status(client, "198.51.100.1, 203.0.113.7") == 429


@pytest.mark.parametrize("trusted", [[], ["10.0.0.0/8"]], ids=["none", "elsewhere"])
async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    make_client: ClientFactory, trusted: list[str]
) -> None:
    """Anyone can write the header: from a peer that is not a trusted proxy it counts nothing."""
    async with make_client(trusted_proxies=trusted) as client:
        assert await _spend_burst(client, "203.0.113.7") < PAGE_BURST * 3
        assert await _page_status(client, "203.0.113.8") == 429


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(5)
        return probe.connect_ex((host, port)) == 0


async def test_the_worker_web_server_listens_only_on_its_configured_host(tmp_path: Path) -> None:
    """/metrics and /healthz were open on every interface while the settings said 127.0.0.1."""
    port = _free_port()
    config = tmp_path / "palaute.toml"
    config.write_text(
        f"""
[secrets]
pseudonymisation_key = "{PSEUDONYMISATION_KEY}"
link_signing_key = "{LINK_SIGNING_KEY}"

[streams]
data_dir = "{tmp_path / "data"}"
web_host = "127.0.0.1"
web_port = {port}
""",
        encoding="utf-8",
    )
    app = create_app(load_settings(config))
    await app.web.start()
    try:
        assert _accepts("127.0.0.1", port)
        # Any address of 127/8 reaches a socket bound to 0.0.0.0, none but
        # 127.0.0.1 one bound to 127.0.0.1: no other interface is needed to tell.
        assert not _accepts("127.0.0.2", port)
    finally:
        await app.web.stop()
