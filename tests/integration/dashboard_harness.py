"""Serve the web service with the dashboard for a test, on its own topics.

The test's figures are produced to a unique set of topics (a topic suffix per
test) on the real broker, and the web app reads them as it would in
production: from the beginning, without a consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.web import create_web_app
from connectors.web.board import FOLLOWER
from connectors.web.ingress import kafka_producer
from ops.kafka import create_topic, delete_topics
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity
from schemas.base import Scale
from schemas.config import Settings
from schemas.metrics import TouchpointMetrics
from schemas.topics import (
    ALERTS,
    COMMENTS,
    CONTACTS,
    DEADLETTER,
    HISTORY,
    METRICS,
    RATINGS,
    RESPONSES,
    SURVEYS,
    VAULT,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiokafka import AIOKafkaProducer
    from pydantic import BaseModel

    from schemas.history import HistoryCounts

TOKEN = secrets.token_urlsafe(32)
TOPICS = (
    CONTACTS,
    SURVEYS,
    VAULT,
    RESPONSES,
    COMMENTS,
    RATINGS,
    METRICS,
    HISTORY,
    ALERTS,
    DEADLETTER,
)
CATALOGUE: dict[str, dict[str, Any]] = {
    "phone-service": {"name": "Puhelinpalvelu", "kpi_target": 4.2},
    "health-centre": {
        "name": "Terveysasema",
        "kpi_target": 4.0,
        "service": {"fi": "Terveysasema", "sv": "Hälsostationen", "en": "Health centre"},
    },
    "library-desk": {"name": "Kirjaston palvelutiski"},
    "social-office": {"name": "Sosiaalitoimisto", "kpi_target": 3.8},
    "web-booking": {"name": "Ajanvaraus verkossa"},
}


def free_port() -> int:
    """Ask the kernel for a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metrics(
    touchpoint: str, window: str, counts: dict[int, int], *, sent: int, as_of: datetime
) -> TouchpointMetrics:
    """Build a window's figures on the 1-5 scale from a distribution, as the stage does."""
    count = sum(counts.values())
    mean = sum(score * n for score, n in counts.items()) / count
    top_two = sum(n for score, n in counts.items() if score >= 4)
    return TouchpointMetrics(
        key=touchpoint,
        window=window,
        as_of=as_of,
        scale=Scale.CSAT_5,
        count=count,
        mean=mean,
        distribution={str(score): n for score, n in counts.items()},
        csat_share=top_two / count,
        surveys_sent=sent,
        response_rate=count / sent,
    )


def firing_alert(touchpoint: str, *, at: datetime) -> ScoreDropAlert:
    """Build a drop alert as the detector writes it."""
    return ScoreDropAlert(
        alert_id=f"drop-{touchpoint}-1",
        touchpoint_id=touchpoint,
        kind=AlertKind.DROP,
        state=AlertState.FIRING,
        severity=Severity.CRITICAL,
        started_at=at,
        before=4.4,
        after=2.9,
        sample_size=31,
        evidence=Evidence(method="cusum", statistic=6.25, threshold=5.0, probability=0.004),
        summary=f"The mean score of {touchpoint} fell from 4.4 to 2.9 over 31 answers.",
    )


@dataclass
class DashboardEnv:
    """One test's broker, topics, settings and the running web app."""

    bootstrap: str
    suffix: str
    port: int
    settings: Settings
    producer: AIOKafkaProducer
    app: web.Application | None = None
    runner: web.AppRunner | None = field(default=None, repr=False)

    def topic(self, base: str) -> str:
        """Give a topic's name in this test."""
        return base + self.suffix

    def url(self, path: str) -> str:
        """Give the full URL of a path of the running app."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def publish(self, base: str, key: str, event: BaseModel) -> None:
        """Write one event and wait for the broker to have it."""
        delivery = await self.producer.send(
            self.topic(base), value=event.model_dump_json().encode(), key=key.encode()
        )
        await delivery

    async def publish_metrics(self, figures: TouchpointMetrics) -> None:
        """Write figures keyed as the metrics stage keys them."""
        await self.publish(METRICS, f"touchpoint:{figures.key}:{figures.window}", figures)

    async def publish_history(self, counts: HistoryCounts) -> None:
        """Write a bucket keyed as the history stage keys it."""
        await self.publish(HISTORY, counts.key, counts)

    async def start(self) -> None:
        """Serve the app and wait until it has read every topic."""
        self.app = create_web_app(self.settings, producer=self.producer)
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        async with asyncio.timeout(120):  # a busy 2-core machine reads slowly
            await self.app[FOLLOWER].wait_ready()


def make_settings(bootstrap: str, suffix: str, port: int, *, min_answers: int) -> Settings:
    """Build settings with one operator token, a five-touchpoint catalogue and a CSAT target."""
    return Settings.model_validate(
        {
            "kafka": {"bootstrap_servers": [bootstrap]},
            "secrets": {"pseudonymisation_key": "d" * 40, "link_signing_key": "e" * 40},
            "streams": {"topic_suffix": suffix, "partitions": 1},
            "web": {
                "public_base_url": f"http://127.0.0.1:{port}",
                "bind_port": port,
                "ops_token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()],
            },
            "touchpoints": CATALOGUE,
            "alerts": {"csat_targets": {"phone-service": 0.8}},
            "opendata": {"min_answers": min_answers, "publisher": "Testialue"},
        }
    )


@contextlib.asynccontextmanager
async def dashboard_env(bootstrap: str, *, min_answers: int = 10) -> AsyncIterator[DashboardEnv]:
    """Create the test's topics and a producer; the test starts the app when it is ready."""
    suffix = f".d{uuid.uuid4().hex[:12]}"
    port = free_port()
    settings = make_settings(bootstrap, suffix, port, min_answers=min_answers)
    names = [base + suffix for base in TOPICS]
    for name in names:
        create_topic(bootstrap, name, partitions=1)
    producer = kafka_producer(settings.kafka)
    await producer.start()
    env = DashboardEnv(bootstrap, suffix, port, settings, producer)
    try:
        yield env
    finally:
        if env.runner is not None:
            await env.runner.cleanup()
        await producer.stop()
        await asyncio.to_thread(delete_topics, bootstrap, names)


def now() -> datetime:
    """Give the wall clock in UTC (the app reads it too)."""
    return datetime.now(UTC)
