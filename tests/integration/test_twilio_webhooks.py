"""Twilio's inbound and status webhooks, signed by the Twilio simulator with the real algorithm.

The simulator signs with twilio's own RequestValidator (HMAC-SHA1 over the URL
and the sorted form), exactly as Twilio does; forged requests are signed with
another token or not at all. The last test runs ``palaute worker`` as a real
process: a citizen who replies LOPETA is skipped as opted-out at their next
contact.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from twilio.request_validator import RequestValidator

from connectors.twilio_sim import TwilioSimulator
from connectors.twilio_sim.server import SimulatorConfig
from schemas.base import Language, SurveyChannel
from schemas.config import StreamsConfig
from schemas.topics import CONTACTS, RESPONSES, SURVEYS
from streams.stages.intake import is_opt_in, is_opt_out
from tests.fixtures import start_worker
from tests.integration.citizen_harness import (
    LINK_SIGNING_KEY,
    PARTITIONS,
    PSEUDONYMISATION_KEY,
    TWILIO_TOKEN,
    citizen_key_for,
    read_topic,
    running_citizen_web,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from tests.integration.citizen_harness import CitizenEnv

pytestmark = pytest.mark.integration

PHONE = "+358401234567"
#: How long a step of a running worker may take on a busy 2-core machine.
WAIT_SECONDS = 120.0


@pytest.fixture
async def env(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    """Run a web service with its own topics."""
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "data")) as running:
        yield running


@pytest.fixture
async def simulator(env: CitizenEnv) -> AsyncIterator[TwilioSimulator]:
    """Run the Twilio simulator, delivering inbound SMS to the web service."""
    sim = TwilioSimulator(SimulatorConfig(inbound_url=env.base_url + "/twilio/inbound"))
    await sim.start()
    yield sim
    await sim.stop()


async def _responses(env: CitizenEnv, expect: int | None = None) -> list[dict[str, Any]]:
    return await read_topic(env.bootstrap, env.topic(RESPONSES), expect=expect)


async def test_a_signed_reply_with_a_score_counts_and_is_thanked_in_the_citizens_language(
    env: CitizenEnv, simulator: TwilioSimulator
) -> None:
    """The SMS answer is the main channel: it must count, once, and be answered."""
    await env.publish_survey(
        "s-sms",
        citizen=citizen_key_for("sms"),
        channel=SurveyChannel.SMS,
        phone=PHONE,
        language=Language.SV,
    )
    delivery = await simulator.send_inbound(PHONE, "4", repeat=2)
    assert [attempt.status for attempt in delivery.attempts] == [200, 200]
    assert all("Tack för ditt svar!" in a.response_text for a in delivery.attempts)
    (answer,) = await _responses(env, expect=1)
    assert (answer["type"], answer["survey_id"], answer["score"]) == ("RatingReceived", "s-sms", 4)
    assert (answer["via"], answer["confirmed"]) == ("sms-reply", True)
    assert await _responses(env) == [answer]  # Twilio's retry did not count twice


async def test_forged_or_unsigned_requests_get_403_and_record_nothing(
    env: CitizenEnv, simulator: TwilioSimulator
) -> None:
    """Anybody can POST to a public URL; only Twilio's signature makes it a reply."""
    await env.publish_survey(
        "s-forged", citizen=citizen_key_for("forged"), channel=SurveyChannel.SMS, phone=PHONE
    )
    url = env.base_url + "/twilio/inbound"
    form = {"From": PHONE, "Body": "5", "MessageSid": "SM" + "1" * 32}
    forged = RequestValidator("not-the-auth-token").compute_signature(url, form)
    genuine_elsewhere = RequestValidator(TWILIO_TOKEN).compute_signature(url + "?x=1", form)
    async with aiohttp.ClientSession() as http:
        for headers in (
            {},
            {"X-Twilio-Signature": forged},
            {"X-Twilio-Signature": genuine_elsewhere},
        ):
            for path in ("/twilio/inbound", "/twilio/status"):
                async with http.post(env.base_url + path, data=form, headers=headers) as response:
                    assert response.status == 403, (path, headers)
    assert simulator.callbacks == []
    assert await _responses(env) == []


async def test_help_and_unreadable_replies_are_answered_and_not_counted(
    env: CitizenEnv, simulator: TwilioSimulator
) -> None:
    """A citizen who writes words gets guidance; nothing reaches the metrics."""
    await env.publish_survey(
        "s-words", citizen=citizen_key_for("words"), channel=SurveyChannel.SMS, phone=PHONE
    )
    help_reply = await simulator.send_inbound(PHONE, "apua")
    junk = await simulator.send_inbound(PHONE, "ihan ok kai")
    (help_attempt,) = help_reply.attempts
    (junk_attempt,) = junk.attempts
    assert help_attempt.status == junk_attempt.status == 200
    assert "Palautekysely: vastaa numerolla 1-5" in help_attempt.response_text
    assert "Vastaa numerolla 1-5" in junk_attempt.response_text
    assert await _responses(env) == []


async def test_a_status_callback_becomes_a_delivery_report_with_the_error_code(
    env: CitizenEnv,
) -> None:
    """Undelivered SMS must be visible per survey, with Twilio's reason."""
    sid = "SM" + "a" * 32
    citizen = citizen_key_for("status")
    await env.publish_survey(
        "s-status",
        citizen=citizen,
        channel=SurveyChannel.SMS,
        phone=PHONE,
        provider_message_id=sid,
    )
    url = env.base_url + "/twilio/status"
    form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003", "To": PHONE}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=form, headers={"X-Twilio-Signature": signature}) as response,
    ):
        assert response.status == 204
    events = await read_topic(env.bootstrap, env.topic(SURVEYS), expect=3)
    reports = [event for event in events if event["type"] == "DeliveryReported"]
    assert [(r["survey_id"], r["status"], r["provider_error_code"]) for r in reports] == [
        ("s-status", "undelivered", "30003")
    ]
    assert reports[0]["citizen_key"] == citizen


def _worker_config(tmp_path: Path, env: CitizenEnv) -> Path:
    path = tmp_path / "worker.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{env.bootstrap}"]

[secrets]
pseudonymisation_key = "{PSEUDONYMISATION_KEY}"
link_signing_key = "{LINK_SIGNING_KEY}"

[streams]
topic_suffix = "{env.suffix}"
data_dir = "{tmp_path / "worker-data"}"
partitions = {PARTITIONS}

[policy]
frequency_cap = 10
episode_window = "0s"

[touchpoints.phone-service]
send_delay = "1d"
""",
        encoding="utf-8",
    )
    return path


def _contact(number: int) -> bytes:
    ended = datetime.now(UTC) - timedelta(minutes=5)
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"evt-optout-{number}",
            "source": "/crm/opt-out-test",
            "type": "fi.palaute.contact.completed.v1",
            "time": ended.isoformat(),
            "data": {
                "contact": {"id": f"contact-optout-{number}", "ended_at": ended.isoformat()},
                "citizen": {"phone": PHONE, "consent": {"sms": True}},
                "touchpoint": {
                    "id": "phone-service",
                    "name": "Puhelinpalvelu",
                    "channel": "phone",
                    "service": "tax",
                },
            },
        }
    ).encode()


async def _produce_contact(env: CitizenEnv, number: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            env.topic(CONTACTS), key=b"opt-out-citizen", value=_contact(number)
        )
    finally:
        await producer.stop()


async def _decision_for(env: CitizenEnv, contact_id: str) -> dict[str, Any]:
    for _ in range(120):
        events = await read_topic(env.bootstrap, env.topic(SURVEYS), settle=0.5)
        for event in events:
            if event.get("contact_id") == contact_id and event["type"] in {
                "SurveyScheduled",
                "SurveySkipped",
            }:
                return event
        await asyncio.sleep(0.5)
    raise AssertionError(f"no decision for {contact_id}")


async def _opt_out_forwarded(env: CitizenEnv, marked: Callable[[Any], bool] = is_opt_out) -> None:
    """Wait until the intake has put an opt-out (or opt-in) on its internal by-citizen topic."""
    topic = f"{StreamsConfig().app_id}{env.suffix}-contacts-by-citizen"
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=env.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                if any(marked(record.headers) for record in records):
                    return
    finally:
        await consumer.stop()
    raise AssertionError(f"the opt-out never reached {topic}")


async def test_lopeta_stops_the_next_survey_and_aloita_resumes_them(
    env: CitizenEnv, simulator: TwilioSimulator, tmp_path: Path
) -> None:
    """Stopping must work in Finnish and stop the next survey; ALOITA must bring them back."""
    log = tmp_path / "worker.log"
    worker = start_worker(_worker_config(tmp_path, env), log)
    try:
        await _produce_contact(env, 1)
        first = await _decision_for(env, "contact-optout-1")
        assert first["type"] == "SurveyScheduled", log.read_text(errors="replace")[-3000:]
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while env.index.citizen_of_phone(PHONE) is None:
            assert asyncio.get_running_loop().time() < deadline, "the survey is not indexed"
            await asyncio.sleep(0.1)
        delivery = await simulator.send_inbound(PHONE, "LOPETA")
        (attempt,) = delivery.attempts
        assert attempt.status == 200
        assert "Et saa enää palautekyselyjä" in attempt.response_text
        (opt_out,) = await _responses(env, expect=1)
        assert (opt_out["type"], opt_out["citizen_key"]) == ("OptOut", first["citizen_key"])
        # The intake forwards the opt-out to its by-citizen topic, where the next
        # contact of the same citizen lands after it: wait until it is there.
        await _opt_out_forwarded(env)
        await _produce_contact(env, 2)
        second = await _decision_for(env, "contact-optout-2")
        assert (second["type"], second.get("reason")) == ("SurveySkipped", "opted-out"), (
            log.read_text(errors="replace")[-3000:]
        )
        # The confirmation promised ALOITA resumes: it is an event, as the stop is.
        delivery = await simulator.send_inbound(PHONE, "Aloita")
        (attempt,) = delivery.attempts
        assert attempt.status == 200
        assert "Saat taas palautekyselyjä" in attempt.response_text
        answers = await _responses(env, expect=2)
        assert [(a["type"], a["citizen_key"]) for a in answers] == [
            ("OptOut", first["citizen_key"]),
            ("OptIn", first["citizen_key"]),
        ]
        await _opt_out_forwarded(env, is_opt_in)
        await _produce_contact(env, 3)
        third = await _decision_for(env, "contact-optout-3")
        assert third["type"] == "SurveyScheduled", log.read_text(errors="replace")[-3000:]
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
