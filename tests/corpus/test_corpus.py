"""The bad-input corpus: every malformed contact event gets its documented error.

The files under ``contacts/`` are what careless or hostile producers send. The
gate must name the exact field and reason for each, never quote what it
refused, and the HTTP ingress must answer each with a 4xx, never a 5xx.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer

from connectors.web import create_web_app
from connectors.web.ingress import hash_key
from ops.kafka import create_topic, delete_topics
from schemas.config import load_settings
from schemas.decoding import Rejected, decode_contact

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

HERE = Path(__file__).resolve().parent
MANIFEST: dict[str, dict[str, str]] = json.loads(
    (HERE / "contacts.expected.json").read_text(encoding="utf-8")
)
FILES = sorted(MANIFEST)
KEY = secrets.token_urlsafe(32)
SOURCE = "/crm/helsinki-contact-centre"
# Kafka carries one event per record, so an array is malformed there; over HTTP it
# is a batch, and this one is valid.
VALID_OVER_HTTP = {"008-json-array-of-events.raw"}
# Values in the corpus that must never come back in an error.
SECRETS_OF_INPUT = ("308T", "308t", "9021", "ABCDEFG", "4012", "maija", "358401234567")


def test_corpus_has_at_least_sixty_cases_and_no_stray_files() -> None:
    """A file without an expectation would be checked by nobody."""
    on_disk = sorted(path.name for path in (HERE / "contacts").glob("*.raw"))
    assert on_disk == FILES
    assert len(FILES) >= 60


@pytest.mark.parametrize("name", FILES)
def test_gate_gives_the_documented_error(name: str) -> None:
    """Integrators rely on the path and code to fix their producer."""
    raw = (HERE / "contacts" / name).read_bytes()
    result = decode_contact(raw)
    assert isinstance(result, Rejected)
    expected = MANIFEST[name]
    assert (result.errors[0].path, result.errors[0].code) == (expected["path"], expected["code"])
    assert not any(secret in result.reason for secret in SECRETS_OF_INPUT)


class _Names:
    def __init__(self, contacts: str) -> None:
        self.contacts = contacts


@pytest.fixture(scope="module")
async def ingress(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> AsyncIterator[TestClient[Any, Any]]:
    directory = tmp_path_factory.mktemp("corpus")
    config = directory / "palaute.toml"
    config.write_text(
        f"""
[kafka]
bootstrap_servers = ["{kafka_bootstrap}"]

[secrets]
pseudonymisation_key = "{"p" * 40}"
link_signing_key = "{"l" * 40}"

[ingress]
requests_per_second = 1000
burst = 1000

[ingress.sources.crm-helsinki]
key_sha256 = "{hash_key(KEY)}"
event_sources = ["{SOURCE}"]
""",
        encoding="utf-8",
    )
    # Created beforehand, as in production: a topic the broker creates on the first
    # produce may still have no leader when the ingress gives up waiting (a 503).
    topic = f"palaute.corpus.{secrets.token_hex(8)}"
    await asyncio.to_thread(create_topic, kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    app = create_web_app(load_settings(config), producer=producer, topic_names=_Names(topic))
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client
    finally:
        await producer.stop()
        await asyncio.to_thread(delete_topics, kafka_bootstrap, [topic])


@pytest.mark.integration
@pytest.mark.parametrize("name", FILES)
async def test_ingress_answers_every_corpus_case_with_a_4xx(
    ingress: TestClient[Any, Any], name: str
) -> None:
    """An HTTP caller gets a reason naming the field, never a server error."""
    raw = (HERE / "contacts" / name).read_bytes()
    response = await ingress.post(
        "/v1/contacts",
        data=io.BytesIO(raw),  # large bodies stream instead of blocking the loop
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/cloudevents+json"},
    )
    text = await response.text()
    if name in VALID_OVER_HTTP:
        assert response.status == 202, text
        return
    assert 400 <= response.status < 500, text
    assert response.status in {400, 413, 422}, text
    assert not any(secret in text for secret in SECRETS_OF_INPUT)
    expected = MANIFEST[name]
    if response.status == 422:
        body = json.loads(text)
        assert any(
            error["path"].endswith(expected["path"]) and error["code"] == expected["code"]
            for error in body["errors"]
        ), body
