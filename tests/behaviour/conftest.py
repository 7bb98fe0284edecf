"""The ``intake`` and ``join`` fixtures: the same behaviour tests in memory and on Kafka."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from schemas.topics import TopicNames
from tests.behaviour.harness import IntakeHarness, KafkaIntake, MemoryIntake
from tests.behaviour.join_harness import JoinHarness, KafkaJoin, MemoryJoin
from tests.integration.dispatch_harness import (
    PARTITIONS,
    Reader,
    Worker,
    config_text,
    create_run_topics,
    delete_run_topics,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


def _config(tmp_path: Path, bootstrap: str, suffix: str) -> Path:
    path = tmp_path / "palaute.toml"
    # The dispatcher never sends (no citizen consents); the addresses only complete the file.
    path.write_text(
        config_text(
            bootstrap, suffix, tmp_path / "data", sim_url="http://127.0.0.1:9", smtp_port=9
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture(
    params=["memory", pytest.param("kafka", marks=pytest.mark.integration)],
)
async def intake(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IntakeHarness]:
    """Give the intake on one runtime: in memory, or a real worker on the session's broker."""
    if request.param == "memory":
        yield MemoryIntake(_config(tmp_path, "127.0.0.1:9", ""))
        return
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    suffix = create_run_topics(bootstrap)
    names = TopicNames.with_suffix(suffix)
    surveys, dead = Reader(bootstrap, names.surveys), Reader(bootstrap, names.deadletter)
    worker = Worker(_config(tmp_path, bootstrap, suffix), tmp_path / "worker.log")
    try:
        await surveys.start()
        await dead.start()
        worker.start()
        yield KafkaIntake(bootstrap, suffix, worker, (surveys, dead))
    finally:
        worker.stop()
        await surveys.stop()
        await dead.stop()
        await asyncio.to_thread(lambda: None)
        await delete_run_topics(bootstrap, suffix)


@pytest.fixture(
    params=["memory", pytest.param("kafka", marks=pytest.mark.integration)],
)
async def join(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JoinHarness]:
    """Give the answers join on one runtime: in memory, or a real worker on the broker."""
    if request.param == "memory":
        yield MemoryJoin(_config(tmp_path, "127.0.0.1:9", ""))
        return
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    suffix = create_run_topics(bootstrap)
    names = TopicNames.with_suffix(suffix)
    ratings, dead = Reader(bootstrap, names.ratings), Reader(bootstrap, names.deadletter)
    worker = Worker(_config(tmp_path, bootstrap, suffix), tmp_path / "worker.log")
    try:
        await ratings.start()
        await dead.start()
        worker.start()
        yield KafkaJoin(bootstrap, suffix, worker, (ratings, dead), PARTITIONS)
    finally:
        worker.stop()
        await ratings.stop()
        await dead.stop()
        await delete_run_topics(bootstrap, suffix)
