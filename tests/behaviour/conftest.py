"""The behaviour suite's fixtures: the same tests in memory and on Kafka.

``intake``, ``join``, ``metrics`` and ``scheduling`` (with ``quiet_scheduling``, whose
quiet hours end a minute or two after the test begins) give each stage on
one runtime.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from schemas.topics import TopicNames
from tests.behaviour.harness import IntakeHarness, KafkaIntake, MemoryIntake
from tests.behaviour.join_harness import JoinHarness, KafkaJoin, MemoryJoin
from tests.behaviour.metrics_harness import (
    Hooks,
    KafkaMetrics,
    MemoryMetrics,
    MetricsHarness,
    alerts_config,
    webhook_receiver,
)
from tests.behaviour.scheduling_harness import KafkaScheduling, MemoryScheduling, SchedulingHarness
from tests.integration.dispatch_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PARTITIONS,
    SENDER,
    Reader,
    Worker,
    config_text,
    create_run_topics,
    delete_run_topics,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path


def _config(tmp_path: Path, bootstrap: str, suffix: str, extra: str = "") -> Path:
    path = tmp_path / "palaute.toml"
    # The dispatcher never sends (no citizen consents); the addresses only complete the file.
    path.write_text(
        config_text(
            bootstrap,
            suffix,
            tmp_path / "data",
            sim_url="http://127.0.0.1:9",
            smtp_port=9,
            extra=extra,
        ),
        encoding="utf-8",
    )
    return path


def _intake_topics(names: TopicNames) -> list[str]:
    return [names.surveys, names.deadletter]


def _join_topics(names: TopicNames) -> list[str]:
    return [names.ratings, names.deadletter]


def _metrics_topics(names: TopicNames) -> list[str]:
    return [names.metrics, names.alerts, names.deadletter]


@contextlib.asynccontextmanager
async def _running_worker(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    read: Callable[[TopicNames], list[str]],
    extra: str = "",
) -> AsyncIterator[tuple[str, str, Worker, tuple[Reader, ...]]]:
    """Start a worker on fresh run topics, with readers of the topics ``read`` names."""
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    suffix = create_run_topics(bootstrap)
    readers = tuple(Reader(bootstrap, topic) for topic in read(TopicNames.with_suffix(suffix)))
    worker = Worker(_config(tmp_path, bootstrap, suffix, extra), tmp_path / "worker.log")
    try:
        for reader in readers:
            await reader.start()
        worker.start()
        yield bootstrap, suffix, worker, readers
    finally:
        worker.stop()
        for reader in readers:
            await reader.stop()
        await delete_run_topics(bootstrap, suffix)


@pytest.fixture(
    params=["memory", pytest.param("kafka", marks=pytest.mark.integration)],
)
async def intake(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IntakeHarness]:
    """Give the intake on one runtime: in memory, or a real worker on the session's broker."""
    if request.param == "memory":
        yield MemoryIntake(_config(tmp_path, "127.0.0.1:9", ""))
        return
    async with _running_worker(request, tmp_path, _intake_topics) as (
        bootstrap,
        suffix,
        worker,
        readers,
    ):
        surveys, dead = readers
        yield KafkaIntake(bootstrap, suffix, worker, (surveys, dead))


@pytest.fixture(
    params=["memory", pytest.param("kafka", marks=pytest.mark.integration)],
)
async def join(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JoinHarness]:
    """Give the answers join on one runtime: in memory, or a real worker on the broker."""
    if request.param == "memory":
        yield MemoryJoin(_config(tmp_path, "127.0.0.1:9", ""))
        return
    async with _running_worker(request, tmp_path, _join_topics) as (
        bootstrap,
        suffix,
        worker,
        readers,
    ):
        ratings, dead = readers
        yield KafkaJoin(bootstrap, suffix, worker, (ratings, dead), PARTITIONS)


@pytest.fixture(
    params=["memory", pytest.param("kafka", marks=pytest.mark.integration)],
)
async def metrics(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetricsHarness]:
    """Give the metrics, roll-up and alerting stages on one runtime, notifying a local webhook."""
    hooks = Hooks()
    async with webhook_receiver(hooks) as webhook:
        extra = alerts_config(webhook)
        if request.param == "memory":
            yield MemoryMetrics(_config(tmp_path, "127.0.0.1:9", "", extra), hooks, webhook)
            return
        async with _running_worker(request, tmp_path, _metrics_topics, extra) as (
            bootstrap,
            suffix,
            worker,
            readers,
        ):
            figures, alerts, dead = readers
            readers3 = (figures, alerts, dead)
            yield KafkaMetrics(bootstrap, suffix, worker, readers3, hooks, partitions=PARTITIONS)


#: The scheduler's settings in the behaviour tests: ticks every second, room to send.
SCHEDULING = """
[dispatch]
tick = "1s"
sms_per_second = 50
burst = 10
"""
#: Where the in-memory clock starts: a working Tuesday, noon in Helsinki.
MEMORY_START = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)


def _quiet_hours(start: datetime) -> tuple[str, str, datetime]:
    """Quiet hours from an hour before ``start`` until the minute after next, in Helsinki."""
    local = start.astimezone(ZoneInfo("Europe/Helsinki"))
    ends = (local + timedelta(minutes=2)).replace(second=0, microsecond=0)
    begins = local - timedelta(hours=1)
    return begins.strftime("%H:%M"), ends.strftime("%H:%M"), ends.astimezone(UTC)


def _scheduling_config(
    tmp_path: Path, bootstrap: str, suffix: str, sim_url: str, quiet: tuple[str, str] | None
) -> Path:
    text = config_text(
        bootstrap, suffix, tmp_path / "data", sim_url=sim_url, smtp_port=9, extra=SCHEDULING
    )
    if quiet is not None:
        text = text.replace('quiet_hours_start = "00:00"', f'quiet_hours_start = "{quiet[0]}"')
        text = text.replace('quiet_hours_end = "00:00"', f'quiet_hours_end = "{quiet[1]}"')
    path = tmp_path / "palaute.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def _scheduling(
    request: pytest.FixtureRequest, tmp_path: Path, *, quiet: bool
) -> AsyncIterator[tuple[SchedulingHarness, datetime | None]]:
    """Give the scheduler on the fixture's runtime, and when its quiet hours end (if any)."""
    start = MEMORY_START if request.param == "memory" else datetime.now(UTC)
    hours = _quiet_hours(start) if quiet else None
    window = None if hours is None else (hours[0], hours[1])
    quiet_end = None if hours is None else hours[2]
    if request.param == "memory":
        config = _scheduling_config(tmp_path, "127.0.0.1:9", "", "http://127.0.0.1:9", window)
        yield MemoryScheduling(config, start), quiet_end
        return
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    simulator = TwilioSimulator(
        SimulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER)
    )
    sim_url = await simulator.start("127.0.0.1", 0)
    suffix = create_run_topics(bootstrap)
    config = _scheduling_config(tmp_path, bootstrap, suffix, sim_url, window)
    surveys = Reader(bootstrap, TopicNames.with_suffix(suffix).surveys)
    worker = Worker(config, tmp_path / "worker.log")
    try:
        await surveys.start()
        worker.start()
        yield KafkaScheduling(bootstrap, suffix, worker, surveys, simulator), quiet_end
    finally:
        worker.stop()
        await surveys.stop()
        await simulator.stop()
        await delete_run_topics(bootstrap, suffix)


@pytest.fixture(
    params=["memory", pytest.param("kafka", marks=pytest.mark.integration)],
)
async def scheduling(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SchedulingHarness]:
    """Give the scheduler on one runtime: in memory, or a real worker on the broker."""
    async with _scheduling(request, tmp_path, quiet=False) as (harness, _):
        yield harness


@pytest.fixture(
    params=[
        "memory",
        pytest.param("kafka", marks=[pytest.mark.integration, pytest.mark.slow]),
    ],
)
async def quiet_scheduling(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SchedulingHarness, datetime]]:
    """Give the scheduler in quiet hours that end a minute or two from now, and their end."""
    async with _scheduling(request, tmp_path, quiet=True) as (harness, quiet_end):
        assert quiet_end is not None
        yield harness, quiet_end
