"""Fixtures shared by the whole suite: a real Kafka broker, fresh topics and groups.

The broker is the project's own local Kafka (``palaute kafka``), started once
per test session on a dedicated port unless ``KAFKA_BOOTSTRAP_SERVERS`` points
at one already running. Test sessions running at the same time share it; the
last one to finish stops it. Under pytest-xdist (``make pytest`` runs two
processes) each process has a broker of its own, on a port of its own, so a
busy test in one never waits on the other's broker. Every test gets its own
topics and consumer groups (uuid4 names), so no test ever reads another's
records.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from ops.kafka import (
    LocalKafka,
    LocalKafkaError,
    TopicFactory,
    create_topic,
    default_cache_dir,
    delete_topics,
    load_settings,
    shared_broker,
)
from tests.fixtures import run_suffix, run_topics

__all__ = ["run_suffix", "run_topics"]

if TYPE_CHECKING:
    from collections.abc import Iterator

# Hypothesis's deadline per example (200 ms) measures the machine, not the code:
# on a busy 2-core machine one example can take longer, and a test failed by chance.
settings.register_profile("palaute", deadline=None)
settings.load_profile("palaute")

TEST_KAFKA_PORT = 29092
"""Away from 9092, so a developer's own broker and its data are never touched, and below
Linux's ephemeral range (32768-60999): a port in it can be held, in TIME_WAIT, by any
client connection that happened to get it, and the broker then cannot start."""


def broker_port() -> int:
    """Give this test process's broker port: ``PALAUTE_TEST_KAFKA_PORT``, moved per xdist worker.

    A broker takes two ports (its own and the controller's, the next one up),
    so xdist worker ``gwN`` takes the pair ``2 * N`` above the configured port.
    """
    base = int(os.environ.get("PALAUTE_TEST_KAFKA_PORT", str(TEST_KAFKA_PORT)))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return base + 2 * int(worker.removeprefix("gw"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test a node id of its own, or stop: pytest-xdist would lose tests.

    schemathesis makes one test per API operation, named ``test[GET /path]``,
    but under pytest 9.2 all of them get the test function's node id. One
    process runs them all; pytest-xdist's file-wise distribution keys the
    tests by node id and would run one of them and drop the rest unnoticed.
    """
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.parent is not None:
            # The name, unlike the node id, says which operation the test is for.
            item._id = item.parent.id.child(item.name)
    counts = Counter(item.nodeid for item in items)
    repeated = sorted(nodeid for nodeid, count in counts.items() if count > 1)
    if repeated:
        raise pytest.UsageError(f"tests share a node id, so one would not run: {repeated}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Yield ``host:port`` of a real broker that takes requests for the whole session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return
    port = broker_port()
    try:
        settings = load_settings(
            port=port,
            controller_port=port + 1,
            # One state directory per port: brokers on other ports run side by side.
            state_dir=default_cache_dir()
            / ("run-test" if port == TEST_KAFKA_PORT else f"run-test-{port}"),
            # The JVM may take over a minute to start on a busy 2-core machine.
            startup_timeout=180.0,
        )
        with shared_broker(LocalKafka(settings)) as status:
            yield status.bootstrap_servers
    except LocalKafkaError as error:
        # The message carries the broker log's last lines: the reason is on screen.
        pytest.fail(f"could not start the test Kafka broker: {error}", pytrace=False)


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Iterator[TopicFactory]:
    """Make fresh topics for one test, and delete them after it.

    Topics are created (not auto-created) so the partition count is what the
    test asked for, and every partition has a leader before the test writes.
    """
    created: list[str] = []

    def make(prefix: str = "t", partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex}"
        create_topic(kafka_bootstrap, name, partitions=partitions)
        created.append(name)
        return name

    yield make
    if created:
        delete_topics(kafka_bootstrap, created)


@pytest.fixture
def unique_group() -> str:
    """Return a consumer group id that no other test (or earlier run) has used."""
    return f"g-{uuid.uuid4().hex}"
