"""Helpers the integration and fault tests share: a run's topics and a worker process.

Each test that runs ``palaute worker`` needs topics of its own (one suffix per
run, deleted afterwards) and a child process it can start, stop, kill and read
the log of. These lived as copies in a dozen files; one copy each is here.

The :func:`run_suffix` fixture is registered in ``tests/conftest.py``, so every
test directory sees it. What it creates is the :func:`run_topics` fixture's
:class:`RunTopics`: a module or a conftest that needs other topics, another
partition count or no topics at all overrides ``run_topics``, not ``run_suffix``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ops.kafka import create_topic, delete_topics
from schemas.topics import TOPICS

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

#: The partition count of a run's topics unless a test asks for another.
PARTITIONS = 4
#: The repartition topics of the intake and dispatch stages: ``palaute{suffix}-{name}``.
REPARTITION_TOPICS = ("contacts-by-citizen", "surveys-by-id")
#: faust reads these from the environment. A killed worker stays in its consumer
#: group until its session times out (60 s by default), and its partitions wait
#: that long for a new owner: a test that kills a worker and starts another sets
#: them shorter, so the restart costs seconds, not a minute.
SHORT_SESSION_ENVIRONMENT = {"BROKER_SESSION_TIMEOUT": "8", "BROKER_HEARTBEAT_INTERVAL": "1"}


@dataclass(frozen=True)
class RunTopics:
    """Which topics a run creates beforehand, and how many partitions they get.

    A topic the worker creates for itself just before joining its group can
    be missing from the first assignment's metadata, and is then not consumed
    until the next rebalance: created beforehand, it is always there.
    """

    #: Base names (``schemas.topics``) created with the suffix; ``None``: every topic.
    bases: tuple[str, ...] | None = None
    #: Stage-internal topics, created as ``palaute{suffix}-{name}``.
    internal: tuple[str, ...] = REPARTITION_TOPICS
    #: Further names, ``{suffix}`` filled in, e.g. ``"palaute.metrics{suffix}-rebuilt"``.
    extra: tuple[str, ...] = ()
    partitions: int = PARTITIONS
    #: Start of the suffix, so a run's topics can be told apart in a broker listing.
    prefix: str = "-"
    #: Create nothing: the test checks what the worker creates by itself.
    create: bool = True
    #: Give each topic of ``schemas.topics`` its own settings (compaction), as production does.
    configured: bool = False

    def names(self, suffix: str) -> list[str]:
        """Give the names of the topics this run creates."""
        if not self.create:
            return []
        bases = self.bases if self.bases is not None else tuple(spec.name for spec in TOPICS)
        return [
            *(base + suffix for base in bases),
            *(f"palaute{suffix}-{name}" for name in self.internal),
            *(template.format(suffix=suffix) for template in self.extra),
        ]


def new_suffix(prefix: str = "-") -> str:
    """Give a topic suffix no test (or earlier run) has used."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def create_run_topics(bootstrap: str, topics: RunTopics | None = None) -> str:
    """Create a run's topics (by default all and the repartition topics); give the suffix."""
    topics = topics or RunTopics()
    suffix = new_suffix(topics.prefix)
    configs = {spec.name + suffix: spec.configs() for spec in TOPICS} if topics.configured else {}
    for name in topics.names(suffix):
        create_topic(bootstrap, name, partitions=topics.partitions, configs=configs.get(name))
    return suffix


async def delete_run_topics(bootstrap: str, suffix: str) -> None:
    """Delete every topic of the run, internal and changelog topics included."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if suffix in name]
    finally:
        await admin.close()
    if names:
        await asyncio.to_thread(delete_topics, bootstrap, names)


@pytest.fixture
def run_topics() -> RunTopics:
    """Say which topics :func:`run_suffix` creates; override it where a test needs others."""
    return RunTopics()


@pytest.fixture
def run_suffix(kafka_bootstrap: str, run_topics: RunTopics) -> Iterator[str]:
    """Give this run's topic suffix, its topics created; delete all its topics afterwards."""
    suffix = create_run_topics(kafka_bootstrap, run_topics)
    yield suffix
    asyncio.run(delete_run_topics(kafka_bootstrap, suffix))


def free_ports(count: int) -> list[int]:
    """Give ``count`` distinct ports that are free now, for a broker of a test's own.

    The system picks them, so two test processes (pytest-xdist) or two test
    sessions never pick the same ones, as they could a fixed offset.
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_command(config: Path) -> list[str]:
    """Give the command line of ``palaute worker`` with a configuration file."""
    return [sys.executable, "-m", "palaute", "worker", "--config", str(config)]


def start_process(
    command: list[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child process whose output (stdout and stderr) is appended to ``log``.

    ``env`` replaces the environment when given; ``None`` inherits this one.
    """
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``palaute worker --config <config>``, its output appended to ``log``."""
    return start_process(worker_command(config), log)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int | None:
    """Stop a child as an orchestrator would: SIGTERM, then kill after ``timeout`` seconds.

    Gives the exit status, or ``None`` when it had to be killed.
    """
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return None


@dataclass
class Worker:
    """``palaute worker`` (or another ``command``) as a child process, its output in a log file."""

    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    #: What to run; ``None``: ``palaute worker --config <config>``.
    command: list[str] | None = None
    #: Added to this process's environment, e.g. faust's group timeouts.
    env: Mapping[str, str] = field(default_factory=dict)
    #: How long a SIGTERM may take before the process is killed.
    stop_timeout: float = 30.0
    #: How much of the log's end :meth:`tail` gives.
    tail_chars: int = 6000

    def start(self) -> None:
        """Start the process, appending to its log."""
        self.process = start_process(
            self.command or worker_command(self.config),
            self.log,
            env={**os.environ, **self.env} if self.env else None,
        )

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill -9: no flush, no commit, no goodbye to the group."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM and wait; kill if it does not stop in time."""
        if self.process is None:
            return None
        return stop_process(self.process, self.stop_timeout)

    def tail(self) -> str:
        """Give the end of the log, for failure messages."""
        return self.log.read_text(errors="replace")[-self.tail_chars :]
