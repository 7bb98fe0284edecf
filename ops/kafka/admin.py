"""Ask a broker whether it serves requests, and manage throwaway topics.

These run from synchronous code (the command line, pytest fixtures) that may
sit inside a thread whose event loop is already running or merely set, so each
call runs its coroutine on a private loop in a private thread and leaves the
caller's loop alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol, TypeVar

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from connectors.kafka_client import client_options, local_broker
from ops.kafka.errors import TopicAdminError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator
    from typing import Any

_T = TypeVar("_T")
_QUIET_LOGGERS = ("aiokafka.client", "aiokafka.conn")


class TopicFactory(Protocol):
    """The ``unique_topic`` test fixture: makes a fresh topic and returns its name."""

    def __call__(self, prefix: str = "t", partitions: int = 1) -> str:
        """Create ``<prefix>-<uuid4 hex>`` with ``partitions`` partitions."""
        ...


class _OnlyOtherThreads(logging.Filter):
    """Drop aiokafka's connection errors raised by our own probing thread.

    While the broker starts, "Unable connect" is the expected answer and not
    worth a line on the user's terminal; other threads still log normally.
    """

    def __init__(self, thread_id: int) -> None:
        super().__init__()
        self._thread_id = thread_id

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self._thread_id


def run_blocking(make_coroutine: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion on a fresh loop in a worker thread."""

    def in_thread() -> _T:
        quiet = _OnlyOtherThreads(threading.get_ident())
        loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
        for logger in loggers:
            logger.addFilter(quiet)
        try:
            return asyncio.run(make_coroutine())
        finally:
            for logger in loggers:
                logger.removeFilter(quiet)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="palaute-kafka-admin") as pool:
        return pool.submit(in_thread).result()


def broker_answers(bootstrap_servers: str, timeout: float = 5.0) -> bool:
    """Whether the broker answers a metadata request and lists itself in it.

    An open port is not enough: the JVM binds its listener before the node has
    joined the KRaft quorum, and a fenced broker is left out of metadata. A
    broker that lists itself can create topics and take writes.
    """

    async def probe() -> bool:
        client = AIOKafkaClient(
            **client_options(local_broker(bootstrap_servers), client_id_suffix="-kafka-probe"),
            request_timeout_ms=int(timeout * 1000),
        )
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return bool(client.cluster.brokers())
        except Exception:  # noqa: BLE001  any failure while starting means "not yet"
            return False
        finally:
            await client.close()

    return run_blocking(probe)


def create_topic(
    bootstrap_servers: str,
    name: str,
    *,
    partitions: int = 1,
    timeout: float = 30.0,
    configs: dict[str, str] | None = None,
) -> None:
    """Create a topic and wait until every partition has a leader.

    Waiting for leaders spares tests a first produce that fails or retries
    while the new partitions are still being assigned. ``configs`` are topic
    settings such as ``{"cleanup.policy": "compact"}``.
    """

    async def create() -> None:
        admin = AIOKafkaAdminClient(
            **client_options(local_broker(bootstrap_servers)),
            request_timeout_ms=int(timeout * 1000),
        )
        await admin.start()
        try:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=name,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs=configs or {},
                    )
                ]
            )
            _raise_for_errors("create", response.topic_errors)
            deadline = time.monotonic() + timeout
            while not _has_leaders(await admin.describe_topics([name]), partitions):
                if time.monotonic() >= deadline:
                    raise TopicAdminError(f"topic {name} has no leader after {timeout:.0f} s")
                await asyncio.sleep(0.05)
        finally:
            await admin.close()

    run_blocking(create)


def delete_topics(bootstrap_servers: str, names: list[str], *, timeout: float = 30.0) -> None:
    """Delete topics, so a long-lived test broker does not pile up thousands of them."""

    async def delete() -> None:
        admin = AIOKafkaAdminClient(
            **client_options(local_broker(bootstrap_servers)),
            request_timeout_ms=int(timeout * 1000),
        )
        await admin.start()
        try:
            response = await admin.delete_topics(names)
            _raise_for_errors("delete", response.topic_error_codes)
        finally:
            await admin.close()

    run_blocking(delete)


def _raise_for_errors(action: str, topic_errors: Iterator[tuple[Any, ...]]) -> None:
    failures = [
        f"{entry[0]}: {for_code(entry[1]).__name__}" for entry in topic_errors if entry[1] != 0
    ]
    if failures:
        raise TopicAdminError(f"could not {action} topics: {', '.join(failures)}")


def _has_leaders(described: list[dict[str, Any]], partitions: int) -> bool:
    for topic in described:
        if topic["error_code"] != 0 or len(topic["partitions"]) != partitions:
            return False
        if any(p["error_code"] != 0 or p["leader"] < 0 for p in topic["partitions"]):
            return False
    return bool(described)
