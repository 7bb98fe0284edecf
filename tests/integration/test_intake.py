"""The intake stage end to end: a real broker and ``palaute worker`` as a real process.

The decisions are checked against :func:`engine.policy.decide` replayed as an
oracle, in the order the worker published them per citizen, with the ``now``
each decision event records. The worker is stopped and started again in the
middle, so the citizen history must survive a restart (rocksdict store and
changelog) for replayed contacts to stay duplicates.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engine.policy import CitizenHistory, decide
from engine.pseudonym import citizen_key
from schemas.config import load_settings
from schemas.deadletter import DeadLetter
from schemas.decoding import Rejected, decode_contact
from schemas.surveys import SkipReason, SurveyScheduled, SurveySkipped
from schemas.topics import CONTACTS, DEADLETTER, SURVEYS, VAULT
from schemas.vault import ContactDetails
from streams.intake import publications
from tests.fixtures import RunTopics, start_worker, stop_process

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from schemas.config import Settings
    from schemas.contacts import ContactCompleted

pytestmark = pytest.mark.integration

PSEUDONYMISATION_KEY = "integration-pseudonymisation-key-0123456789"
PARTITIONS = 4
SOURCE = "/crm/integration-test"
TOUCHPOINTS = ["phone-service", "sensitive-visit", "walk-in", "not-in-catalogue"]
DEADLINE_SECONDS = 180.0  # worker start and every decision, on a busy 2-core machine


@dataclass
class Traffic:
    """What the test produced, and what it expects from it."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    contacts: dict[str, ContactCompleted] = field(default_factory=dict)
    bad: dict[bytes, str] = field(default_factory=dict)  # original value -> reason code
    personal: set[str] = field(default_factory=set)  # every phone number and address used


def _config(tmp_path: Path, bootstrap: str, suffix: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "{PSEUDONYMISATION_KEY}"
link_signing_key = "integration-link-signing-key-9876543210abc"

[streams]
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = {PARTITIONS}

[touchpoints.phone-service]
sampling_rate = 0.6

[touchpoints.sensitive-visit]
sensitive = true

[touchpoints.walk-in]
channel_preference = ["email", "sms"]
send_delay = "1h"
""",
        encoding="utf-8",
    )
    return path


def _contact(rng: random.Random, number: int, citizen: dict[str, Any], now: datetime) -> bytes:
    ended = now - timedelta(minutes=rng.randint(1, 600), seconds=number)
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"evt-{number}",
            "source": SOURCE,
            "type": "fi.palaute.contact.completed.v1",
            "time": ended.isoformat(),
            "data": {
                "contact": {"id": f"contact-{number}", "ended_at": ended.isoformat()},
                "citizen": citizen,
                "touchpoint": {
                    "id": rng.choice(TOUCHPOINTS),
                    "name": "Palvelupiste",
                    "channel": "phone",
                    "service": rng.choice(["tax", "health"]),
                },
            },
        }
    ).encode()


def _traffic(count: int, first: int, citizens: list[dict[str, Any]], now: datetime) -> Traffic:
    rng = random.Random(first)  # noqa: S311 - reproducible test data, not secrets
    traffic = Traffic()
    for number in range(first, first + count):
        index = rng.randrange(len(citizens))
        value = _contact(rng, number, citizens[index], now)
        traffic.records.append((f"citizen-{index}".encode(), value))
        contact = decode_contact(value, now=now)
        assert not isinstance(contact, Rejected), contact.reason
        traffic.contacts[f"contact-{number}"] = contact
    for citizen in citizens:
        traffic.personal.update(v for k, v in citizen.items() if k in {"phone", "email"})
    return traffic


def _citizens(rng: random.Random) -> list[dict[str, Any]]:
    citizens = []
    for index in range(40):
        citizen: dict[str, Any] = {
            "consent": {"sms": rng.random() < 0.85, "email": rng.random() < 0.5},
        }
        if index % 3 != 2:
            citizen["phone"] = f"+35840{1000000 + index * 7919:07d}"
        if index % 3 != 0:
            citizen["email"] = f"asiakas{index}@example.fi"
        if index % 4 == 0:
            citizen["id"] = f"cust-{index}"
        if index % 13 == 5:
            citizen["age"] = 16
        if index % 11 == 7:
            citizen["consent"]["opted_out"] = True
        citizens.append(citizen)
    return citizens


def _bad_records(now: datetime) -> dict[bytes, str]:
    good = json.loads(_contact(random.Random(0), 99_000, {"phone": "+358401111111"}, now).decode())  # noqa: S311 - reproducible test data, not secrets
    hetu = json.loads(json.dumps(good))
    hetu["data"]["contact"]["context"] = {"case_type": "131052-308T"}
    naive = json.loads(json.dumps(good))
    naive["time"] = naive["time"][:19]
    return {
        b'{"specversion": "1.0", "data": {"citizen": {"phone": "+358401111111"': "invalid_json",
        json.dumps(hetu).encode(): "personal_identity_code",
        json.dumps(naive).encode(): "naive_timestamp",
        b"\xff\xfe not utf-8": "invalid_utf8",
        b"[1, 2, 3]": "not_an_object",
    }


class Reader:
    """Read a topic from the start, keeping every record seen so far."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.topic = topic
        self.records: list[Any] = []

    async def start(self) -> None:
        """Assign every partition and seek to the start."""
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def poll(self) -> None:
        """Add what arrived since the last poll that this test is about.

        The worker also runs the dispatcher, which writes the rest of each
        survey's life to the same topics (SurveyDispatching, SurveySent, …, and
        vault tombstones); the intake's output is the decisions and the details.
        """
        batches = await self.consumer.getmany(timeout_ms=200)
        for batch in batches.values():
            self.records.extend(record for record in batch if _from_intake(record.value))

    async def stop(self) -> None:
        """Close the consumer."""
        await self.consumer.stop()


def _from_intake(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        decoded = json.loads(value)
    except ValueError:
        return True  # dead letters keep the original bytes, whatever they are
    return not isinstance(decoded, dict) or decoded.get("type") not in _DISPATCH_EVENTS


_DISPATCH_EVENTS = {
    "SurveyDispatching",
    "SurveySent",
    "SurveyFailed",
    "SurveyExpired",
    "ReminderSent",
    "DeliveryReported",
}


def _is_cancellation(event: SurveyScheduled | SurveySkipped, scheduled: set[str]) -> bool:
    return (
        isinstance(event, SurveySkipped)
        and event.reason is SkipReason.SUPERSEDED
        and event.survey_id in scheduled
    )


def _decisions(records: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    scheduled: set[str] = set()
    for record in records:
        event = _survey_event(record.value)
        if _is_cancellation(event, scheduled):
            continue
        if isinstance(event, SurveyScheduled):
            scheduled.add(event.survey_id)
        counts[event.contact_id] = counts.get(event.contact_id, 0) + 1
    return counts


def _survey_event(value: bytes) -> SurveyScheduled | SurveySkipped:
    data = json.loads(value)
    model = SurveyScheduled if data["type"] == "SurveyScheduled" else SurveySkipped
    return model.model_validate(data)


async def _wait_for(
    readers: list[Reader], done: Any, worker: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done():
        assert worker.poll() is None, f"worker died:\n{_tail(log)}"
        assert time.monotonic() < deadline, f"timed out:\n{_tail(log)}"
        for reader in readers:
            await reader.poll()
    # A little longer, so that a repeated decision would show up too.
    for _ in range(5):
        for reader in readers:
            await reader.poll()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.fixture
def run_topics() -> RunTopics:
    """Create the intake's topics only."""
    return RunTopics(
        bases=(CONTACTS, SURVEYS, VAULT, DEADLETTER), internal=(), partitions=PARTITIONS
    )


def _oracle_check(records: list[Any], traffic: Traffic, settings: Settings) -> None:
    """Replay decide per citizen in published order; every published event must match."""
    secret = PSEUDONYMISATION_KEY.encode()
    histories: dict[bytes, CitizenHistory] = {}
    by_citizen: dict[bytes, list[Any]] = {}
    for record in records:
        by_citizen.setdefault(record.key, []).append(record)
    calendar = settings.policy.holiday_calendar()
    for key, published in by_citizen.items():
        position = 0
        while position < len(published):
            event = _survey_event(published[position].value)
            contact = traffic.contacts[event.contact_id]
            expected_key = citizen_key(secret, contact.data.citizen, source=contact.source)
            assert key == expected_key.encode()
            touchpoint, _ = settings.touchpoint(contact.data.touchpoint.id)
            decision = decide(
                contact,
                histories.get(key, CitizenHistory()),
                touchpoint,
                settings.policy,
                event.occurred_at,
                citizen_key=expected_key,
                is_holiday=calendar,
            )
            histories[key] = decision.history
            expected = [
                p.value
                for p in publications(decision, contact, event.occurred_at)
                if p.topic == "surveys"
            ]
            assert expected, f"the oracle calls {event.contact_id} a duplicate"
            actual = [r.value for r in published[position : position + len(expected)]]
            assert [_survey_event(v) for v in actual] == [_survey_event(v) for v in expected]
            position += len(expected)


async def test_intake_decides_every_contact_once_and_dead_letters_bad_records(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """Nothing lost, nothing twice, bad input set aside: the intake guarantees of the design."""
    config = _config(tmp_path, kafka_bootstrap, run_suffix)
    settings = load_settings(config)
    now = datetime.now(UTC)
    citizens = _citizens(random.Random(7))  # noqa: S311 - reproducible test data, not secrets
    first = _traffic(120, 0, citizens, now)
    second = _traffic(50, 1000, citizens, now)
    bad = _bad_records(now)
    # Phase 1: contacts, bad records in between, and repeats of some contacts.
    phase1 = list(first.records)
    for index, value in enumerate(bad):
        phase1.insert(index * 20 + 5, (f"bad-{index}".encode(), value))
    phase1 += first.records[:15]
    # Phase 2, after a restart: new contacts and repeats from before the restart.
    phase2 = second.records + first.records[30:45] + second.records[:5]
    contacts_by_id = {**first.contacts, **second.contacts}
    traffic = Traffic(contacts=contacts_by_id, personal=first.personal | {"+358401111111"})

    log = tmp_path / "worker.log"
    readers = [
        Reader(kafka_bootstrap, SURVEYS + run_suffix),
        Reader(kafka_bootstrap, DEADLETTER + run_suffix),
        Reader(kafka_bootstrap, VAULT + run_suffix),
    ]
    surveys, deadletters, vault = readers
    for reader in readers:
        await reader.start()
    worker = start_worker(config, log)
    try:
        await _produce(kafka_bootstrap, CONTACTS + run_suffix, phase1)
        await _wait_for(
            readers,
            lambda: (
                set(_decisions(surveys.records)) >= set(first.contacts)
                and len(deadletters.records) >= len(bad)
            ),
            worker,
            log,
        )
        assert worker.poll() is None, "a bad record must not stop the worker"
        assert stop_process(worker) == 0, log.read_text(errors="replace")[-4000:]

        await _produce(kafka_bootstrap, CONTACTS + run_suffix, phase2)
        worker = start_worker(config, log)
        await _wait_for(
            readers,
            lambda: set(_decisions(surveys.records)) >= set(contacts_by_id),
            worker,
            log,
        )
        assert worker.poll() is None
    finally:
        returncode = stop_process(worker)
        for reader in readers:
            await reader.stop()
    assert returncode == 0, log.read_text(errors="replace")[-4000:]

    # Exactly one decision per distinct valid contact id, across the restart.
    decisions = _decisions(surveys.records)
    assert set(decisions) == set(contacts_by_id)
    assert set(decisions.values()) == {1}
    # Every decision is what the policy computes, in the worker's order per citizen.
    _oracle_check(surveys.records, traffic, settings)
    # Every bad record is set aside whole, with the right reason.
    assert len(deadletters.records) == len(bad)
    for record in deadletters.records:
        assert record.value in bad
        headers = DeadLetter.from_headers(list(record.headers))
        assert headers.reason_code == bad[record.value]
        assert headers.stage == "intake"
        assert headers.source_topic == CONTACTS + run_suffix
        assert record.key is not None
        assert record.key.startswith(b"bad-")
    # Contact details only in the vault, one per scheduled survey.
    scheduled = {
        e.survey_id
        for e in map(_survey_event, (r.value for r in surveys.records))
        if isinstance(e, SurveyScheduled)
    }
    assert {r.key.decode() for r in vault.records} == scheduled
    assert all(ContactDetails.model_validate_json(r.value) for r in vault.records)
    exposed = [
        *(r.value for r in surveys.records),
        *(r.key for r in surveys.records),
        *(value for r in deadletters.records for _, value in r.headers),
    ]
    for personal in traffic.personal:
        assert not any(personal.encode() in blob for blob in exposed), "personal data leaked"
