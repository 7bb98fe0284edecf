"""What the fault tests share: trial counts and seeds, workers, traffic, readers and the oracles.

Every fault test runs ``palaute worker`` as real processes against a real
broker, injects one kind of fault, lets the system finish the work, and then
checks the same four promises (docs/guarantees.md):

* every valid contact has exactly one decision (:func:`check_one_decision_per_contact`);
* no citizen got a message twice, and every survey ended exactly once
  (:func:`check_no_message_twice`, :func:`check_every_survey_ends_once`);
* every acknowledged rating is in the metrics (:func:`check_metrics`);
* the dead-letter topic holds exactly the bad records (:func:`check_dead_letters`).

``PALAUTE_FAULT_TRIALS`` sets how many kills each kill test makes (3 by
default, for CI; the full run uses 20). Kill points are drawn from a seeded
random generator; ``PALAUTE_FAULT_SEED`` replays a run, and every test prints
the seed it used.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.smtp import SMTP

from palaute.demo.run import INTERNAL_TOPICS
from schemas.deadletter import DeadLetter
from schemas.surveys import SkipReason, SurveyScheduled, SurveySkipped
from tests.fixtures import SHORT_SESSION_ENVIRONMENT, RunTopics
from tests.fixtures import create_run_topics as create_shared_run_topics
from tests.integration.dispatch_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PARTITIONS,
    SENDER,
    Reader,
    Worker,
    config_text,
    contact,
    delete_run_topics,
    endings,
    survey_event,
)
from tests.integration.smtp_server import HOST, SmtpSink, _Handler

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from connectors.twilio_sim import TwilioSimulator

__all__ = [
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "PARTITIONS",
    "SENDER",
    "Reader",
    "Worker",
    "config_text",
    "delete_run_topics",
    "endings",
]

#: Kills per kill test: small for CI, 20 for the full run (docs/guarantees.md).
TRIALS = max(1, int(os.environ.get("PALAUTE_FAULT_TRIALS", "3")))
#: Generous: a shared 2-core machine can be several times slower than an idle one.
DEADLINE_SECONDS = 240.0


def base_seed() -> int:
    """Give the run's seed: ``PALAUTE_FAULT_SEED`` if set, else a fresh one (the tests print it)."""
    configured = os.environ.get("PALAUTE_FAULT_SEED", "").strip()
    return int(configured) if configured else random.SystemRandom().randrange(10**9)


def trial_rng(seed: int, test_name: str) -> random.Random:
    """Give a generator per test, so one test's draws do not shift another's."""
    return random.Random(f"{seed}:{test_name}")  # noqa: S311 - reproducible kill points, not secrets


#: A run's topics: every topic and every stage-internal topic, created beforehand.
RUN_TOPICS = RunTopics(internal=INTERNAL_TOPICS)


def create_run_topics(bootstrap: str) -> str:
    """Create every topic of a run, the stages' internal topics too; return the suffix.

    Created beforehand, an internal topic is in the first assignment's
    metadata, so no partition waits for a second rebalance to be consumed.
    """
    return create_shared_run_topics(bootstrap, RUN_TOPICS)


def worker_config(
    tmp_path: Path,
    name: str,
    bootstrap: str,
    suffix: str,
    *,
    sim_url: str = "http://127.0.0.1:9",
    smtp_port: int = 9,
    extra: str = "",
) -> Path:
    """Write one worker's configuration (its own local store) and return its path."""
    path = tmp_path / f"palaute-{name}.toml"
    path.write_text(
        config_text(
            bootstrap,
            suffix,
            tmp_path / f"data-{name}",
            sim_url=sim_url,
            smtp_port=smtp_port,
            extra=extra,
        ),
        encoding="utf-8",
    )
    return path


class FaultWorker(Worker):
    """``palaute worker`` as a child process, with the fault tests' group timeouts."""

    #: Where the log of the process started last begins.
    started_at_byte: int = 0

    def start(self) -> None:
        """Start the process, appending to its log after a line that says when."""
        with self.log.open("ab") as out:
            self.started_at_byte = out.tell()
            out.write(f"\n=== start at {datetime.now(UTC).isoformat()}\n".encode())
        super().start()

    def ready(self) -> bool:
        """Whether the process started last has joined its group and begun processing."""
        with self.log.open("rb") as log:
            log.seek(self.started_at_byte)
            return b"[^Worker]: Ready" in log.read()

    def kill(self) -> None:
        """Kill -9 (no flush, no commit, no goodbye to the group), and say so in the log."""
        super().kill()
        with self.log.open("ab") as out:
            out.write(f"\n=== killed at {datetime.now(UTC).isoformat()}\n".encode())


def new_worker(config: Path) -> FaultWorker:
    """Make a worker process (not started) that logs next to its configuration."""
    return FaultWorker(config, config.with_suffix(".log"), env=SHORT_SESSION_ENVIRONMENT)


def wipe_store(config: Path) -> None:
    """Delete a stopped worker's local store, as a pod moved to another node loses it."""
    shutil.rmtree(
        config.parent / f"data-{config.stem.removeprefix('palaute-')}", ignore_errors=True
    )


# Traffic.


def sms_citizen(index: int) -> dict[str, Any]:
    """Make a citizen reachable by SMS only, with a number of their own."""
    return {
        "id": f"cust-{index}",
        "phone": f"+35840{4000000 + index * 137:07d}",
        "consent": {"sms": True},
        "language": "fi",
    }


def email_citizen(index: int) -> dict[str, Any]:
    """Make a citizen reachable by email only."""
    return {
        "id": f"mail-{index}",
        "email": f"asiakas{index}@example.fi",
        "consent": {"email": True},
        "language": "sv",
    }


@dataclass
class Contacts:
    """The contact records produced so far, and what the oracles expect of them."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)  # contact ids
    bad: dict[bytes, str] = field(default_factory=dict)  # value -> reason code

    def batch(
        self,
        first: int,
        count: int,
        touchpoint: str,
        citizen: Callable[[int], dict[str, Any]] = sms_citizen,
        *,
        bad: int = 0,
        ended: datetime | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Contacts ``first``..``first + count - 1``, one citizen each, with ``bad`` bad records."""
        moment = ended or datetime.now(UTC) - timedelta(seconds=30)
        records = [
            (
                f"citizen-{number}".encode(),
                contact(number, citizen(number), touchpoint, moment),
            )
            for number in range(first, first + count)
        ]
        self.valid.update(f"contact-{number}" for number in range(first, first + count))
        for index in range(bad):
            value, code = bad_contact(first + index)
            records.insert(index * 7 % (len(records) + 1), (f"bad-{first + index}".encode(), value))
            self.bad[value] = code
        self.records.extend(records)
        return records


def bad_contact(number: int) -> tuple[bytes, str]:
    """Make a record the intake must set aside, unique per number, with its reason code."""
    if number % 2:
        return f'{{"specversion": "1.0", "id": "broken-{number}"'.encode(), "invalid_json"
    return f"[{number}, 2, 3]".encode(), "not_an_object"


@dataclass
class Ratings:
    """Rating records produced so far (keyed by touchpoint), and the bad ones among them."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    bad: set[bytes] = field(default_factory=set)

    def batch(
        self, rng: random.Random, first: int, count: int, *, bad: int = 0
    ) -> list[tuple[bytes, bytes]]:
        """``count`` answers to fresh surveys, some changed answers and replays, ``bad`` bad ones.

        Answers are from the last hour, so every window holds all of them.
        """
        records: list[tuple[bytes, bytes]] = []
        fresh: list[dict[str, Any]] = []
        base = datetime.now(UTC) - timedelta(minutes=50)
        for number in range(first, first + count):
            touchpoint = TOUCHPOINTS[number % len(TOUCHPOINTS)]
            at = base + timedelta(seconds=number % 2400)
            roll = rng.random()
            if fresh and roll < 0.05:
                earlier = rng.choice(fresh[-10:])
                revised = rating(
                    earlier["touchpoint_id"],
                    earlier["survey_id"],
                    revision=earlier["revision"] + 1,
                    score=rng.randint(1, 5),
                    at=at,
                )
                fresh.append(revised)
                record = revised
            elif fresh and roll < 0.08:
                record = rng.choice(fresh[-10:])  # a replay: counts once
            else:
                record = rating(
                    touchpoint, f"s-{number}", revision=1, score=rng.randint(1, 5), at=at
                )
                fresh.append(record)
            records.append((record["touchpoint_id"].encode(), json.dumps(record).encode()))
        for index in range(bad):
            value = (
                f'{{"type": "Rating", "rating_id": "bad-{first + index}"}}'.encode()
                if index % 2
                else f"not a rating {first + index}".encode()
            )
            records.insert(rng.randrange(len(records) + 1), (b"tp-0", value))
            self.bad.add(value)
        self.records.extend(records)
        return records


@dataclass
class Answers:
    """Surveys and the citizens' answers to them, for the responses stage to join.

    Each survey is scheduled (send time an hour away, so nothing is sent) and
    answered once or more: a changed score replaces the earlier one, a retried
    answer (same answer id) counts once. The last answer's score is the one
    the metrics must count.
    """

    surveys: list[tuple[bytes, bytes]] = field(default_factory=list)
    answers: list[tuple[bytes, bytes]] = field(default_factory=list)
    final: dict[str, tuple[str, int]] = field(default_factory=dict)  # survey -> touchpoint, score

    def batch(
        self, rng: random.Random, first: int, count: int
    ) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """Schedule ``count`` surveys and answer them; return (surveys, answers) records."""
        now = datetime.now(UTC)
        surveys: list[tuple[bytes, bytes]] = []
        answers: list[tuple[bytes, bytes]] = []
        for number in range(first, first + count):
            touchpoint = TOUCHPOINTS[number % len(TOUCHPOINTS)]
            survey = f"sv-answered-{number}"
            citizen = f"{number:064x}"
            surveys.append((citizen.encode(), scheduled(survey, citizen, touchpoint, now)))
            scores = [rng.randint(1, 5) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
            for index, score in enumerate(scores):
                answer = answered(f"{survey}-a{index}", survey, score, now)
                answers.append((survey.encode(), answer))
                if rng.random() < 0.1:
                    answers.append((survey.encode(), answer))  # a retried request
            self.final[survey] = (touchpoint, scores[-1])
        self.surveys.extend(surveys)
        self.answers.extend(answers)
        return surveys, answers

    def expected(self) -> dict[str, Counter[int]]:
        """Per metrics key, the distribution of each survey's last score."""
        distributions: dict[str, Counter[int]] = defaultdict(Counter)
        for touchpoint, score in self.final.values():
            number = int(touchpoint.removeprefix("tp-"))
            for owner in (
                f"touchpoint:{touchpoint}",
                f"channel:{_CHANNELS[number % len(_CHANNELS)]}",
                f"service:{_SERVICES[number % len(_SERVICES)]}",
            ):
                distributions[owner][score] += 1
        return distributions


def scheduled(survey: str, citizen: str, touchpoint: str, now: datetime) -> bytes:
    """Write a SurveyScheduled as the intake does, due in an hour."""
    number = int(touchpoint.removeprefix("tp-"))
    return json.dumps(
        {
            "type": "SurveyScheduled",
            "survey_id": survey,
            "citizen_key": citizen,
            "contact_id": f"contact-{survey}",
            "touchpoint_id": touchpoint,
            "occurred_at": (now - timedelta(minutes=10)).isoformat(),
            "channel": "sms",
            "language": "fi",
            "scale": "csat-5",
            "contact_ended_at": (now - timedelta(minutes=11)).isoformat(),
            "send_at": (now + timedelta(hours=1)).isoformat(),
            "expires_at": (now + timedelta(days=3)).isoformat(),
            "service": _SERVICES[number % len(_SERVICES)],
            "touchpoint_channel": _CHANNELS[number % len(_CHANNELS)],
        }
    ).encode()


def answered(answer: str, survey: str, score: int, now: datetime) -> bytes:
    """Write a confirmed RatingReceived as the web service does."""
    return json.dumps(
        {
            "type": "RatingReceived",
            "answer_id": answer,
            "survey_id": survey,
            "score": score,
            "via": "sms-reply",
            "received_at": (now - timedelta(minutes=5)).isoformat(),
            "confirmed": True,
        }
    ).encode()


TOUCHPOINTS = [f"tp-{n}" for n in range(6)]
_CHANNELS = ["phone", "face-to-face", "digital"]
_SERVICES = ["tax", "health"]


def rating(
    touchpoint: str, survey: str, *, revision: int, score: int, at: datetime
) -> dict[str, Any]:
    """One Rating as the responses stage publishes it."""
    number = int(touchpoint.removeprefix("tp-"))
    return {
        "type": "Rating",
        "rating_id": f"{survey}.r{revision}",
        "survey_id": survey,
        "revision": revision,
        "touchpoint_id": touchpoint,
        "service": _SERVICES[number % len(_SERVICES)],
        "touchpoint_channel": _CHANNELS[number % len(_CHANNELS)],
        "survey_channel": "sms",
        "language": "fi",
        "scale": "csat-5",
        "score": score,
        "normalised": (score - 1) / 4,
        "answered_after_seconds": 120.0,
        "answered_at": at.isoformat(),
    }


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    """Write records with an idempotent producer; return once the broker acknowledged them all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, request_timeout_ms=60_000
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


# Waiting.


async def wait_for(
    done: Callable[[], bool],
    readers: list[Reader],
    workers: list[Worker],
    what: str,
    *,
    seconds: float = DEADLINE_SECONDS,
    explain: Callable[[], str] | None = None,
    idle: float | None = None,
    group: tuple[str, str] | None = None,
) -> None:
    """Poll the readers until ``done()``; fail with the logs if a worker dies or time runs out.

    ``explain`` says what is still missing, for the failure message. With
    ``idle``, give up early once the readers have seen nothing new for that
    long: the workers have done all they will do. ``group`` (bootstrap,
    consumer group) adds, on failure, the partitions the group has not
    committed to their end: where the workers stopped.
    """
    start = time.monotonic()
    deadline = start + seconds
    seen, moved = -1, start
    while not done():
        for worker in workers:
            assert worker.alive(), f"a worker died:\n{worker.tail()}"
        now = time.monotonic()
        count = sum(len(reader.records) for reader in readers)
        if count != seen:
            seen, moved = count, now
        stalled = idle is not None and now - moved >= idle
        if now >= deadline or stalled:
            await dump_tasks(workers)
            logs = "\n".join(worker.tail()[-3000:] for worker in workers)
            missing = explain() if explain is not None else ""
            how = f"nothing new for {idle:.0f} s" if stalled else "timed out"
            behind = "" if group is None else await group_behind(*group)
            behind += "\n" + "; ".join([await reader_progress(reader) for reader in readers])
            raise AssertionError(f"{how} waiting for {what}: {missing}\n{behind}\n{logs}")
        for reader in readers:
            await reader.poll()
        await asyncio.sleep(0.02)


async def reader_progress(reader: Reader) -> str:
    """Say how many records a reader holds of what its topic has: a reader behind is no worker."""
    partitions = list(reader.consumer.assignment())
    try:
        ends = await reader.consumer.end_offsets(partitions)
        starts = await reader.consumer.beginning_offsets(partitions)
        positions = {tp: await reader.consumer.position(tp) for tp in partitions}
    except Exception as error:  # noqa: BLE001 - only for a failure message
        return f"{reader.topic}: unknown ({error!r})"
    total = sum(ends[tp] - starts[tp] for tp in partitions)
    return (
        f"{reader.topic}: read {len(reader.records)} of {total}, "
        f"positions {sorted((tp.partition, positions[tp], ends[tp]) for tp in partitions)}"
    )


async def dump_tasks(workers: list[Worker]) -> None:
    """Have each live worker log the stack of every asyncio task (SIGUSR1): where it waits."""
    for worker in workers:
        if worker.alive() and worker.process is not None:
            worker.process.send_signal(signal.SIGUSR1)
    await asyncio.sleep(2.0)


async def group_behind(bootstrap: str, group: str) -> str:
    """List the partitions whose committed offset is short of their end, for a failure message."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        # The group's inputs: its internal topics and the topics of its run (same suffix).
        suffix = group.removeprefix("palaute")
        inputs = [
            name
            for name in await admin.list_topics()
            if (name.startswith(group + "-") or name.endswith(suffix))
            and not name.endswith("-changelog")
            and "__assignor" not in name
        ]
        await consumer.topics()  # metadata of every topic, for the partitions below
        partitions = [
            TopicPartition(name, partition)
            for name in inputs
            for partition in consumer.partitions_for_topic(name) or ()
        ]
        ends = await consumer.end_offsets(sorted({*committed, *partitions}))
    finally:
        await consumer.stop()
        await admin.close()
    behind = sorted(
        f"{tp.topic}[{tp.partition}] committed {meta.offset} of {ends[tp]}"
        for tp, meta in committed.items()
        if meta.offset < ends[tp]
    )
    # Written to, never committed: either an output, or an input nobody has read yet.
    behind += sorted(
        f"{tp.topic}[{tp.partition}] never committed, {ends[tp]} records"
        for tp in partitions
        if tp not in committed and ends.get(tp, 0) > 0
    )
    return f"group {group} behind on {len(behind)} partitions: " + "; ".join(behind)


async def settle(readers: list[Reader], seconds: float) -> None:
    """Keep reading a while longer, so that a late repeat would show up too."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for reader in readers:
            await reader.poll()


async def stop_all(workers: list[Worker]) -> list[int | None]:
    """SIGTERM every worker (in a thread: servers in this loop must keep answering)."""
    return [await asyncio.to_thread(worker.stop) for worker in workers]


class SurveyLog:
    """The surveys topic read so far, decoded once per record."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._events: list[Any] = []

    def events(self) -> list[Any]:
        """Every survey event read so far."""
        records = self.reader.records
        self._events.extend(survey_event(r.value) for r in records[len(self._events) :])
        return self._events


def decided(events: list[Any]) -> set[str]:
    """Contact ids with a decision so far."""
    return set(_decisions_by_contact(events))


def scheduled_ids(events: list[Any]) -> set[str]:
    """Survey ids scheduled so far."""
    return {e.survey_id for e in events if isinstance(e, SurveyScheduled)}


def all_ended(events: list[Any]) -> bool:
    """Whether every survey scheduled so far has ended."""
    return set(endings(events)) >= scheduled_ids(events)


def still_missing(
    events: list[Any],
    valid: set[str],
    metrics: list[Any] | None = None,
    expected: dict[str, Counter[int]] | None = None,
) -> str:
    """Say what a wait is still waiting for: undecided contacts, open surveys, short figures."""
    undecided = sorted(valid - decided(events))
    open_surveys = scheduled_ids(events) - set(endings(events))
    said = f"undecided {len(undecided)} {undecided[:10]}, {len(open_surveys)} surveys not ended"
    if open_surveys:
        # What each open survey went through: where its lifecycle stopped.
        history = {
            survey_id: [
                type(e).__name__ for e in events if getattr(e, "survey_id", None) == survey_id
            ]
            for survey_id in sorted(open_surveys)[:5]
        }
        said += f" {history}"
    if metrics is not None and expected is not None:
        published = published_metrics(metrics, "24h")
        short = {
            key: (sum(published.get(key, Counter()).values()), sum(counts.values()))
            for key, counts in expected.items()
            if published.get(key) != counts
        }
        said += f", figures (counted, expected) {short}"
    return said


# The oracles.


def _decisions_by_contact(events: list[Any]) -> dict[str, set[tuple[str, str]]]:
    """Per contact id, the distinct decisions published (cancellations of a survey excluded).

    A decision is identified by what it decided: the survey id scheduled, or
    the skip reason. A worker killed between publishing a decision and
    storing the citizen's history publishes the same decision again on
    restart (same survey id), which downstream stages de-duplicate: that is
    one decision, published twice.
    """
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    scheduled: set[str] = set()
    for event in events:
        if isinstance(event, SurveyScheduled):
            scheduled.add(event.survey_id)
            found[event.contact_id].add(("scheduled", event.survey_id))
        elif isinstance(event, SurveySkipped) and not (
            event.reason is SkipReason.SUPERSEDED and event.survey_id in scheduled
        ):
            found[event.contact_id].add(("skipped", str(event.reason)))
    return found


def check_one_decision_per_contact(events: list[Any], valid: set[str]) -> None:
    """Every valid contact has exactly one decision, and nothing else was decided."""
    found = _decisions_by_contact(events)
    missing = valid - set(found)
    assert not missing, f"{len(missing)} contacts without a decision, e.g. {sorted(missing)[:5]}"
    extra = set(found) - valid
    assert not extra, f"decisions for contacts never sent: {sorted(extra)[:5]}"
    twice = {contact_id: ds for contact_id, ds in found.items() if len(ds) != 1}
    assert not twice, f"contacts decided more than one way: {dict(list(twice.items())[:5])}"


def texts(simulator: TwilioSimulator) -> Counter[str]:
    """SMS per recipient number that reached the Twilio simulator."""
    return Counter(m["to"] for m in simulator.messages if m["direction"] == "outbound-api")


def mails(sink: SmtpSink) -> Counter[str]:
    """Emails per recipient address that the SMTP server accepted."""
    return Counter(address for mail in sink.received for address in mail.rcpt_tos)


def check_no_message_twice(simulator: TwilioSimulator | None, sink: SmtpSink | None) -> None:
    """No citizen received the same survey twice, by SMS or by email."""
    for received in (
        texts(simulator) if simulator else Counter[str](),
        mails(sink) if sink else Counter[str](),
    ):
        doubled = [who for who, count in received.items() if count > 1]
        assert not doubled, f"{len(doubled)} citizens got a message twice"


@dataclass(frozen=True)
class Outcomes:
    """How the scheduled surveys ended."""

    sent: int
    unknown: int
    failed: int
    expired: int


def check_every_survey_ends_once(events: list[Any]) -> Outcomes:
    """Every scheduled survey has exactly one ending on the surveys topic; count them by kind."""
    scheduled = scheduled_ids(events)
    ends = endings(events)
    assert set(ends) == scheduled, f"{len(scheduled - set(ends))} surveys never ended"
    twice = {survey: found for survey, found in ends.items() if len(found) != 1}
    shown = {
        survey: [(e.type, getattr(e, "reason", None), e.occurred_at.isoformat()) for e in found]
        for survey, found in list(twice.items())[:3]
    }
    assert not twice, f"{len(twice)} surveys ended more than once, e.g. {shown}"
    kinds = Counter((found[0].type, getattr(found[0], "reason", None)) for found in ends.values())
    unknown = kinds[("SurveyFailed", "outcome-unknown")]
    failed = sum(n for (kind, _), n in kinds.items() if kind == "SurveyFailed") - unknown
    return Outcomes(
        sent=kinds[("SurveySent", None)],
        unknown=unknown,
        failed=failed,
        expired=sum(n for (kind, _), n in kinds.items() if kind == "SurveyExpired"),
    )


def check_dead_letters(
    records: list[Any], bad: dict[bytes, str | None], stage: str | None, topic: str
) -> None:
    """Check that the dead-letter topic holds exactly the bad records, whole, and nothing else.

    A record is identified by where it came from (topic, partition, offset):
    a worker killed after setting a record aside but before committing its
    offset sets it aside again on restart, with the same source coordinates.
    ``bad`` maps each bad value to its expected reason code (None: any).
    """
    letters: dict[tuple[str, int, int], tuple[bytes, DeadLetter]] = {}
    for record in records:
        letter = DeadLetter.from_headers(list(record.headers))
        source = (letter.source_topic, letter.source_partition, letter.source_offset)
        previous = letters.setdefault(source, (record.value, letter))
        assert previous[0] == record.value, f"two different records from {source}"
    values = Counter(value for value, _ in letters.values())
    wrong, missing = set(values) - set(bad), set(bad) - set(values)
    assert not wrong, f"{len(wrong)} dead letters of records that were not bad"
    assert not missing, f"{len(missing)} bad records not dead-lettered"
    assert set(values.values()) == {1}, "one bad record set aside from two places"
    for value, letter in letters.values():
        assert stage is None or letter.stage == stage, letter
        assert letter.source_topic == topic, letter
        expected = bad[value]
        if expected is not None:
            assert letter.reason_code == expected, (value, letter.reason_code)


def expected_metrics(
    records: list[tuple[bytes, bytes]], bad: set[bytes]
) -> dict[str, Counter[int]]:
    """Per metrics key, the score distribution of the latest revision of each survey.

    Written here, apart from the engine, as the plain recomputation the
    worker's figures must equal.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for _, value in records:
        if value in bad:
            continue
        record = json.loads(value)
        for owner in (
            f"touchpoint:{record['touchpoint_id']}",
            f"channel:{record['touchpoint_channel']}",
            f"service:{record['service']}",
        ):
            current = latest.get((owner, record["survey_id"]))
            if current is None or current["revision"] < record["revision"]:
                latest[(owner, record["survey_id"])] = record
    distributions: dict[str, Counter[int]] = defaultdict(Counter)
    for (owner, _), record in latest.items():
        distributions[owner][record["score"]] += 1
    return distributions


def published_metrics(records: list[Any], window: str) -> dict[str, Counter[int]]:
    """Give the latest figures published per key for one window, as score distributions."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record.key.decode()] = json.loads(record.value)
    suffix = f":{window}"
    return {
        key.removesuffix(suffix): Counter({int(s): n for s, n in figures["distribution"].items()})
        for key, figures in latest.items()
        if key.endswith(suffix)
    }


def metrics_match(records: list[Any], expected: dict[str, Counter[int]], window: str) -> bool:
    """Whether the metrics topic holds the expected figures for every key."""
    published = published_metrics(records, window)
    return all(published.get(key) == counts for key, counts in expected.items())


def check_metrics(records: list[Any], expected: dict[str, Counter[int]], window: str) -> None:
    """Every acknowledged rating is in the metrics: each key's figures equal the recomputation."""
    published = published_metrics(records, window)
    wrong = {
        key: (sum(published.get(key, Counter()).values()), sum(counts.values()))
        for key, counts in expected.items()
        if published.get(key) != counts
    }
    assert not wrong, f"keys whose figures differ (counted, expected): {wrong}"


class SmtpRelay:
    """A real SMTP server on one fixed loopback port that can go down and come back.

    What it received survives the outages, in :attr:`sink`.
    """

    def __init__(self) -> None:
        self.sink = SmtpSink()
        self._server: asyncio.Server | None = None
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            self.sink.port = probe.getsockname()[1]

    async def up(self) -> None:
        """Listen on the port (again)."""
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            self.sink.connections += 1
            return SMTP(_Handler(self.sink), hostname="relay.palaute.test", loop=loop)

        self._server = await loop.create_server(protocol, HOST, self.sink.port, reuse_address=True)

    async def down(self) -> None:
        """Stop listening: new connections are refused, as with a relay that is down."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
