"""Replayed Twilio requests: a signed request counts once and never overrides a newer answer.

Requests are signed here with twilio's own ``RequestValidator`` (the client
library's HMAC-SHA1 over the URL and the sorted form), as Twilio signs them.
I-Twilio-Idempotency-Token is a header outside that signature, so a replay
may carry any token or none. The web service runs against a real broker; the
answers it writes are folded through the answers join's own rules
(:mod:`engine.ratings`) to see what would reach the metrics.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from twilio.request_validator import RequestValidator

from connectors.web.ingress import RecentIds
from connectors.web.twilio_hooks import TWILIO
from engine.ratings import SurveyAnswers, TouchpointFacts, on_answer, on_scheduled
from schemas.base import SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import RatingReceived
from schemas.topics import RESPONSES, SURVEYS
from tests.integration.citizen_harness import (
    PARTITIONS,
    TWILIO_SID,
    TWILIO_TOKEN,
    citizen_key_for,
    running_citizen_web,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from schemas.surveys import SurveyScheduled
    from tests.integration.citizen_harness import CitizenEnv

pytestmark = pytest.mark.integration

PHONE = "+358401234567"
#: How long reading a topic may take on a busy 2-core machine.
WAIT_SECONDS = 120.0


@pytest.fixture
async def env(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    """Run a web service with its own topics."""
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "data")) as running:
        yield running


async def _read_all(env: CitizenEnv, base: str) -> list[dict[str, Any]]:
    """Read every record a topic holds now, up to its end offsets: no guessing how long to wait.

    Whatever the web service wrote was acknowledged before its answer (or its
    re-judging) returned, so the end offsets taken here cover all of it.
    """
    topic = env.topic(base)
    consumer = AIOKafkaConsumer(bootstrap_servers=env.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        values: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while any([await consumer.position(p) < ends[p] for p in partitions]):
            assert asyncio.get_running_loop().time() < deadline, f"{topic} not read to its end"
            batches = await consumer.getmany(timeout_ms=500)
            values.extend(json.loads(r.value) for batch in batches.values() for r in batch)
        return values
    finally:
        await consumer.stop()


def _sid() -> str:
    return "SM" + uuid.uuid4().hex


def _reply(sid: str, body: str) -> dict[str, str]:
    """Build the form of an inbound message as Twilio posts it."""
    return {
        "AccountSid": TWILIO_SID,
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "From": PHONE,
        "To": "+358451234567",
        "Body": body,
        "NumMedia": "0",
    }


async def _post_signed(
    env: CitizenEnv, path: str, form: dict[str, str], token: str | None
) -> tuple[int, str]:
    """POST a form signed with Twilio's algorithm; ``token`` is the unsigned idempotency header."""
    url = env.base_url + path
    headers = {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, form)}
    if token is not None:
        headers["I-Twilio-Idempotency-Token"] = token
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=form, headers=headers) as response,
    ):
        return response.status, await response.text()


async def _sms_survey(env: CitizenEnv, survey_id: str) -> SurveyScheduled:
    return await env.publish_survey(
        survey_id, citizen=citizen_key_for(survey_id), channel=SurveyChannel.SMS, phone=PHONE
    )


def _ratings(
    env: CitizenEnv, answers: list[dict[str, Any]], scheduled: SurveyScheduled
) -> list[int]:
    """Fold the answers in topic order through the join: the score of each Rating revision."""
    del env
    facts = TouchpointFacts(service="Puhelinpalvelu", channel=TouchpointChannel.PHONE)
    state = on_scheduled(SurveyAnswers(), scheduled, facts).state
    scores: list[int] = []
    for answer in answers:
        if answer["type"] != "RatingReceived":
            continue
        result = on_answer(state, RatingReceived.model_validate(answer), facts)
        state = result.state
        scores.extend(rating.score for rating in result.ratings)
    return scores


async def test_a_signed_reply_replayed_with_another_token_or_none_is_written_once(
    env: CitizenEnv,
) -> None:
    """The idempotency token is not signed: only the signed MessageSid tells a repeat."""
    await _sms_survey(env, "s-replay")
    form = _reply(_sid(), "4")
    for token in ("first-token", "another-token", None, ""):
        status, body = await _post_signed(env, "/twilio/inbound", form, token)
        assert status == 200
        assert "Kiitos vastauksestasi!" in body  # a repeat is answered the same way
    answers = await _read_all(env, RESPONSES)
    assert [(a["type"], a["score"]) for a in answers] == [("RatingReceived", 4)]


async def test_a_replayed_older_four_never_overrides_the_citizens_later_two(
    env: CitizenEnv,
) -> None:
    """Even where the web service forgot the message (restart, other process), the join knows."""
    scheduled = await _sms_survey(env, "s-order")
    older = _reply(_sid(), "4")
    newer = _reply(_sid(), "2")
    assert (await _post_signed(env, "/twilio/inbound", older, "t-1"))[0] == 200
    assert (await _post_signed(env, "/twilio/inbound", newer, "t-2"))[0] == 200
    assert (await _post_signed(env, "/twilio/inbound", older, "t-replayed"))[0] == 200
    # Another web process (or this one restarted) has not seen the older message.
    assert env.app is not None
    env.app[TWILIO].recent = RecentIds(100_000)
    assert (await _post_signed(env, "/twilio/inbound", older, None))[0] == 200

    answers = await _read_all(env, RESPONSES)
    scores = [a["score"] for a in answers if a["type"] == "RatingReceived"]
    assert scores == [4, 2, 4]  # the same process wrote it once; the forgetful one again
    ids = [a["answer_id"] for a in answers]
    assert ids[2] == ids[0]  # ... as the same answer, named by its message
    assert not any(character.isdigit() for character in ids[0])
    assert _ratings(env, answers, scheduled) == [4, 2]  # the replay changed nothing


async def test_a_status_callback_is_reported_once_per_message_and_status(env: CitizenEnv) -> None:
    """Twilio retries callbacks and anyone may replay them: one report per state reached."""
    sid = _sid()
    await env.publish_survey(
        "s-callback",
        citizen=citizen_key_for("callback"),
        channel=SurveyChannel.SMS,
        phone=PHONE,
        provider_message_id=sid,
    )
    undelivered = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    delivered = {"MessageSid": sid, "MessageStatus": "delivered"}
    for form, token in (
        (undelivered, "a"),
        (undelivered, "a"),
        (undelivered, "b"),
        (undelivered, None),
        (delivered, "c"),
        (delivered, None),
    ):
        assert (await _post_signed(env, "/twilio/status", form, token))[0] == 204
    events = await _read_all(env, SURVEYS)
    reports = [
        (e["status"], e["provider_error_code"]) for e in events if e["type"] == "DeliveryReported"
    ]
    assert reports == [("undelivered", "30003"), ("delivered", None)]


async def test_an_inbound_request_without_a_message_sid_is_refused_with_a_reason(
    env: CitizenEnv,
) -> None:
    """Twilio always sends one; a signed form without it cannot be told from its replays."""
    await _sms_survey(env, "s-nosid")
    form = _reply("x", "5")
    del form["MessageSid"]
    status, _body = await _post_signed(env, "/twilio/inbound", form, "t")
    assert status == 400
    assert await _read_all(env, RESPONSES) == []
