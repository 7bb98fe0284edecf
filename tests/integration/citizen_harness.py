"""A real web service on 127.0.0.1 against a real broker, for the citizen-facing tests.

Each test gets its own topic suffix (surveys, vault, responses, ratings,
contacts, dead letters), a free port, and a web service built by
``create_web_app`` that reads its survey index from Kafka as in production.
Surveys are published the way the intake and dispatcher do (vault details,
SurveyScheduled, SurveySent), and what the service writes is read back from
the topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.web import create_web_app
from connectors.web.ingress import kafka_producer
from connectors.web.pages import PAGES, link_signer
from engine.tokens import TokenPayload, TokenPurpose
from ops.kafka import create_topic
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import Settings
from schemas.surveys import SurveyScheduled, SurveySent
from schemas.topics import COMMENTS, CONTACTS, DEADLETTER, RATINGS, RESPONSES, SURVEYS, VAULT
from schemas.vault import ContactDetails
from tests.fixtures import delete_run_topics

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from connectors.web.open_surveys import SurveyIndex

PSEUDONYMISATION_KEY = "citizen-tests-pseudonymisation-key-0123456789"
LINK_SIGNING_KEY = "citizen-tests-link-signing-key-9876543210abcdef"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "simulator-auth-token"
PARTITIONS = 2
ALL_TOPICS = (CONTACTS, SURVEYS, VAULT, RESPONSES, COMMENTS, RATINGS, DEADLETTER)
INTERNAL_TOPICS = ("contacts-by-citizen", "surveys-by-id", "answers-by-survey")
#: How long a step of the web service or a worker may take on a busy 2-core machine.
WAIT_SECONDS = 120.0


def free_port() -> int:
    """Find a port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def citizen_key_for(label: str) -> str:
    """Make up a pseudonymous key (hex), distinct per label."""
    return uuid.uuid5(uuid.NAMESPACE_URL, label).hex * 2


@dataclass
class CitizenEnv:
    """One test's topics, settings and running web service."""

    bootstrap: str
    suffix: str
    port: int
    settings: Settings
    producer: AIOKafkaProducer | None = None
    runner: web.AppRunner | None = None
    app: web.Application | None = None

    @property
    def base_url(self) -> str:
        """Where the web service listens (and, here, its public base URL)."""
        return f"http://127.0.0.1:{self.port}"

    def topic(self, base: str) -> str:
        """Name a topic as this test's own."""
        return base + self.suffix

    @property
    def index(self) -> SurveyIndex:
        """The running service's index of open surveys."""
        assert self.app is not None
        return self.app[PAGES].index

    def sms_link(self, survey_id: str) -> str:
        """Write a survey's SMS link, by its code, as the dispatcher does."""
        return f"{self.base_url}/r/{link_signer(self.settings).survey_code(survey_id)}"

    def link(self, survey_id: str, purpose: TokenPurpose, score: int | None = None) -> str:
        """Sign a link of a survey, as the dispatcher writes it."""
        now = datetime.now(UTC)
        payload = TokenPayload(survey_id, purpose, now + timedelta(days=2), score)
        token = link_signer(self.settings).sign(payload, now)
        prefix = "/u/" if purpose is TokenPurpose.UNSUBSCRIBE else "/r/"
        return self.base_url + prefix + token

    async def publish_survey(
        self,
        survey_id: str,
        *,
        citizen: str,
        channel: SurveyChannel = SurveyChannel.EMAIL,
        language: Language = Language.FI,
        scale: Scale = Scale.CSAT_5,
        phone: str | None = None,
        email: str | None = None,
        sent_ago: timedelta = timedelta(minutes=5),
        touchpoint_id: str = "phone-service",
        provider_message_id: str | None = None,
    ) -> SurveyScheduled:
        """Publish a sent survey as intake and dispatcher do, and wait until the index has it."""
        assert self.producer is not None
        now = datetime.now(UTC)
        sent_at = now - sent_ago
        common: dict[str, Any] = {
            "survey_id": survey_id,
            "citizen_key": citizen,
            "contact_id": f"contact-{survey_id}",
            "touchpoint_id": touchpoint_id,
        }
        details = ContactDetails(
            survey_id=survey_id,
            citizen_key=citizen,
            phone=phone,
            email=email,
            language=language,
            stored_at=sent_at,
        )
        scheduled = SurveyScheduled(
            **common,
            occurred_at=sent_at - timedelta(minutes=10),
            channel=channel,
            language=language,
            scale=scale,
            contact_ended_at=sent_at - timedelta(minutes=20),
            send_at=sent_at,
            expires_at=sent_at + timedelta(days=2),
        )
        sent = SurveySent(
            **common,
            occurred_at=sent_at,
            channel=channel,
            provider_message_id=provider_message_id,
        )
        await self.producer.send_and_wait(
            self.topic(VAULT), key=survey_id.encode(), value=details.model_dump_json().encode()
        )
        for event in (scheduled, sent):
            await self.producer.send_and_wait(
                self.topic(SURVEYS), key=citizen.encode(), value=event.model_dump_json().encode()
            )
        # A deadline, not a count of polls: on a busy machine the index can take long.
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            known = self.index.get(survey_id)
            if known is not None and known.sent_at is not None:
                return scheduled
            await asyncio.sleep(0.05)
        raise AssertionError(f"the web service never learnt of survey {survey_id}")


#: A touchpoint with follow-up statements; other touchpoints have none.
STATEMENTS_TOUCHPOINT = "statements-service"
STATEMENTS = [
    {
        "fi": "Sain tarvitsemani avun.",
        "sv": "Jag fick den hjälp jag behövde.",
        "en": "I got the help I needed.",
    },
    {
        "fi": "Asiointi oli helppoa.",
        "sv": "Det var lätt att uträtta ärendet.",
        "en": "It was easy to get things done.",
    },
]


#: A THL-style touchpoint: its own 0-10 recommendation question.
NPS_TOUCHPOINT = "health-centre-visit"
NPS_QUESTION = {
    "fi": "Kuinka todennäköisesti suosittelisit terveysasemaa?",
    "sv": "Hur troligt är det att du rekommenderar stationen?",
    "en": "How likely are you to recommend the health centre?",
}
#: Who asks in the citizen tests.
ORGANISATION = {"fi": "Testikaupunki", "sv": "Teststad", "en": "Test City"}
PRIVACY_URL = "https://palaute.example.fi/tietosuoja"


def make_settings(
    bootstrap: str,
    suffix: str,
    port: int,
    data_dir: str,
    *,
    max_body: int = 64 * 1024,
    kafka: dict[str, Any] | None = None,
) -> Settings:
    """Build a test's settings: its broker, suffix, port and the simulator's account.

    ``kafka`` replaces the ``[kafka]`` section (a secured listener of the broker).
    """
    return Settings.model_validate(
        {
            "kafka": kafka or {"bootstrap_servers": [bootstrap]},
            "secrets": {
                "pseudonymisation_key": PSEUDONYMISATION_KEY,
                "link_signing_key": LINK_SIGNING_KEY,
            },
            "streams": {"topic_suffix": suffix, "partitions": PARTITIONS, "data_dir": data_dir},
            "web": {"public_base_url": f"http://127.0.0.1:{port}", "bind_port": port},
            "ingress": {"max_body_bytes": max_body},
            "defaults": {"organisation": {"name": ORGANISATION, "privacy_url": PRIVACY_URL}},
            "touchpoints": {
                STATEMENTS_TOUCHPOINT: {"follow_up_statements": STATEMENTS},
                NPS_TOUCHPOINT: {
                    "name": "Terveysaseman vastaanotto",
                    "scale": "nps-11",
                    "questions": NPS_QUESTION,
                },
            },
            "twilio": {
                "account_sid": TWILIO_SID,
                "auth_token": TWILIO_TOKEN,
                "from_number": "+358451234567",
            },
        }
    )


@contextlib.asynccontextmanager
async def running_citizen_web(
    bootstrap: str, data_dir: str, *, kafka: dict[str, Any] | None = None
) -> AsyncIterator[CitizenEnv]:
    """Create the test's topics and serve the web service until the test ends.

    With ``kafka`` the service reaches the broker by those settings (a TLS or
    SASL listener); the harness's own reads and topic admin keep ``bootstrap``.
    """
    suffix = f".t{uuid.uuid4().hex[:12]}"
    port = free_port()
    settings = make_settings(bootstrap, suffix, port, data_dir, kafka=kafka)
    env = CitizenEnv(bootstrap, suffix, port, settings)
    # The stages' repartition topics too: one a worker creates just before
    # joining its group can be missing from its first assignment.
    internal = [f"palaute{suffix}-{name}" for name in INTERNAL_TOPICS]
    for name in [*(env.topic(base) for base in ALL_TOPICS), *internal]:
        create_topic(bootstrap, name, partitions=PARTITIONS)
    env.producer = kafka_producer(env.settings.kafka)
    await env.producer.start()
    env.app = create_web_app(env.settings, producer=env.producer)
    env.runner = web.AppRunner(env.app, access_log=None)
    try:
        await env.runner.setup()
        await web.TCPSite(env.runner, "127.0.0.1", port).start()
        await asyncio.wait_for(env.index.ready.wait(), WAIT_SECONDS)
        yield env
    finally:
        await env.runner.cleanup()
        await env.producer.stop()
        await delete_run_topics(bootstrap, suffix)


async def read_topic(
    bootstrap: str, topic: str, *, settle: float = 1.0, expect: int | None = None
) -> list[dict[str, Any]]:
    """Read a topic's values (JSON) until ``expect`` arrived or ``settle`` s pass quietly."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        values: list[dict[str, Any]] = []
        quiet_since = asyncio.get_running_loop().time()
        deadline = quiet_since + WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            fresh = [record for batch in batches.values() for record in batch]
            values.extend(json.loads(record.value) for record in fresh)
            now = asyncio.get_running_loop().time()
            if fresh:
                quiet_since = now
            if expect is not None and len(values) >= expect:
                break
            if expect is None and now - quiet_since >= settle:
                break
        return values
    finally:
        await consumer.stop()
