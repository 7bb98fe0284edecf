"""From a contact to a Rating through a really delivered email, a scanner and a real browser.

``palaute worker`` (intake, scheduler, dispatcher, responses) runs as a real
process and sends the survey email to an aiosmtpd sink; the web service reads
its surveys from Kafka. Every link of the delivered email is fetched with a
plain GET, as a mail gateway does: nothing is recorded. Then headless
Chromium opens the email's score link, the citizen changes the score and
comments, and exactly one Rating, with the changed score, reaches the ratings
topic.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from connectors.web.pages import link_signer
from engine.evidence import EMAIL_RULES
from engine.tokens import TokenPayload
from schemas.topics import CONTACTS, RATINGS, RESPONSES, SURVEYS
from tests.fixtures import start_worker, stop_process
from tests.integration.citizen_harness import (
    LINK_SIGNING_KEY,
    PARTITIONS,
    PSEUDONYMISATION_KEY,
    WAIT_SECONDS,
    read_topic,
    running_citizen_web,
)
from tests.integration.smtp_server import running_smtp_sink
from tests.integration.test_browser import TOOLING, _require_tooling

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.citizen_harness import CitizenEnv
    from tests.integration.smtp_server import SmtpSink

pytestmark = pytest.mark.integration

ADDRESS = "maija.meikalainen@example.fi"


def _config(tmp_path: Path, env: CitizenEnv, smtp_port: int) -> Path:
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

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "palaute@example.fi"
sender_name = "Palaute"
timeout_seconds = 10

[web]
public_base_url = "{env.base_url}"

[policy]
quiet_hours_start = "00:00"
quiet_hours_end = "00:00"
holiday_handling = "ignore"

[touchpoints.phone-service]
name = "Puhelinpalvelu"
send_delay = "0s"
channel_preference = ["email"]
""",
        encoding="utf-8",
    )
    return path


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _produce_contact(env: CitizenEnv) -> None:
    ended = datetime.now(UTC) - timedelta(minutes=2)
    value = json.dumps(
        {
            "specversion": "1.0",
            "id": "evt-e2e-1",
            "source": "/crm/e2e",
            "type": "fi.palaute.contact.completed.v1",
            "time": ended.isoformat(),
            "data": {
                "contact": {"id": "contact-e2e-1", "ended_at": ended.isoformat()},
                "citizen": {"email": ADDRESS, "consent": {"email": True}, "language": "fi"},
                "touchpoint": {
                    "id": "phone-service",
                    "name": "Puhelinpalvelu",
                    "channel": "phone",
                    "service": "tax",
                },
            },
        }
    ).encode()
    producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(env.topic(CONTACTS), key=b"e2e-citizen", value=value)
    finally:
        await producer.stop()


async def _delivered_links(sink: SmtpSink, worker_log: Path) -> list[str]:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not sink.received:
        assert asyncio.get_running_loop().time() < deadline, _tail(worker_log)
        await asyncio.sleep(0.25)
    message = sink.received[0].message()
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    content = body.get_content()
    links = {html.unescape(link) for link in re.findall(r'href="([^"]+)"', content)}
    unsubscribe = re.search(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    if unsubscribe:
        links.add(unsubscribe.group(1))
    return sorted(links)


def _score_link(links: list[str], env: CitizenEnv, score: int) -> str:
    """Find the email's link for one score by reading the tokens, as the service does."""
    signer = link_signer(env.settings)
    now = datetime.now(UTC)
    for link in links:
        payload = signer.verify(link.rsplit("/", 1)[-1], now)
        if isinstance(payload, TokenPayload) and payload.score == score:
            return link
    raise AssertionError(f"no link for score {score} in {len(links)} links")


async def _wait_until_sent(env: CitizenEnv) -> str:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        sent = [s for s in env.index.surveys.values() if s.sent_at is not None]
        if sent:
            return sent[0].survey_id
        await asyncio.sleep(0.1)
    raise AssertionError("the web service never learnt that the survey was sent")


async def _ratings(env: CitizenEnv, survey_id: str) -> list[dict[str, Any]]:
    for _ in range(60):
        ratings = await read_topic(env.bootstrap, env.topic(RATINGS), settle=0.5)
        if any(rating["survey_id"] == survey_id for rating in ratings):
            await asyncio.sleep(2)
            again = await read_topic(env.bootstrap, env.topic(RATINGS), settle=0.5)
            return [rating for rating in again if rating["survey_id"] == survey_id]
        await asyncio.sleep(0.5)
    return []


@pytest.mark.slow
async def test_a_delivered_email_is_scanned_without_effect_then_answered_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The acceptance path: scanners record nothing, a citizen's changed answer counts once."""
    node = _require_tooling()
    log = tmp_path / "worker.log"
    async with (
        running_citizen_web(kafka_bootstrap, str(tmp_path / "web-data")) as env,
        running_smtp_sink() as sink,
    ):
        worker = start_worker(_config(tmp_path, env, sink.port), log)
        try:
            await _produce_contact(env)
            links = await _delivered_links(sink, log)
            survey_id = await _wait_until_sent(env)
            assert len(links) >= 7  # five scores, the page, unsubscribe
            async with aiohttp.ClientSession() as scanner:
                for link in links:
                    async with scanner.get(link) as response:
                        assert response.status == 200, link
            await asyncio.sleep(1)
            assert await read_topic(env.bootstrap, env.topic(RESPONSES)) == []
            # The citizen reads the mail later than the gateway: a visit inside the
            # gateway's burst window would be taken as part of the burst.
            await asyncio.sleep(EMAIL_RULES.burst_window.total_seconds() + 1)

            score_link = _score_link(links, env, 4)
            process = await asyncio.create_subprocess_exec(
                node,
                str(TOOLING / "one-tap-browser.mjs"),
                score_link,
                "2",
                "Kiitos avusta",
                str(tmp_path / "e2e.png"),
                str(tmp_path / "profile"),
                cwd=TOOLING,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode == 0, err.decode(errors="replace")[-3000:]
            page = json.loads(out)
            ratings = await _ratings(env, survey_id)
            answers = await read_topic(env.bootstrap, env.topic(RESPONSES))
            surveys = await read_topic(env.bootstrap, env.topic(SURVEYS))
        finally:
            stop_process(worker)

    assert page["lang"] == "fi"
    assert page["pressed"] == "2"
    assert len(ratings) == 1, (answers, [event["type"] for event in surveys])
    (rating,) = ratings
    assert (rating["rating_id"], rating["revision"], rating["score"]) == (survey_id, 1, 2)
    assert (rating["touchpoint_id"], rating["survey_channel"]) == ("phone-service", "email")
    # The contact's own touchpoint facts, carried by SurveyScheduled: not the catalogue's.
    assert (rating["service"], rating["touchpoint_channel"]) == ("tax", "phone")
    assert rating["normalised"] == 0.25
