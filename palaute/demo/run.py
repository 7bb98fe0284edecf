"""Run the demo: broker, worker, synthetic front office, and a live tally.

Every process the demo starts, it stops again, also on Ctrl-C: the worker
with SIGTERM (then SIGKILL if it hangs), and the broker unless it was already
running or ``--keep-kafka`` was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ops.kafka import BrokerState, LocalKafka, create_topic, load_settings
from palaute.demo import frontoffice
from schemas.deadletter import DeadLetter
from schemas.decoding import Rejected, decode_event
from schemas.surveys import SkipReason, SurveyScheduled, SurveySkipped
from schemas.topics import CONTACTS, DEADLETTER, SURVEYS

WORKER_STOP_SECONDS = 20.0
PARTITIONS = 4


@dataclass
class Tally:
    """What the demo has seen on the output topics so far."""

    decided: Counter[str] = field(default_factory=Counter)  # decisions per contact id
    scheduled: Counter[str] = field(default_factory=Counter)  # by channel
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    dead_letters: Counter[str] = field(default_factory=Counter)  # by reason code

    def line(self, produced: int) -> str:
        """One progress line for the terminal."""
        return (
            f"  events {produced:>5}   decided {len(self.decided):>5}   "
            f"scheduled {sum(self.scheduled.values()):>5}   "
            f"skipped {sum(self.skipped.values()):>5}   "
            f"dead-lettered {sum(self.dead_letters.values()):>2}"
        )


def _say(message: str) -> None:
    print(message, flush=True)  # noqa: T201 - the demo talks to its terminal


def _write_config(directory: Path, bootstrap: str, suffix: str) -> Path:
    path = directory / "palaute-demo.toml"
    path.write_text(
        f"""# Written by `palaute demo`; development keys only.
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "demo-only-pseudonymisation-key-0123456789"
link_signing_key = "demo-only-link-signing-key-abcdefghijklmnop"

[streams]
app_id = "palaute-demo"
topic_suffix = "{suffix}"
data_dir = "{directory / "data"}"
partitions = {PARTITIONS}
{frontoffice.catalogue_toml()}""",
        encoding="utf-8",
    )
    return path


def _start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "palaute", "worker", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops the worker itself
        )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _record(
    tally: Tally, topic: str, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    if topic.startswith(DEADLETTER):
        letter = DeadLetter.from_headers(headers)
        tally.dead_letters[letter.reason_code] += 1
        return
    event = decode_event(value or b"")
    if isinstance(event, Rejected):
        return
    if isinstance(event, SurveyScheduled):
        tally.decided[event.contact_id] += 1
        tally.scheduled[event.channel.value] += 1
    elif isinstance(event, SurveySkipped):
        # Superseding a scheduled survey ends its life; it is not a second decision.
        if not (event.reason is SkipReason.SUPERSEDED and event.contact_id in tally.decided):
            tally.decided[event.contact_id] += 1
        tally.skipped[event.reason.value] += 1


async def _feed_and_watch(
    bootstrap: str, suffix: str, events: int, worker: subprocess.Popen[bytes], within: float
) -> Tally:
    records = frontoffice.contacts(events, datetime.now(UTC).replace(microsecond=0))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    consumer = AIOKafkaConsumer(
        SURVEYS + suffix,
        DEADLETTER + suffix,
        bootstrap_servers=bootstrap,
        group_id=f"palaute-demo-watch{suffix}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    tally = Tally()
    produced = 0
    expected_dead = 3
    try:
        deadline = time.monotonic() + within
        last_line = ""
        while time.monotonic() < deadline:
            # The front office trickles events in, as a working day does.
            for key, value in records[produced : produced + 25]:
                await producer.send(CONTACTS + suffix, value, key=key)
            produced = min(len(records), produced + 25)
            await producer.flush()
            for partition, batch in (await consumer.getmany(timeout_ms=300)).items():
                for record in batch:
                    _record(tally, partition.topic, record.value, list(record.headers))
            line = tally.line(produced)
            if line != last_line:
                _say(line)
                last_line = line
            done = len(tally.decided) >= events
            if done and sum(tally.dead_letters.values()) >= expected_dead:
                break
            if worker.poll() is not None:
                _say(f"  the worker exited with status {worker.returncode}; see its log")
                break
    finally:
        await consumer.stop()
        await producer.stop()
    return tally


def _summary(tally: Tally, events: int) -> None:
    _say("")
    twice = sum(1 for count in tally.decided.values() if count > 1)
    once = "each exactly once" if twice == 0 else f"{twice} decided more than once"
    _say(f"Decisions: {len(tally.decided)} of {events} contacts, {once}.")
    for channel, count in sorted(tally.scheduled.items()):
        _say(f"  scheduled by {channel:<6} {count:>5}")
    for reason, count in tally.skipped.most_common():
        _say(f"  skipped, {reason:<22} {count:>5}")
    for code, count in tally.dead_letters.most_common():
        _say(f"  dead-lettered, {code:<16} {count:>5}   (original bytes kept, reason in headers)")


def _quiet_client_logs() -> None:
    """Keep aiokafka's start-up chatter (topics being created) off the demo's terminal."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def run_demo(*, events: int, port: int | None, keep_kafka: bool, timeout: float) -> int:
    """Run the whole demo; return the process exit status."""
    kafka = LocalKafka(load_settings(port=port))
    was_up = kafka.status().state is BrokerState.UP
    status = kafka.up()
    bootstrap = status.bootstrap_servers
    _say(f"Kafka is up at {bootstrap} (log: {status.log_path})")
    _quiet_client_logs()
    directory = Path(tempfile.mkdtemp(prefix="palaute-demo-"))
    suffix = f".demo-{int(time.time())}"
    worker: subprocess.Popen[bytes] | None = None
    try:
        config = _write_config(directory, bootstrap, suffix)
        for name in (CONTACTS, SURVEYS, DEADLETTER):
            create_topic(bootstrap, name + suffix, partitions=PARTITIONS)
        log = directory / "worker.log"
        worker = _start_worker(config, log)
        _say(f"Worker started (pid {worker.pid}); log: {log}")
        _say(
            f"Front office sends {events} contact events and 3 broken records to {CONTACTS}{suffix}"
        )
        tally = asyncio.run(_feed_and_watch(bootstrap, suffix, events, worker, timeout))
        _summary(tally, events)
        complete = len(tally.decided) == events and max(tally.decided.values(), default=0) == 1
        return 0 if complete else 1
    finally:
        if worker is not None:
            _stop_worker(worker)
            _say("Worker stopped.")
        if not was_up and not keep_kafka:
            kafka.down()
            _say("Kafka stopped (it was started by the demo; keep it with --keep-kafka).")
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)
