"""One behaviour suite, two runtimes: the metrics, roll-up and alerting stages as a test sees them.

A behaviour test writes Ratings to the ratings topic (keyed by touchpoint,
in the partition where the metrics stage counts the touchpoint, as the
answers join writes them) and raw records to the ratings or alerts topic,
and waits for the figures on the metrics topic, the alerts, the
notifications a webhook receiver got and the dead letters.
:class:`MemoryMetrics` runs the three stages on the in-memory runtime,
writes the publish ticks the worker's timer would, and carries out the
alerting stage's effects with the worker's own performer and the real
webhook notifier; :class:`KafkaMetrics` feeds ``palaute worker`` on the
session's broker, configured with the same webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from connectors.notifiers import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    signature,
)
from schemas.alerts import ScoreDropAlert
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.contacts import TouchpointChannel
from schemas.deadletter import DeadLetter
from schemas.metrics import TouchpointMetrics
from schemas.responses import Rating
from schemas.topics import TopicNames
from streams.alerting import performer
from streams.partitioning import key_partition, touchpoint_partition
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.memory import MemoryBroker, MemoryRuntime
from streams.runtime.model import Produce
from streams.stages.alerting import DeliverAlerts
from streams.stages.metrics import ALERTS, BY_KEY, METRICS, ROLLUP, CountMetrics
from streams.stages.metrics_rules import PUBLISH_TICK
from streams.stages.rollups import CombineRollups

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

    from streams.runtime.model import Stage
    from tests.integration.dispatch_harness import Reader, Worker

WEBHOOK_SECRET = b"behaviour-webhook-secret-0123456789abcdef"
#: The touchpoint with a CSAT target in the behaviour suite's configuration.
TARGETED = "tp-targeted"
CSAT_TARGET = 0.8
MEMORY_TOPICS = {
    BY_KEY: "by-key",
    METRICS: "metrics",
    ALERTS: "alerts",
    ROLLUP: "rollup",
    DEADLETTER: "dlq",
}


def alerts_config(webhook: str) -> str:
    """Give what the suite adds to the configuration: a CSAT target, the webhook, 1 s publishing."""
    return f"""
[metrics]
emit_interval = "1s"

[alerts]
csat_targets = {{ "{TARGETED}" = {CSAT_TARGET} }}
webhook_url = "{webhook}"
webhook_secret = "{WEBHOOK_SECRET.decode()}"
webhook_attempts = 3
"""


def rating(
    survey_id: str,
    score: int,
    *,
    touchpoint_id: str,
    revision: int = 1,
    channel: TouchpointChannel = TouchpointChannel.PHONE,
    at: datetime | None = None,
) -> Rating:
    """Make a Rating as the answers join publishes it, answered a minute ago unless ``at`` says."""
    return Rating(
        rating_id=f"{survey_id}.{revision}",
        survey_id=survey_id,
        revision=revision,
        touchpoint_id=touchpoint_id,
        service="tax",
        touchpoint_channel=channel,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=60.0,
        answered_at=at or datetime.now(UTC) - timedelta(minutes=1),
    )


@dataclass
class Hooks:
    """What the webhook receiver got: each alert id and state, and whether it was signed."""

    received: list[tuple[str, str]] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)


@contextlib.asynccontextmanager
async def webhook_receiver(hooks: Hooks) -> AsyncIterator[str]:
    """Receive the webhook notifier's posts on a local port; give the hook's address."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = signature(WEBHOOK_SECRET, request.headers[TIMESTAMP_HEADER], body)
        hooks.verified.append(hmac.compare_digest(expected, request.headers[SIGNATURE_HEADER]))
        # The alert, with a summary for chat tools beside it.
        posted = json.loads(body)
        hooks.received.append((posted["alert_id"], posted["state"]))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


@dataclass
class Outcome:
    """What the stages wrote so far: figures by key, alerts, notifications, dead letters."""

    figures: dict[str, TouchpointMetrics] = field(default_factory=dict)
    alerts: list[ScoreDropAlert] = field(default_factory=list)
    notified: list[tuple[str, str]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def count(self, owner: str, window: str = "24h") -> int | None:
        """Give the latest count published for a key and window, None before any."""
        figures = self.figures.get(f"{owner}:{window}")
        return None if figures is None else figures.count


def outcome_of(
    metrics: Sequence[tuple[bytes | None, bytes | None]],
    alerts: Sequence[bytes | None],
    dead: Sequence[Sequence[tuple[str, bytes | None]]],
    hooks: Hooks,
) -> Outcome:
    """Read what the topics hold into an outcome; the latest figures of each key count."""
    outcome = Outcome(notified=list(hooks.received))
    for key, value in metrics:
        outcome.figures[(key or b"").decode()] = TouchpointMetrics.model_validate_json(value or b"")
    for value in alerts:
        with contextlib.suppress(ValidationError):  # a test's stranger on the alerts topic
            outcome.alerts.append(ScoreDropAlert.model_validate_json(value or b""))
    outcome.dead_letters = [DeadLetter.from_headers(list(headers)) for headers in dead]
    assert all(hooks.verified), "a notification was not signed with the configured secret"
    return outcome


class MetricsHarness(Protocol):
    """What a behaviour test of the metrics and alerting needs, whichever runtime is under it."""

    partitions: int

    async def rating(self, rating: Rating) -> None:
        """Write a Rating where the answers join would."""

    async def raw(self, topic: str, key: bytes, value: bytes) -> None:
        """Write a raw record to the ``ratings`` or ``alerts`` topic."""

    async def settle(self, done: Callable[[Outcome], bool]) -> Outcome:
        """Run until ``done`` holds of the outcome (and a little longer, for repeats)."""


class MemoryMetrics:
    """The metrics, roll-up and alerting stages on the in-memory runtime."""

    def __init__(self, config: Path, hooks: Hooks, webhook: str) -> None:
        settings = load_settings(config)
        self.partitions = partitions = settings.streams.partitions
        self.hooks = hooks
        self.broker = MemoryBroker(partitions=partitions)
        perform = performer([WebhookNotifier(webhook, WEBHOOK_SECRET, attempts=1)])

        async def carry_out(stage: Stage, effects: Sequence[Any]) -> None:
            del stage
            await perform(effects)

        self.runtime = MemoryRuntime(self.broker, perform=carry_out)

        def partition_of(owner: str) -> int:
            return key_partition(owner.encode(), partitions)

        stage = CountMetrics(settings, ratings_topic="ratings", partition_of=partition_of)
        windows = list(settings.metrics.windows)
        self.runtime.add(stage, ("ratings", "by-key"), MEMORY_TOPICS)
        self.runtime.add(CombineRollups(windows, partition_of), "rollup", MEMORY_TOPICS)
        self.runtime.add(DeliverAlerts(), "alerts", MEMORY_TOPICS)

    async def rating(self, rating: Rating) -> None:
        """Append to the touchpoint's partition of the ratings topic."""
        partition = touchpoint_partition(rating.touchpoint_id, self.partitions)
        value = rating.model_dump_json().encode()
        key = rating.touchpoint_id.encode()
        self.broker.append("ratings", Produce("ratings", key, value, partition))

    async def raw(self, topic: str, key: bytes, value: bytes) -> None:
        """Append a raw record."""
        self.broker.send(topic, key, value)

    async def settle(self, done: Callable[[Outcome], bool]) -> Outcome:
        """Run dry, with a publish tick on every partition twice (parts, then their sums)."""
        await self.runtime.run_until_idle()
        for _ in range(2):
            for topic in ("by-key", "rollup"):
                for partition in range(self.partitions):
                    self.broker.append(topic, Produce(topic, b"tick", PUBLISH_TICK, partition))
            await self.runtime.run_until_idle()
        outcome = outcome_of(
            [(r.key, r.value) for r in self.broker.records("metrics")],
            [r.value for r in self.broker.records("alerts")],
            [r.headers for r in self.broker.records("dlq")],
            self.hooks,
        )
        assert done(outcome), outcome
        return outcome


class KafkaMetrics:
    """``palaute worker`` on the session's broker, fed and read with aiokafka."""

    def __init__(
        self,
        bootstrap: str,
        suffix: str,
        worker: Worker,
        readers: tuple[Reader, Reader, Reader],
        hooks: Hooks,
        *,
        partitions: int,
    ) -> None:
        self.bootstrap = bootstrap
        self.names = TopicNames.with_suffix(suffix)
        self.worker = worker
        self.readers = readers
        self.hooks = hooks
        self.partitions = partitions

    async def _send(self, topic: str, key: bytes, value: bytes, partition: int | None) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(topic, key=key, value=value, partition=partition)
        finally:
            await producer.stop()

    async def rating(self, rating: Rating) -> None:
        """Produce to the touchpoint's partition of the run's ratings topic."""
        partition = touchpoint_partition(rating.touchpoint_id, self.partitions)
        value = rating.model_dump_json().encode()
        await self._send(self.names.ratings, rating.touchpoint_id.encode(), value, partition)

    async def raw(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce a raw record to the run's ``ratings`` or ``alerts`` topic."""
        name = {"ratings": self.names.ratings, "alerts": self.names.alerts}[topic]
        await self._send(name, key, value, None)

    def _outcome(self) -> Outcome:
        metrics, alerts, dead = self.readers
        return outcome_of(
            [(r.key, r.value) for r in metrics.records],
            [r.value for r in alerts.records],
            [list(r.headers) for r in dead.records],
            self.hooks,
        )

    async def settle(self, done: Callable[[Outcome], bool], seconds: float = 120.0) -> Outcome:
        """Read until ``done`` holds, then three seconds more, so that a repeat would show."""
        deadline = time.monotonic() + seconds
        while not done(self._outcome()):
            assert self.worker.alive(), f"worker died:\n{self.worker.tail()}"
            late = f"timed out: {self._outcome()}\n{self.worker.tail()}"
            assert time.monotonic() < deadline, late
            for reader in self.readers:
                await reader.poll()
            await asyncio.sleep(0.05)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            for reader in self.readers:
                await reader.poll()
        return self._outcome()
