"""``palaute bench intake``: intake throughput against what the machine can read.

One broker, one topic of contact events with four partitions, three readers
of the same records:

(a) aiokafka alone: a consumer group reading ``getmany`` batches and doing
    nothing with them, the ceiling of any Python consumer built on it;
(b) the Java consumer that ships with Kafka (``ConsumerPerformance``, also
    known as ``kafka-consumer-perf-test``), the machine's limit;
(c) the real ``palaute worker`` as a subprocess: validate, pseudonymise,
    repartition by citizen key, decide, publish. Its rate is measured from
    the first to the last decision on the surveys topic (the decisions'
    record timestamps, written by the worker), counting distinct contact ids.

A fourth figure, (d), is the same per-event work in one process without
Kafka (decode, pseudonymise, decide, serialise the publications): what the
CPU costs, without faust and the repartition hop.

The events are valid and distinct, with several contacts per citizen, a mix
of touchpoints (catalogued with sampling, sensitive, email-first, and one
unknown), consent, languages, age and opt-outs, so that every branch of the
policy takes its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.kafka_client import client_options, local_broker
from ops.kafka import LocalKafka, create_topic, delete_topics, load_settings
from ops.kafka.tools import (
    TOOLS_VERSION,
    ConsumerPerformanceResult,
    consumer_performance,
    ensure_tools,
)
from schemas.topics import CONTACTS, SURVEYS, TOPICS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from schemas.config import Settings

PARTITIONS = 4
PSEUDONYMISATION_KEY = "bench-pseudonymisation-key-0123456789abcdef"
LINK_SIGNING_KEY = "bench-link-signing-key-9876543210fedcba0123"
SOURCES = ("/crm/helsinki-contact-centre", "/case/kela-benefits", "/booking/health-centre")
#: id, name, channel, service, location, share of contacts
TOUCHPOINTS: tuple[tuple[str, str, str, str, str | None, float], ...] = (
    ("phone-service", "Puhelinpalvelu", "phone", "tax", None, 0.30),
    ("walk-in", "Asiakaspalvelupiste", "face-to-face", "tax", "Helsinki", 0.20),
    ("chat-support", "Chat", "chat", "benefits", None, 0.15),
    ("digital-booking", "Ajanvaraus", "digital", "health", None, 0.15),
    ("sensitive-visit", "Vastaanotto", "face-to-face", "health", "Espoo", 0.10),
    ("home-visit", "Kotikäynti", "home-visit", "elderly-care", "Vantaa", 0.07),
    ("not-in-catalogue", "Uusi palvelu", "video", "benefits", None, 0.03),
)
LANGUAGES = (("fi", 0.8), ("sv", 0.1), ("en", 0.1))
STOP_GRACE_S = 10.0
MOBILE_PREFIXES = ("+35840", "+35841", "+35844", "+35845", "+35846", "+35850")


@dataclass(frozen=True, slots=True)
class Plan:
    """How big a run is."""

    events: int = 200_000
    contacts_per_citizen: float = 4.0
    seed: int = 20_260_101
    deadline_s: float = 1800.0  # for each of the three readers
    #: Worker processes of (c'), one consumer group; 1 leaves (c') out.
    workers: int = 1


FULL = Plan()
QUICK = Plan(events=500, deadline_s=120.0)


# -- events -----------------------------------------------------------------------------


def _citizen(rng: random.Random, index: int) -> dict[str, Any]:
    citizen: dict[str, Any] = {
        "language": rng.choices([c for c, _ in LANGUAGES], [w for _, w in LANGUAGES])[0],
        "consent": {
            "sms": rng.random() < 0.85,  # noqa: PLR2004 - the consent mix, stated once here
            "email": rng.random() < 0.5,  # noqa: PLR2004 - as above
            "opted_out": rng.random() < 0.03,  # noqa: PLR2004 - as above
        },
    }
    reach = rng.random()
    if reach < 0.85:  # noqa: PLR2004 - 85 % have a mobile number
        citizen["phone"] = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(1_000_000, 9_999_999)}"
    if reach > 0.6:  # noqa: PLR2004 - 40 % an email address (a quarter have both)
        citizen["email"] = f"asiakas.{index}@example.fi"
    if rng.random() < 0.5:  # noqa: PLR2004 - half the sources send their customer reference
        citizen["id"] = f"cust-{index}"
    age = rng.random()
    if age < 0.6:  # noqa: PLR2004 - most sources know the age, some only the birth year
        citizen["age"] = rng.randrange(12, 95)
    elif age < 0.8:  # noqa: PLR2004 - as above
        citizen["birth_year"] = rng.randrange(1930, 2012)
    if rng.random() < 0.01:  # noqa: PLR2004 - non-disclosure for safety is rare
        citizen["non_disclosure"] = True
    return citizen


def contact_events(plan: Plan, now: datetime) -> list[tuple[bytes, bytes]]:
    """Make the run's records: (source customer key, CloudEvents JSON), all valid and distinct.

    Citizens are drawn with a skew (a few come back often), so most have
    several contacts and the history table, caps and supersession all work.
    """
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible benchmark data, not secrets
    citizens = [
        _citizen(rng, index)
        for index in range(max(1, int(plan.events / plan.contacts_per_citizen)))
    ]
    weights = [t[5] for t in TOUCHPOINTS]
    touchpoints = [
        {"id": t[0], "name": t[1], "channel": t[2], "service": t[3]}
        | ({"location": t[4]} if t[4] else {})
        for t in TOUCHPOINTS
    ]
    chosen = rng.choices(touchpoints, weights, k=plan.events)
    records: list[tuple[bytes, bytes]] = []
    count = len(citizens)
    for number in range(plan.events):
        index = min(count - 1, int(count * rng.random() ** 1.5))
        ended = now - timedelta(seconds=rng.randrange(60, 10 * 3600))
        stamp = ended.isoformat()
        event = {
            "specversion": "1.0",
            "id": f"evt-{number}",
            "source": SOURCES[index % len(SOURCES)],
            "type": "fi.palaute.contact.completed.v1",
            "time": stamp,
            "data": {
                "contact": {
                    "id": f"contact-{number}",
                    "ended_at": stamp,
                    "context": {"queue_wait_seconds": rng.randrange(0, 1800), "team": "A"},
                },
                "citizen": citizens[index],
                "touchpoint": chosen[number],
            },
        }
        records.append((f"cust-{index}".encode(), orjson.dumps(event)))
    return records


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Write the records in large batches, partitioned by key; return the seconds it took."""
    producer = AIOKafkaProducer(
        **client_options(local_broker(bootstrap)), enable_idempotence=True, max_batch_size=1 << 20
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending: list[asyncio.Future[Any]] = []
        batches = {p: producer.create_batch() for p in range(PARTITIONS)}
        for key, value in records:
            partition = zlib.crc32(key) % PARTITIONS
            if batches[partition].append(key=key, value=value, timestamp=None) is None:
                pending.append(
                    await producer.send_batch(batches[partition], topic, partition=partition)
                )
                batches[partition] = producer.create_batch()
                batches[partition].append(key=key, value=value, timestamp=None)
        for partition, batch in batches.items():
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


# -- (a) aiokafka alone -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    """Records read and how long from the first to the last, plus the whole run."""

    records: int
    seconds: float
    wall_seconds: float

    @property
    def per_second(self) -> float:
        """Records per second, first to last."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def aiokafka_rate(bootstrap: str, topic: str, expected: int, deadline_s: float) -> Rate:
    """Read ``expected`` records from the start of every partition, doing nothing with them.

    The partitions are assigned rather than joined as a group, and the clock
    starts at the first fetch: like the Java tool's fetch rate, which leaves
    the group join out.
    """
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(**client_options(local_broker(bootstrap)), enable_auto_commit=False)
    await consumer.start()
    count = 0
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        first = time.perf_counter()
        while count < expected:
            if time.perf_counter() - first > deadline_s:
                raise TimeoutError(f"aiokafka read {count} of {expected} records in time")
            batches = await consumer.getmany(timeout_ms=1000)
            count += sum(len(batch) for batch in batches.values())
        last = time.perf_counter()
    finally:
        await consumer.stop()
    return Rate(count, last - first, time.perf_counter() - started)


# -- (c) the worker -------------------------------------------------------------------------


def worker_config(directory: Path, bootstrap: str, suffix: str, index: int = 0) -> Path:
    """Write a worker's configuration: this run's topics and a touchpoint catalogue.

    Workers of one group share the topics but not a local store: ``index``
    gives each its own data directory.
    """
    path = directory / ("palaute.toml" if index == 0 else f"palaute-{index}.toml")
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "{PSEUDONYMISATION_KEY}"
link_signing_key = "{LINK_SIGNING_KEY}"

[streams]
topic_suffix = "{suffix}"
data_dir = "{directory / ("data" if index == 0 else f"data-{index}")}"
partitions = {PARTITIONS}

[touchpoints.phone-service]
sampling_rate = 0.6

[touchpoints.walk-in]
channel_preference = ["email", "sms"]
send_delay = "1h"

[touchpoints.chat-support]
sampling_rate = 0.3

[touchpoints.digital-booking]
channel_preference = ["email"]

[touchpoints.sensitive-visit]
sensitive = true

[touchpoints.home-visit]
send_delay = "2h"
""",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True, slots=True)
class WorkerRate:
    """Decisions the workers published: contacts decided, first-to-last and from start.

    ``cpu_seconds`` is what the worker processes used from the first decision
    read to the last (None where ``/proc`` cannot tell): on a machine shared
    with other work the rate moves with the load, the CPU time per decision
    much less.
    """

    decided: int
    records: int
    seconds: float
    wall_seconds: float
    processes: int = 1
    cpu_seconds: float | None = None

    @property
    def cpu_us_per_decision(self) -> float | None:
        """Worker CPU time per contact decided, in microseconds."""
        if self.cpu_seconds is None or not self.decided:
            return None
        return self.cpu_seconds / self.decided * 1e6

    @property
    def per_second(self) -> float:
        """Contacts decided per second, first decision to last."""
        return self.decided / self.seconds if self.seconds > 0 else 0.0


#: The intake's decision events; the surveys topic also carries later stages' events.
DECISION_TYPES = frozenset({"SurveyScheduled", "SurveySkipped"})


def _decided_contact(value: bytes) -> str | None:
    """Name the contact a decision event is about, or None for another stage's event.

    A superseded skip that cancels an earlier survey names that survey's
    contact, which its own SurveyScheduled (earlier in the same partition)
    already counted, so counting distinct contacts stays exact.
    """
    event = orjson.loads(value)
    if event.get("type") not in DECISION_TYPES:
        return None
    contact: str | None = event.get("contact_id")
    return contact


async def _read_decisions(
    bootstrap: str,
    topic: str,
    expected: int,
    *,
    workers: list[subprocess.Popen[bytes]],
    deadline_s: float,
    log: Path,
) -> tuple[set[str], int, int, int, float | None]:
    """Read the decisions as they come; note the workers' CPU time at the first one."""
    consumer = AIOKafkaConsumer(**client_options(local_broker(bootstrap)), enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    decided: set[str] = set()
    records = 0
    first_ms = last_ms = 0
    cpu_at_first: float | None = None
    started = time.perf_counter()
    try:
        while len(decided) < expected:
            for worker in workers:
                if worker.poll() is not None:
                    raise RuntimeError(f"a worker exited ({worker.returncode}):\n{_tail(log)}")
            if time.perf_counter() - started > deadline_s:
                raise TimeoutError(
                    f"the worker decided {len(decided)} of {expected} contacts in time:\n"
                    + _tail(log)
                )
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                for record in batch:
                    records += 1
                    contact = _decided_contact(record.value)
                    if contact is None:
                        continue
                    decided.add(contact)
                    if not first_ms:
                        cpu_at_first = _group_cpu_seconds(workers)
                    first_ms = record.timestamp if not first_ms else min(first_ms, record.timestamp)
                    last_ms = max(last_ms, record.timestamp)
    finally:
        await consumer.stop()
    return decided, records, first_ms, last_ms, cpu_at_first


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """Stop the worker; the figures are taken, so a slow clean shutdown is not waited for."""
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a running process, from ``/proc`` (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of stat(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_cpu_seconds(workers: list[subprocess.Popen[bytes]]) -> float | None:
    used = [_cpu_seconds(worker.pid) for worker in workers]
    return None if None in used else sum(u for u in used if u is not None)


def worker_rate(
    bootstrap: str,
    suffix: str,
    expected: set[str],
    directory: Path,
    deadline_s: float,
    *,
    processes: int = 1,
) -> WorkerRate:
    """Run ``palaute worker`` processes (one group) until every produced contact is decided."""
    configs = [worker_config(directory, bootstrap, suffix, index) for index in range(processes)]
    log = directory / "worker.log"
    started = time.perf_counter()
    workers: list[subprocess.Popen[bytes]] = []
    with log.open("ab") as out:
        workers.extend(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "palaute",
                    "worker",
                    "--config",
                    str(config),
                    # The default level: below WARNING faust keeps its terminal spinner,
                    # and with it every logger at DEBUG (records built, then dropped).
                    "--loglevel",
                    "info",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            for config in configs
        )
    try:
        decided, records, first_ms, last_ms, cpu_at_first = asyncio.run(
            _read_decisions(
                bootstrap,
                SURVEYS + suffix,
                len(expected),
                workers=workers,
                deadline_s=deadline_s,
                log=log,
            )
        )
        wall = time.perf_counter() - started
        cpu_at_last = _group_cpu_seconds(workers)
    finally:
        for worker in workers:
            _stop(worker)
    missing = expected - decided
    if missing:
        raise RuntimeError(f"{len(missing)} contacts were not decided, e.g. {sorted(missing)[:3]}")
    cpu = None if cpu_at_first is None or cpu_at_last is None else cpu_at_last - cpu_at_first
    return WorkerRate(
        len(decided),
        records,
        (last_ms - first_ms) / 1000,
        wall,
        processes=processes,
        cpu_seconds=cpu,
    )


# -- (d) the same work in one process --------------------------------------------------------


def in_process_rate(records: list[tuple[bytes, bytes]], settings: Settings) -> Rate:
    """Decode, pseudonymise, decide and serialise every record in a loop, with no Kafka."""
    started = time.perf_counter()
    decided = intake_loop(records, settings, datetime.now(UTC))
    seconds = time.perf_counter() - started
    return Rate(decided, seconds, seconds)


def intake_loop(records: list[tuple[bytes, bytes]], settings: Settings, now: datetime) -> int:
    """Do the intake's per-event work on records in memory; return how many were decided.

    The worker's two intake stages, called on each record in one loop with
    the history in a dict as JSON strings (as the table keeps it): the part
    of the cost that belongs to Palaute rather than to Kafka and faust.
    """
    from streams.runtime.model import Record, stored_value  # noqa: PLC0415 - keep the command quick to start
    from streams.stages.intake import AdmitContacts, DecideContacts  # noqa: PLC0415 - as above

    secret = settings.secrets.pseudonymisation_key.get_secret_value().encode()
    admit = AdmitContacts(secret)
    decide = DecideContacts(settings)
    histories: dict[str, str] = {}
    decided = 0
    for offset, (key, value) in enumerate(records):
        admitted = admit.handle(histories, Record("contacts", 0, offset, key, value), now)
        if not admitted.produce:
            continue
        forward = admitted.produce[0]
        record = Record("by-citizen", 0, offset, forward.key, forward.value)
        output = decide.handle(histories, record, now)
        for k, v in output.state.items():
            if (stored := stored_value(v)) is not None:
                histories[k] = stored
        decided += 1
    return decided


# -- the run --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def broker(bootstrap: str | None, progress: TextIO | None) -> Iterator[str]:
    """Use the broker given, or start one of our own on free ports and wipe it afterwards."""
    if bootstrap is not None:
        yield bootstrap
        return
    state = Path(tempfile.mkdtemp(prefix="palaute-bench-kafka-"))
    port = _free_port()
    controller = _free_port()
    while controller == port:
        controller = _free_port()
    kafka = LocalKafka(
        load_settings(port=port, controller_port=controller, state_dir=state, heap="1g"),
        report=lambda message: _say(progress, message),
    )
    try:
        yield kafka.up().bootstrap_servers
    finally:
        kafka.down(wipe=True)
        shutil.rmtree(state, ignore_errors=True)


def _say(progress: TextIO | None, message: str) -> None:
    if progress is not None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=progress, flush=True)


def run(
    plan: Plan, bootstrap: str | None = None, progress: TextIO | None = sys.stderr
) -> dict[str, Any]:
    """Measure (a), (b), (c) and (d) on one broker and return the figures."""
    from schemas.config import load_settings as load_palaute_settings  # noqa: PLC0415 - quick start

    tools = ensure_tools(load_settings(), lambda message: _say(progress, message))
    now = datetime.now(UTC)
    started = time.perf_counter()
    records = contact_events(plan, now)
    generated = time.perf_counter() - started
    volume = sum(len(value) for _, value in records)
    _say(progress, f"generated {len(records)} events ({volume / 1e6:.1f} MB) in {generated:.1f} s")
    with (
        broker(bootstrap, progress) as servers,
        tempfile.TemporaryDirectory(prefix="palaute-bench-") as scratch,
    ):
        suffix = f"-bench-{uuid.uuid4().hex[:12]}"
        for spec in TOPICS:  # every stage of the worker finds its topics
            create_topic(servers, spec.name + suffix, partitions=PARTITIONS)
        try:
            topic = CONTACTS + suffix
            produced = asyncio.run(produce(servers, topic, records))
            _say(progress, f"produced to {topic} in {produced:.1f} s; (a) aiokafka alone…")
            raw = asyncio.run(aiokafka_rate(servers, topic, len(records), plan.deadline_s))
            _say(progress, f"(a) {raw.per_second:,.0f}/s; (b) ConsumerPerformance {TOOLS_VERSION}…")
            java = consumer_performance(
                tools,
                servers,
                topic,
                len(records),
                f"bench-java-{uuid.uuid4().hex[:12]}",
                timeout_s=plan.deadline_s,
            )
            _say(progress, f"(b) {java.fetch_records_per_second:,.0f}/s; (c) palaute worker…")
            expected = {f"contact-{number}" for number in range(len(records))}
            worker = worker_rate(servers, suffix, expected, Path(scratch), plan.deadline_s)
            _say(progress, f"(c) {worker.per_second:,.0f}/s; (d) in-process loop…")
            settings = load_palaute_settings(worker_config(Path(scratch), servers, suffix))
            core = in_process_rate(records, settings)
        finally:
            with contextlib.suppress(Exception):
                _delete_run_topics(servers, suffix)
        group = None
        if plan.workers > 1:
            _say(progress, f"(d) {core.per_second:,.0f}/s; (c') {plan.workers} workers…")
            group = group_rate(servers, records, Path(scratch) / "group", plan)
    return summarise(
        plan,
        records,
        volume=volume,
        produced_s=produced,
        raw=raw,
        java=java,
        worker=worker,
        core=core,
        bootstrap=servers,
        group=group,
    )


def group_rate(
    bootstrap: str, records: list[tuple[bytes, bytes]], directory: Path, plan: Plan
) -> WorkerRate:
    """Run (c) again with ``plan.workers`` processes in one group, on topics of its own."""
    directory.mkdir()
    suffix = f"-bench-{uuid.uuid4().hex[:12]}"
    for spec in TOPICS:
        create_topic(bootstrap, spec.name + suffix, partitions=PARTITIONS)
    try:
        asyncio.run(produce(bootstrap, CONTACTS + suffix, records))
        expected = {f"contact-{number}" for number in range(len(records))}
        return worker_rate(
            bootstrap, suffix, expected, directory, plan.deadline_s, processes=plan.workers
        )
    finally:
        with contextlib.suppress(Exception):
            _delete_run_topics(bootstrap, suffix)


def _delete_run_topics(bootstrap: str, suffix: str) -> None:
    async def names() -> list[str]:
        consumer = AIOKafkaConsumer(**client_options(local_broker(bootstrap)))
        await consumer.start()
        try:
            return [name for name in await consumer.topics() if suffix in name]
        finally:
            await consumer.stop()

    found = asyncio.run(names())
    if found:
        delete_topics(bootstrap, found)


def summarise(
    plan: Plan,
    records: list[tuple[bytes, bytes]],
    *,
    volume: int,
    produced_s: float,
    raw: Rate,
    java: ConsumerPerformanceResult,
    worker: WorkerRate,
    core: Rate,
    bootstrap: str,
    group: WorkerRate | None = None,
) -> dict[str, Any]:
    """Gather the figures and the ratios c/a, c/b and c/d into one JSON-ready dict."""
    java_rate = float(java.fetch_records_per_second)
    summary: dict[str, Any] = {
        "plan": asdict(plan),
        "events": len(records),
        "partitions": PARTITIONS,
        "mean_event_bytes": round(volume / max(1, len(records))),
        "produce_seconds": round(produced_s, 2),
        "bootstrap": bootstrap,
        "kafka_tools_version": TOOLS_VERSION,
        "rows": [
            {
                "reader": "(a) aiokafka getmany, no processing",
                "records": raw.records,
                "seconds": round(raw.seconds, 3),
                "per_second": round(raw.per_second),
            },
            {
                "reader": f"(b) Java ConsumerPerformance {TOOLS_VERSION}",
                "records": java.records,
                "seconds": round(java.fetch_ms / 1000, 3),
                "per_second": round(java_rate),
            },
            {
                "reader": "(c) palaute worker: intake to decisions",
                "records": worker.decided,
                "seconds": round(worker.seconds, 3),
                "per_second": round(worker.per_second),
            },
            {
                "reader": "(d) in-process decode+pseudonymise+decide, no Kafka",
                "records": core.records,
                "seconds": round(core.seconds, 3),
                "per_second": round(core.per_second),
            },
        ],
        "worker_wall_seconds": round(worker.wall_seconds, 2),
        "worker_survey_records": worker.records,
        "java_with_group_join_per_second": round(java.records_per_second),
        "ratio_c_a": round(worker.per_second / raw.per_second, 4) if raw.per_second else 0.0,
        "ratio_c_b": round(worker.per_second / java_rate, 4) if java_rate else 0.0,
        # The worker against the same work in one process: what the runtime costs.
        "ratio_c_d": round(worker.per_second / core.per_second, 4) if core.per_second else 0.0,
        "worker_cpu_seconds": _rounded(worker.cpu_seconds, 2),
        "worker_cpu_us_per_decision": _rounded(worker.cpu_us_per_decision, 0),
    }
    if group is not None:
        summary["rows"].append(
            {
                "reader": f"(c') palaute worker x {group.processes} processes, one group",
                "records": group.decided,
                "seconds": round(group.seconds, 3),
                "per_second": round(group.per_second),
            }
        )
        summary["group"] = {
            "processes": group.processes,
            "wall_seconds": round(group.wall_seconds, 2),
            "cpu_seconds": _rounded(group.cpu_seconds, 2),
            "cpu_us_per_decision": _rounded(group.cpu_us_per_decision, 0),
            "ratio_c_a": round(group.per_second / raw.per_second, 4) if raw.per_second else 0.0,
        }
    return summary


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def render(summary: dict[str, Any]) -> str:
    """Format the figures as the table docs/performance.md quotes."""
    lines = [
        (
            f"{summary['events']:,} contact events, {summary['partitions']} partitions, "
            f"{summary['mean_event_bytes']} bytes each on average"
        ),
        "",
        f"{'reader':<55} {'records':>9} {'seconds':>9} {'events/s':>10}",
    ]
    lines.extend(
        f"{row['reader']:<55} {row['records']:>9,} {row['seconds']:>9.2f} {row['per_second']:>10,}"
        for row in summary["rows"]
    )
    lines += [
        "",
        (
            f"c/a = {summary['ratio_c_a']:.3f}   c/b = {summary['ratio_c_b']:.3f}   "
            f"c/d = {summary['ratio_c_d']:.2f}   "
            f"(worker from start to last decision: {summary['worker_wall_seconds']:.1f} s)"
        ),
    ]
    if summary.get("worker_cpu_us_per_decision") is not None:
        lines.append(
            f"worker CPU: {summary['worker_cpu_seconds']:.1f} s, "
            f"{summary['worker_cpu_us_per_decision']:,.0f} µs per decision"
        )
    group = summary.get("group")
    if group is not None:
        cpu = group["cpu_us_per_decision"]
        lines.append(
            f"(c') {group['processes']} processes: c'/a = {group['ratio_c_a']:.3f}"
            + (f", {cpu:,.0f} µs of CPU per decision" if cpu is not None else "")
        )
    return "\n".join(lines)


def write_json(summary: dict[str, Any], path: Path) -> None:
    """Write the figures where the docs and CI can read them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def profile_target(events: int) -> int:
    """Run (d) alone on ``events`` generated contacts: the loop a profiler should look at.

    ``pyinstrument -m palaute.bench.intake 50000`` profiles it; see
    docs/performance.md for what it found.
    """
    from schemas.config import load_settings as load_palaute_settings  # noqa: PLC0415 - quick start

    now = datetime.now(UTC)
    records = contact_events(replace(FULL, events=events), now)
    with tempfile.TemporaryDirectory(prefix="palaute-bench-") as scratch:
        settings = load_palaute_settings(worker_config(Path(scratch), "127.0.0.1:9092", ""))
    started = time.perf_counter()
    decided = intake_loop(records, settings, now)
    seconds = time.perf_counter() - started
    sys.stdout.write(f"{decided} contacts decided in {seconds:.2f} s: {decided / seconds:,.0f}/s\n")
    return decided


if __name__ == "__main__":
    profile_target(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
