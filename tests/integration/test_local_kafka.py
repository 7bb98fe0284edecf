"""The ``palaute kafka`` contract, against real brokers started through the real entry point.

These brokers use their own free ports and state directories, apart from the
session broker the other integration tests share, so stopping one here never
disturbs them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ops.kafka import KAFKA_VERSION, create_topic
from ops.kafka.process import command_line

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

UP_LINE = re.compile(r"Kafka is up at 127\.0\.0\.1:(\d+) \(pid (\d+)\), log: (\S+)\n")


@dataclass(frozen=True)
class CliBroker:
    """A broker started by ``palaute kafka up`` for this module."""

    port: int
    pid: int
    state_dir: Path
    where: tuple[str, ...]
    first_up: subprocess.CompletedProcess[str]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _where(port: int, controller_port: int, state_dir: Path) -> tuple[str, ...]:
    return (
        "--port",
        str(port),
        "--controller-port",
        str(controller_port),
        "--state-dir",
        str(state_dir),
    )


def palaute_kafka(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m palaute kafka ...`` as a user would, and capture what it says."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PALAUTE_KAFKA_")}
    return subprocess.run(
        [sys.executable, "-m", "palaute", "kafka", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=240,
        check=False,
    )


def _is_running_broker(pid: int, state_dir: Path) -> bool:
    args = command_line(pid)
    return args is not None and "kafka.Kafka" in args and str(state_dir) in args


@pytest.fixture(scope="module")
def cli_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliBroker]:
    port, controller_port = _free_ports(2)
    state_dir = tmp_path_factory.mktemp("cli-broker").resolve()
    where = _where(port, controller_port, state_dir)
    first_up = palaute_kafka("up", *where)
    try:
        assert first_up.returncode == 0, first_up.stderr
        match = UP_LINE.fullmatch(first_up.stdout)
        assert match is not None, first_up.stdout
        yield CliBroker(port, int(match.group(2)), state_dir, where, first_up)
    finally:
        palaute_kafka("down", "--wipe", *where)


def test_up_starts_a_broker_and_says_where_it_is(cli_broker: CliBroker) -> None:
    """A developer needs the address to connect to and the log to read when things go wrong."""
    match = UP_LINE.fullmatch(cli_broker.first_up.stdout)
    assert match is not None
    assert int(match.group(1)) == cli_broker.port
    assert match.group(3) == str(cli_broker.state_dir / "kafka.log")
    assert f"starting Apache Kafka {KAFKA_VERSION}" in cli_broker.first_up.stderr
    assert _is_running_broker(cli_broker.pid, cli_broker.state_dir)
    assert (cli_broker.state_dir / "kafka.pid").read_text().strip() == str(cli_broker.pid)


def test_second_up_reports_the_running_broker(cli_broker: CliBroker) -> None:
    """`make kafka-up` twice must neither fail nor start a second JVM on the same data."""
    again = palaute_kafka("up", *cli_broker.where)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        f"Kafka is already up at 127.0.0.1:{cli_broker.port} (pid {cli_broker.pid})\n"
    )


def test_status_reports_up_with_pid_and_log(cli_broker: CliBroker) -> None:
    """Scripts test the exit status; people read the line."""
    status = palaute_kafka("status", *cli_broker.where)
    assert status.returncode == 0, status.stderr
    assert status.stdout == (
        f"up at 127.0.0.1:{cli_broker.port} (pid {cli_broker.pid}), "
        f"log: {cli_broker.state_dir / 'kafka.log'}\n"
    )


async def test_broker_takes_idempotent_writes_and_manual_commits(cli_broker: CliBroker) -> None:
    """The settings the design requires (idempotence, commit after work) must work here."""
    bootstrap = f"127.0.0.1:{cli_broker.port}"
    topic = "cli-roundtrip"
    create_topic(bootstrap, topic, partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for index in range(3):
            await producer.send_and_wait(topic, f"rating-{index}".encode(), key=b"touchpoint-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="cli-roundtrip-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < 3:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, "no records within 10 s"
            values.extend(r.value for records in batches.values() for r in records if r.value)
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    assert values == [b"rating-0", b"rating-1", b"rating-2"]
    assert committed == 3


def test_down_stops_the_broker_and_status_then_says_down(tmp_path: Path) -> None:
    """After `down` nothing of ours runs, and every command agrees on that."""
    port, controller_port = _free_ports(2)
    where = _where(port, controller_port, tmp_path)
    try:
        up = palaute_kafka("up", *where)
        assert up.returncode == 0, up.stderr
        match = UP_LINE.fullmatch(up.stdout)
        assert match is not None, up.stdout
        pid = int(match.group(2))

        down = palaute_kafka("down", *where)
        assert down.returncode == 0, down.stderr
        assert down.stdout == f"Kafka stopped (pid {pid})\n"
        assert not _is_running_broker(pid, tmp_path)
        assert not (tmp_path / "kafka.pid").exists()

        status = palaute_kafka("status", *where)
        assert (status.returncode, status.stdout) == (3, "down\n")

        again = palaute_kafka("down", *where)
        assert (again.returncode, again.stdout) == (0, "Kafka is not running\n")
    finally:
        wiped = palaute_kafka("down", "--wipe", *where)
    assert wiped.returncode == 0, wiped.stderr
    assert not (tmp_path / "data").exists()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    """Another program on 9092 is common; the user must learn which option moves us."""
    controller_port = _free_ports(1)[0]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        where = _where(port, controller_port, tmp_path)
        up = palaute_kafka("up", *where)
    expected = (
        f"port {port} is taken by another process; choose another with --port or PALAUTE_KAFKA_PORT"
    )
    assert up.returncode == 1
    assert up.stdout == ""
    assert expected in up.stderr
    assert not (tmp_path / "kafka.pid").exists()
    status = palaute_kafka("status", *where)
    assert (status.returncode, status.stdout) == (3, "down\n")
