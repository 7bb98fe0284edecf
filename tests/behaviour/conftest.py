"""The ``intake`` and ``join`` fixtures: the same behaviour tests in memory and on Kafka."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

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
from tests.integration.dispatch_harness import (
    PARTITIONS,
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
