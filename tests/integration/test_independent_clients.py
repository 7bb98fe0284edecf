"""Contacts written by clients nobody here wrote, through a running worker, end in one decision.

A suite that only sends what its own code writes proves only that. Here the
contacts come from kcat (librdkafka) with headers, from the CloudEvents SDK
in its structured and its binary content mode, from aiokafka with headers
of every awkward kind (binary values, null values, repeated names) and from
the HTTP ingress, which adds a content-type header to each record it
writes. Every one must reach exactly one decision, and its survey must be
sent, through a real ``palaute worker`` process and the Twilio simulator.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dispatch_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDER,
    Reader,
    Worker,
    config_text,
    decisions,
    sent_contact_ids,
    settle,
    wait_until,
)
from smtp_server import running_smtp_sink

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from connectors.web import create_web_app
from connectors.web.ingress import hash_key
from schemas.config import load_settings
from schemas.topics import CONTACTS, DEADLETTER, SURVEYS

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

INGRESS_KEY = secrets.token_urlsafe(32)
SOURCE = "/crm/independent-clients"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _data(label: str, index: int, ended: datetime) -> dict[str, Any]:
    return {
        "contact": {"id": f"{label}-contact-{index}", "ended_at": ended.isoformat()},
        "citizen": {
            "id": f"{label}-citizen-{index}",
            "language": "fi",
            "phone": f"+35840{7000000 + hash((label, index)) % 999_999:07d}",
            "consent": {"sms": True, "email": False},
        },
        "touchpoint": {
            "id": "phone-service",
            "name": "Puhelinpalvelu",
            "channel": "phone",
            "service": "tax",
        },
    }


def _structured(label: str, index: int, ended: datetime) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{label}-event-{index}",
        "source": SOURCE,
        "type": "fi.palaute.contact.completed.v1",
        "time": ended.isoformat(),
        "data": _data(label, index, ended),
    }


def _sdk_event(label: str, index: int, ended: datetime) -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": f"{label}-event-{index}",
            "source": SOURCE,
            "type": "fi.palaute.contact.completed.v1",
            "time": ended,
            "datacontenttype": "application/json",
        },
        data=_data(label, index, ended),
    )


def _kcat(bootstrap: str, topic: str, ended: datetime) -> list[str]:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: apt-get install kcat (.ci/run does this)"
    lines = b"".join(
        f"kcat-citizen-{i}".encode() + b"\t" + orjson.dumps(_structured("kcat", i, ended)) + b"\n"
        for i in range(2)
    )
    subprocess.run(
        [
            kcat,
            "-P",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-K",
            "\t",
            "-H",
            f"traceparent={TRACEPARENT}",
            "-H",
            "content-type=application/cloudevents+json; charset=utf-8",
        ],
        input=lines,
        check=True,
        timeout=60,
    )
    return [f"kcat-contact-{i}" for i in range(2)]


async def _aiokafka_clients(bootstrap: str, topic: str, ended: datetime) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    expected: list[str] = []
    try:
        for mode, convert in (
            ("structured", ce_kafka.to_structured),
            ("binary", ce_kafka.to_binary),
        ):
            for index in range(2):
                message = convert(_sdk_event(f"sdk-{mode}", index, ended), JSONFormat())
                headers = [(name, value) for name, value in message.headers.items()]
                headers.append(("traceparent", TRACEPARENT.encode()))
                await producer.send_and_wait(
                    topic,
                    key=f"sdk-{mode}-{index}".encode(),
                    value=message.value,
                    headers=headers,
                )
                expected.append(f"sdk-{mode}-contact-{index}")
        awkward: list[tuple[str, bytes | None]] = [
            ("x-binary", b"\x00\xff\xfe"),
            ("x-null", None),
            ("x-repeated", b"1"),
            ("x-repeated", b"2"),
            ("palaute-record", b"opt-out"),  # one of our own markers, from outside: no effect
            ("", b""),
        ]
        for index in range(2):
            await producer.send_and_wait(
                topic,
                key=f"awkward-{index}".encode(),
                value=orjson.dumps(_structured("awkward", index, ended)),
                headers=awkward,
            )
            expected.append(f"awkward-contact-{index}")
    finally:
        await producer.stop()
    return expected


async def _ingress(bootstrap: str, config: Path, topic: str, ended: datetime) -> list[str]:
    settings = load_settings(config)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    expected: list[str] = []

    class _Names:
        contacts = topic

    try:
        app = create_web_app(settings, producer=producer, topic_names=_Names())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            for index in range(2):
                response = await client.post(
                    "/v1/contacts",
                    data=orjson.dumps(_structured("http", index, ended)),
                    headers={
                        "Authorization": f"Bearer {INGRESS_KEY}",
                        "Content-Type": "application/cloudevents+json",
                        "traceparent": TRACEPARENT,
                    },
                )
                assert response.status == 202, await response.text()
                expected.append(f"http-contact-{index}")
    finally:
        await producer.stop()
    return expected


async def test_contacts_from_independent_clients_each_get_one_decision_and_are_sent(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """Any client, any header, any content mode: every contact is decided once and surveyed."""
    simulator = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER, callback_delay=0.01
        )
    )
    sim_url = await simulator.start("127.0.0.1", 0)
    async with running_smtp_sink() as sink:
        config = tmp_path / "palaute.toml"
        extra = f"""
[defaults]
send_delay = "0s"

[ingress.sources.crm]
key_sha256 = "{hash_key(INGRESS_KEY)}"
event_sources = ["{SOURCE}"]
"""
        config.write_text(
            config_text(
                kafka_bootstrap,
                run_suffix,
                tmp_path / "data",
                sim_url=sim_url,
                smtp_port=sink.port,
                extra=extra,
            ),
            encoding="utf-8",
        )
        contacts_topic = CONTACTS + run_suffix
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
        readers = [surveys, deadletters]
        for reader in readers:
            await reader.start()
        worker = Worker(config, tmp_path / "worker.log")
        worker.start()
        try:
            ended = datetime.now(UTC) - timedelta(minutes=2)
            expected = _kcat(kafka_bootstrap, contacts_topic, ended)
            expected += await _aiokafka_clients(kafka_bootstrap, contacts_topic, ended)
            expected += await _ingress(kafka_bootstrap, config, contacts_topic, ended)

            def all_sent() -> bool:
                return set(expected) <= sent_contact_ids(surveys.events())

            await wait_until(all_sent, readers, worker, 120, "every contact's survey to be sent")
            await settle(readers, 2.0)
        finally:
            worker.stop()
            for reader in readers:
                await reader.stop()
            await simulator.stop()
    counts = decisions(surveys.events())
    assert {contact_id: counts[contact_id] for contact_id in expected} == dict.fromkeys(expected, 1)
    assert deadletters.records == [], "no contact of these clients may be dead-lettered"
