"""``palaute privacy erase`` against a real broker and a running ``palaute worker``.

Contacts of three citizens go through the worker, so the vault holds their
details and the scheduler holds their pending surveys (no SMS provider is
configured and the send delay is an hour: nothing is sent). One citizen
asks to be forgotten. Afterwards, read as compaction leaves a compacted
topic (the latest value per key), nothing on the vault, the scheduler's
changelog or the comments topic identifies them, the other citizens are
untouched, and the metrics topic is what it was.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engine.pseudonym import citizen_key
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import Citizen, TouchpointChannel
from schemas.responses import CommentReceived, Rating
from schemas.surveys import SkipReason
from schemas.topics import COMMENTS, METRICS, RATINGS, SURVEYS, VAULT, comment_key
from tests.fixtures import RunTopics, start_worker, stop_process

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

SECRET = "integration-pseudonymisation-key-erasure-0123"
PARTITIONS = 2
SOURCE = "/crm/privacy-test"
DEADLINE_SECONDS = 180.0  # a step of a running worker, on a busy 2-core machine
ERASED_PHONE = "+358401110001"
ERASED_EMAIL = "poistettava@example.fi"
KEPT_PHONE = "+358401110002"
KEPT_EMAIL = "pysyva@example.fi"


def _config(tmp_path: Path, bootstrap: str, suffix: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "{SECRET}"
link_signing_key = "integration-link-signing-key-9876543210abc"

[streams]
app_id = "privacy-erase"
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = {PARTITIONS}

[policy]
quiet_hours_start = "00:00"
quiet_hours_end = "00:00"
holiday_handling = "ignore"

[metrics]
emit_interval = "1s"

[defaults]
send_delay = "1h"
""",
        encoding="utf-8",
    )
    return path


def _contact(number: int, citizen: dict[str, Any], touchpoint: str) -> bytes:
    ended = datetime.now(UTC) - timedelta(minutes=5)
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
                    "id": touchpoint,
                    "name": "Palvelupiste",
                    "channel": "phone",
                    "service": "tax",
                },
            },
        }
    ).encode()


CONTACTS = [
    # The citizen who asks to be forgotten, once by number only and once through a
    # system that gives its own reference (a key the number alone cannot derive).
    (1, {"phone": ERASED_PHONE, "consent": {"sms": True}}, "phone-service"),
    (
        2,
        {
            "id": "cust-7",
            "phone": ERASED_PHONE,
            "email": ERASED_EMAIL,
            "consent": {"sms": True, "email": True},
        },
        "walk-in",
    ),
    (3, {"phone": KEPT_PHONE, "consent": {"sms": True}}, "phone-service"),
    (4, {"email": KEPT_EMAIL, "consent": {"email": True}}, "walk-in"),
]


def _key(**identity: str) -> str:
    return citizen_key(SECRET.encode(), Citizen.model_validate(identity), source=SOURCE)


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    """Read a topic from the beginning to its current end with a fresh consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []  # a changelog the worker has not created yet
        # Every topic of the run, the worker's changelogs too, has PARTITIONS partitions.
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


def _latest(records: list[Any]) -> dict[bytes, bytes | None]:
    """Keep what compaction keeps: the latest value per key (None for a tombstone)."""
    latest: dict[bytes, bytes | None] = {}
    for record in records:
        latest[record.key] = record.value
    return latest


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _wait_until(check: Any, what: str, worker: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        result = await check()
        if result:
            return result
        assert worker.poll() is None, f"worker died:\n{_tail(log)}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{_tail(log)}"
        await asyncio.sleep(2.0)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _erase(config: Path, *identifier: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "palaute", "privacy", "erase", *identifier,
         "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _rating(survey_id: str, touchpoint: str, score: int) -> bytes:
    return (
        Rating(
            rating_id=f"rating-{survey_id}",
            survey_id=survey_id,
            touchpoint_id=touchpoint,
            service="tax",
            touchpoint_channel=TouchpointChannel.PHONE,
            survey_channel=SurveyChannel.SMS,
            language=Language.FI,
            scale=Scale.CSAT_5,
            score=score,
            normalised=Scale.CSAT_5.normalise(score),
            answered_after_seconds=60.0,
            answered_at=datetime.now(UTC),
        )
        .model_dump_json()
        .encode()
    )


@pytest.fixture
def run_topics() -> RunTopics:
    """Create every topic of the run (compacted ones compacted), and no internal topic."""
    return RunTopics(internal=(), partitions=PARTITIONS, configured=True)


@dataclass
class Run:
    """One test run: the broker, its topics and the worker."""

    bootstrap: str
    suffix: str
    worker: subprocess.Popen[bytes]
    log: Path

    @property
    def changelog(self) -> str:
        """The scheduler's table changelog, where a pending survey keeps its details."""
        return f"privacy-erase{self.suffix}-survey-lifecycle-changelog"

    async def latest(self, topic: str) -> dict[bytes, bytes | None]:
        """Read a topic as compaction leaves it."""
        return _latest(await _read_all(self.bootstrap, topic))

    async def wait_until(self, check: Any, what: str) -> Any:
        """Poll until ``check`` gives something true; the worker must stay up meanwhile."""
        return await _wait_until(check, what, self.worker, self.log)


async def _pending_surveys(run: Run) -> dict[str, Any]:
    """Send the contacts; wait until the vault and the scheduler hold every survey's details."""
    await _produce(
        run.bootstrap,
        "palaute.contacts.v1" + run.suffix,
        [(f"c-{n}".encode(), _contact(n, c, t)) for n, c, t in CONTACTS],
    )

    async def all_held() -> dict[str, Any] | None:
        vault = await run.latest(VAULT + run.suffix)
        details = {k.decode(): json.loads(v) for k, v in vault.items() if v is not None}
        held = [v for v in (await run.latest(run.changelog)).values() if v]
        ready = len(details) == len(CONTACTS) and all(
            any(
                survey_id.encode() in state
                and str(entry.get("phone") or entry.get("email")).encode() in state
                for state in held
            )
            for survey_id, entry in details.items()
        )
        return details if ready else None

    found: dict[str, Any] = await run.wait_until(all_held, "every survey pending")
    return found


async def _answers(run: Run, surveys: list[str], twice: str) -> dict[bytes, bytes | None]:
    """Write a comment per survey (two on ``twice``) as the web service does, and ratings.

    Returns the metrics once every rating is counted.
    """
    comments = [
        CommentReceived(
            answer_id=f"comment-{number}-{survey_id}",
            survey_id=survey_id,
            text="Palvelu oli ystävällistä.",
            received_at=datetime.now(UTC),
        )
        for number, survey_id in [*((1, s) for s in surveys), (2, twice)]
    ]
    await _produce(
        run.bootstrap,
        COMMENTS + run.suffix,
        [
            (comment_key(c.survey_id, c.answer_id).encode(), c.model_dump_json().encode())
            for c in comments
        ],
    )
    await _produce(
        run.bootstrap,
        RATINGS + run.suffix,
        [(b"phone-service", _rating(s, "phone-service", 4)) for s in surveys],
    )

    seen: list[dict[bytes, bytes | None]] = []

    async def figures() -> dict[bytes, bytes | None] | None:
        """Give the figures once every rating is counted and two reads agree."""
        latest = await run.latest(METRICS + run.suffix)
        counts = [json.loads(v).get("count") for v in latest.values() if v is not None]
        settled = bool(seen) and seen[-1] == latest
        seen.append(latest)
        return latest if settled and counts and max(counts) >= len(surveys) else None

    settled: dict[bytes, bytes | None] = await run.wait_until(figures, "the metrics")
    return settled


async def _assert_forgotten(run: Run, before: dict[str, Any], erased_keys: set[str]) -> None:
    """Check that the erased citizen is gone from every compacted topic, and no one else."""
    erased = {s for s, d in before.items() if d["citizen_key"] in erased_keys}
    vault = await run.latest(VAULT + run.suffix)
    for survey_id, details in before.items():
        value = vault[survey_id.encode()]
        if survey_id in erased:
            assert value is None
        else:
            assert value is not None
            assert json.loads(value) == details
    held = [v for v in (await run.latest(run.changelog)).values() if v is not None]
    for secret in (ERASED_PHONE, ERASED_EMAIL):
        assert not any(secret.encode() in value for value in held)
    others = [v for v in held if KEPT_PHONE.encode() in v or KEPT_EMAIL.encode() in v]
    assert len(others) == len(before) - len(erased)  # still pending, details kept
    skips = [
        json.loads(r.value)
        for r in await _read_all(run.bootstrap, SURVEYS + run.suffix)
        if r.value is not None and b'"SurveySkipped"' in r.value
    ]
    assert {s["survey_id"] for s in skips} == erased
    assert all(s["reason"] == SkipReason.OPTED_OUT.value for s in skips)
    comments = await run.latest(COMMENTS + run.suffix)
    live = [json.loads(v)["survey_id"] for v in comments.values() if v is not None]
    assert not erased & set(live), "a comment on an erased citizen's survey is still live"
    assert sorted(live) == sorted(set(before) - erased)  # the others' comments stay
    tombstoned = {k.decode() for k, v in comments.items() if v is None}
    assert {k.partition("|")[0] for k in tombstoned} == erased
    assert len(tombstoned) == len(erased) + 1  # both comments of the survey with two


async def _assert_not_asked_again(run: Run) -> None:
    """Check that a later contact of the erased citizen is skipped as opted out, unstored."""
    later = {"phone": ERASED_PHONE, "consent": {"sms": True}}
    await _produce(
        run.bootstrap,
        "palaute.contacts.v1" + run.suffix,
        [(b"c-5", _contact(5, later, "walk-in"))],
    )

    async def decided() -> dict[str, Any] | None:
        for record in await _read_all(run.bootstrap, SURVEYS + run.suffix):
            event = json.loads(record.value) if record.value else {}
            if event.get("contact_id") == "contact-5":
                return dict(event)
        return None

    decision = await run.wait_until(decided, "the later contact's decision")
    assert decision["type"] == "SurveySkipped"
    assert decision["reason"] == SkipReason.OPTED_OUT.value
    vault = await run.latest(VAULT + run.suffix)
    assert not any(v is not None and ERASED_PHONE.encode() in v for v in vault.values())


async def test_erase_leaves_nothing_that_identifies_the_citizen_and_touches_no_one_else(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """A request to be forgotten must reach every live copy of their details, and only theirs."""
    config = _config(tmp_path, kafka_bootstrap, run_suffix)
    log = tmp_path / "worker.log"
    run = Run(kafka_bootstrap, run_suffix, start_worker(config, log), log)
    try:
        before = await _pending_surveys(run)
        erased_keys = {d["citizen_key"] for d in before.values() if d.get("phone") == ERASED_PHONE}
        # One key from the number alone, one from the source system's reference.
        assert erased_keys == {
            _key(phone=ERASED_PHONE),
            _key(id="cust-7", phone=ERASED_PHONE, email=ERASED_EMAIL),
        }
        twice = min(s for s, d in before.items() if d["citizen_key"] in erased_keys)
        metrics_before = await _answers(run, sorted(before), twice)

        result = await asyncio.to_thread(_erase, config, "--phone", "040 111 0001")
        printed = result.stdout + result.stderr
        assert result.returncode == 0, printed
        assert ERASED_PHONE not in printed
        assert "111 0001" not in printed
        assert _key(phone=ERASED_PHONE) in result.stdout
        assert "vault entries tombstoned: 2" in result.stdout
        assert "unfinished surveys called off: 2" in result.stdout
        assert "comments tombstoned: 3" in result.stdout

        async def scheduler_forgot() -> bool:
            held = (await run.latest(run.changelog)).values()
            return not any(v is not None and ERASED_PHONE.encode() in v for v in held)

        await run.wait_until(scheduler_forgot, "the scheduler to forget the details")
        await asyncio.sleep(3.0)  # a late record would show up by now
        await _assert_forgotten(run, before, erased_keys)
        # Aggregates are pseudonymous and stay as they were.
        assert await run.latest(METRICS + run_suffix) == metrics_before

        again = await asyncio.to_thread(_erase, config, "--phone", ERASED_PHONE)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "vault entries tombstoned: 0" in again.stdout
        assert "comments tombstoned: 0" in again.stdout
        assert "nothing left to erase" in again.stdout
        await _assert_not_asked_again(run)
        assert run.worker.poll() is None, _tail(log)
    finally:
        stop_process(run.worker)
    worker_log = log.read_text(errors="replace")
    for secret in (ERASED_PHONE, ERASED_EMAIL, KEPT_PHONE, KEPT_EMAIL):
        assert secret not in worker_log


def test_bad_identifiers_get_a_clear_error_and_exit_status_2(tmp_path: Path) -> None:
    """An operator's typo must fail loudly before anything is read or written."""
    for identifier in (
        ["--phone", "12"],
        ["--email", "ei-osoite"],
        [],
        ["--citizen-id", "cust-1"],  # a reference is unique only within its source
        ["--phone", ERASED_PHONE, "--source", SOURCE],
        ["--citizen-key", "not-a-key"],
    ):
        result = _erase(tmp_path / "missing.toml", *identifier)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr


CLOSED_PHONE = "+358401110003"
REFERENCE_ONLY_PHONE = "+358401110004"


def _closed_survey_records(
    key: str, survey_id: str, contact_number: int
) -> list[tuple[str, bytes, bytes | None]]:
    """Give what a worker leaves of a survey that was sent and then closed.

    Its SurveyScheduled and SurveyExpired on the surveys topic, the vault's
    details followed by the tombstone the scheduler writes at the close.
    """
    from schemas.surveys import (  # noqa: PLC0415 - this test only
        SurveyEvent,
        SurveyExpired,
        SurveyScheduled,
    )
    from schemas.vault import ContactDetails  # noqa: PLC0415 - this test only

    at = datetime.now(UTC) - timedelta(days=2)
    scheduled = SurveyScheduled(
        survey_id=survey_id,
        citizen_key=key,
        contact_id=f"contact-{contact_number}",
        touchpoint_id="walk-in",
        occurred_at=at,
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=at,
        send_at=at,
        expires_at=at + timedelta(days=1),
    )
    common = scheduled.model_dump(include=set(SurveyEvent.model_fields) - {"type"})
    expired = SurveyExpired(**common, was_sent=True)
    details = ContactDetails(
        survey_id=survey_id, citizen_key=key, phone=None, language=Language.FI, stored_at=at
    )
    return [
        (SURVEYS, key.encode(), scheduled.model_dump_json().encode()),
        (SURVEYS, key.encode(), expired.model_dump_json().encode()),
        (VAULT, survey_id.encode(), details.model_dump_json().encode()),
        (VAULT, survey_id.encode(), None),
    ]


async def test_a_closed_survey_of_a_reference_keyed_citizen_loses_its_comment(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """Erasure by phone once printed "surveys found: 0" and left a comment that named the person.

    The citizen's contact carried the CRM's own reference, so their key comes
    from it; the survey closed, so the vault no longer ties the number to that
    key. The contact event on the contacts topic still does, and a citizen
    whose contacts are gone too is found by the reference and its source.
    """
    config = _config(tmp_path, kafka_bootstrap, run_suffix)
    by_phone = {"id": "cust-31", "phone": CLOSED_PHONE, "consent": {"sms": True}}
    phone_key = _key(id="cust-31", phone=CLOSED_PHONE)
    reference_key = _key(id="cust-32", phone=REFERENCE_ONLY_PHONE)
    kept_key = _key(phone=KEPT_PHONE)
    records = [
        *_closed_survey_records(phone_key, "sv-closed-phone", 31),
        *_closed_survey_records(reference_key, "sv-closed-reference", 32),
        *_closed_survey_records(kept_key, "sv-closed-kept", 33),
    ]
    for topic in (SURVEYS, VAULT):
        mine = [(key, value) for name, key, value in records if name == topic]
        await _produce_with_tombstones(kafka_bootstrap, topic + run_suffix, mine)
    # Only the first citizen's contact is still on the contacts topic.
    await _produce(
        kafka_bootstrap,
        "palaute.contacts.v1" + run_suffix,
        [(b"c-31", _contact(31, by_phone, "walk-in"))],
    )
    comments = [
        CommentReceived(
            answer_id=f"answer-{survey_id}",
            survey_id=survey_id,
            text="Maija Meikäläinen kiittää.",  # free text names the person
            received_at=datetime.now(UTC),
        )
        for survey_id in ("sv-closed-phone", "sv-closed-reference", "sv-closed-kept")
    ]
    await _produce(
        kafka_bootstrap,
        COMMENTS + run_suffix,
        [
            (comment_key(c.survey_id, c.answer_id).encode(), c.model_dump_json().encode())
            for c in comments
        ],
    )

    result = await asyncio.to_thread(_erase, config, "--phone", CLOSED_PHONE)
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    assert CLOSED_PHONE not in printed
    assert "surveys found for this citizen: 1" in result.stdout, printed
    assert f"(also {phone_key})" in result.stdout, printed
    assert f"  {COMMENTS + run_suffix}: 1\n" in result.stdout, printed
    assert f"  palaute.contacts.v1{run_suffix}: 1\n" in result.stdout, printed
    assert "nothing left to erase" not in result.stdout

    by_id = await asyncio.to_thread(_erase, config, "--citizen-id", "cust-32", "--source", SOURCE)
    assert by_id.returncode == 0, by_id.stdout + by_id.stderr
    assert f"citizen key {reference_key}" in by_id.stdout, by_id.stdout
    assert f"  {COMMENTS + run_suffix}: 1\n" in by_id.stdout, by_id.stdout

    latest = _latest(await _read_all(kafka_bootstrap, COMMENTS + run_suffix))
    live = {json.loads(v)["survey_id"] for v in latest.values() if v is not None}
    assert live == {"sv-closed-kept"}  # the others' comment stays

    again = await asyncio.to_thread(_erase, config, "--phone", CLOSED_PHONE)
    assert "nothing left to erase" in again.stdout, again.stdout + again.stderr


async def _produce_with_tombstones(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()
