"""After a demo-sized run, no phone number, address or identity code is where it must not be.

``palaute demo`` runs for about a minute on a broker of its own (kept up
afterwards so its topics can be read): the synthetic front office sends
contacts with real-looking Finnish mobile numbers and addresses, three
careless records among them (one with an identity code), and simulated
citizens answer by SMS and by tapping links, some with comments.

Then every log line (the demo's terminal, the worker's and the web
service's logs), the web service's /metrics, and every record of every
topic of the run is searched: with ``phonenumbers.PhoneNumberMatcher``
(region FI), the redaction module's email pattern, the identity-code
checker, and literally for each number and address the demo used.

Personal data is expected in exactly these places, and docs/privacy.md says
for how long: the vault; the contacts topic (front-office input, as sent)
and the worker's two repartition topics that carry contacts and contact
details to their partitions; the scheduler's table changelog while a survey
is open; and the values of the dead-letter topic (the original bytes of
rejected input). Everything else must be clean; the test also checks that
the scan read enough to mean something and that the demo really sent
surveys to the numbers and addresses it looks for.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import aiohttp
import phonenumbers
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.identity_codes import identity_code_spans
from schemas.redaction import EMAIL_PATTERN
from schemas.topics import CONTACTS, DEADLETTER, SURVEYS, VAULT

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The demo runs until this much happened (about a minute on a quiet machine)...
MIN_SMS = 60
MIN_EMAILS = 10
MIN_ANSWERS = 20
#: ...or fails after this long: a busy 2-core machine sends at half the pace or less.
MAX_RUN_SECONDS = 420
#: The identity code the demo's careless record carries.
DEMO_IDENTITY_CODE = "131052-308T"
#: Internal topics (after the app id and suffix) that carry contact details on purpose.
DETAIL_INTERNAL_TOPICS = ("-contacts-by-citizen", "-surveys-by-id", "-survey-lifecycle-changelog")
MIN_RECORDS = 2_000
FRACTION = re.compile(r"\d+\.\d+(?![\d.])")
MESSAGE_ID_LOCAL_PART = re.compile(r"\d+\.\d+\.\d+")
MIN_LOG_LINES = 50
TWILIO_SID = re.compile(r"(?<![0-9A-Za-z])[A-Z]{2}[0-9a-f]{32}(?![0-9a-f])")


@dataclass
class Findings:
    """Where personal data was found, and how much was read."""

    hits: dict[str, list[str]] = field(default_factory=dict)  # place -> what kind
    records: Counter[str] = field(default_factory=Counter)

    def add(self, place: str, kinds: list[str]) -> None:
        """Remember what was found in one place."""
        if kinds:
            self.hits.setdefault(place, []).extend(kinds)


@dataclass(frozen=True)
class Needles:
    """The demo's own numbers and addresses, searched for literally too."""

    phones: frozenset[str]
    emails: frozenset[str]

    def kinds_in(self, text: str) -> list[str]:
        """Name each kind of personal data in ``text`` (empty when clean)."""
        kinds: list[str] = []
        lowered = text.lower()
        if any(phone in text or phone[1:] in text for phone in self.phones):
            kinds.append("demo phone number")
        if any(email in lowered for email in self.emails):
            kinds.append("demo email address")
        # Fractions (a timestamp's microseconds, a mean) read as Finnish numbers: "09:27:12.023648"
        # would be 02 3648. No phone number is written as digits, a dot and digits alone.
        masked = FRACTION.sub("<n>", text)
        matcher = phonenumbers.PhoneNumberMatcher(
            masked, "FI", leniency=phonenumbers.Leniency.VALID
        )
        kinds.extend(f"phone number {match.raw_string!r}" for match in matcher)
        kinds.extend(
            f"email address {m.group()!r}"
            for m in EMAIL_PATTERN.finditer(text)
            # An SMTP Message-ID (email.utils.make_msgid: time.pid.random@sender's domain)
            # has the shape of an address but names a message, not a person.
            if not MESSAGE_ID_LOCAL_PART.fullmatch(m.group().partition("@")[0])
        )
        # Twilio's message SIDs are the provider's hex, not ours (Palaute's own ids are
        # letters only): one may hold a code's shape by chance, and names nobody.
        unsided = TWILIO_SID.sub("<sid>", text)
        if DEMO_IDENTITY_CODE in text or any(identity_code_spans(unsided, checked=True)):
            kinds.append("identity code")
        return kinds


def _free_port_pair() -> int:
    """Find a port whose successor (the broker's controller's) is free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no free pair of ports")


def _demo(port: int) -> list[str]:
    return [
        sys.executable, "-m", "palaute", "demo", "--port", str(port), "--web-port", "0",
        "--speed", "1", "--duration", str(MAX_RUN_SECONDS), "--keep-kafka",
    ]  # fmt: skip


def _kafka_down(port: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "palaute", "kafka", "down", "--port", str(port), "--wipe"],
        capture_output=True,
        timeout=120,
        check=False,
    )


class DemoRun:
    """The demo as a subprocess, with its children's logs held open (the demo deletes them)."""

    def __init__(self, port: int, output: Path) -> None:
        self.output = output
        with output.open("w") as out:
            # The demo's broker may take over a minute to start on a busy machine.
            environment = {**os.environ, "PALAUTE_KAFKA_STARTUP_TIMEOUT": "180"}
            self.process = subprocess.Popen(
                _demo(port), stdout=out, stderr=subprocess.STDOUT, text=True, env=environment
            )
        self.logs: dict[str, IO[str]] = {}
        self.base_url: str | None = None
        self.worker_url: str | None = None
        self.metrics: list[str] = []

    def text(self) -> str:
        """Everything the demo printed so far."""
        return self.output.read_text(errors="replace")

    def follow(self) -> None:
        """Open the children's logs and note the web service's address as they appear."""
        text = self.text()
        for name, path in re.findall(r"(Web service|Worker) .*?log (/\S+?)\)", text):
            if name not in self.logs:
                self.logs[name] = open(path, encoding="utf-8", errors="replace")  # noqa: PTH123, SIM115 - held open past the demo's clean-up
        found = re.search(r"Web service at (http://\S+) \(pid", text)
        if found:
            self.base_url = found.group(1)
        found = re.search(r"Worker metrics at (http://\S+)/metrics \(pid", text)
        if found:
            self.worker_url = found.group(1)

    def close(self) -> None:
        """Stop the demo if it still runs (Ctrl-C: it stops what it started), close the logs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for log in self.logs.values():
            log.close()


async def _scrape(base_url: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base_url + "/metrics", timeout=aiohttp.ClientTimeout(total=30)) as response,
    ):
        assert response.status == 200
        return await response.text()


def _progress(text: str) -> tuple[int, int, int]:
    """Give the last status line's sent SMS, sent emails and answers."""
    found = re.findall(r"sent SMS (\d+), email (\d+) \| answers (\d+)", text)
    return (0, 0, 0) if not found else tuple(int(n) for n in found[-1])  # type: ignore[return-value]


async def _run_demo(run: DemoRun) -> None:
    """Let the demo run until enough was sent and answered; scrape /metrics; stop it with Ctrl-C.

    The demo's own pace depends on the machine: a busy one sends later, so the
    run ends on what happened, not after a fixed time.
    """
    deadline = time.monotonic() + MAX_RUN_SECONDS
    while run.process.poll() is None:
        assert time.monotonic() < deadline, run.text()[-3000:]
        run.follow()
        sms, email, answers = _progress(run.text())
        if sms >= MIN_SMS and email >= MIN_EMAILS and answers >= MIN_ANSWERS:
            assert run.base_url is not None, run.text()[-3000:]
            assert run.worker_url is not None, run.text()[-3000:]
            for _ in range(2):
                run.metrics.append(await _scrape(run.base_url))
                run.metrics.append(await _scrape(run.worker_url))
                await asyncio.sleep(3)
            run.process.send_signal(signal.SIGINT)
            await asyncio.to_thread(run.process.wait, 120)
            break
        await asyncio.sleep(1.0)
    run.follow()


async def _topics(bootstrap: str, suffix: str) -> dict[str, int]:
    """List the run's topics with their partition counts."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if suffix in name)
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def _read(bootstrap: str, topic: str, partition_count: int) -> list[Any]:
    """Read a topic from the beginning to its current end with a fresh consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, n) for n in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            for batch in (await consumer.getmany(*remaining, timeout_ms=500)).values():
                records.extend(batch)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


def _needles(vault: list[Any], surveys: list[Any]) -> tuple[Needles, int]:
    """Find the numbers and addresses of surveys the demo really sent, and count the sends."""
    sent = {
        json.loads(r.value)["survey_id"]
        for r in surveys
        if r.value is not None and b'"SurveySent"' in r.value
    }
    phones: set[str] = set()
    emails: set[str] = set()
    for record in vault:
        if record.value is None:
            continue
        details = json.loads(record.value)
        if details["survey_id"] in sent:
            if details.get("phone"):
                phones.add(details["phone"])
            if details.get("email"):
                emails.add(details["email"].lower())
    return Needles(frozenset(phones), frozenset(emails)), len(sent)


def _record_text(record: Any, *, value: bool) -> str:
    parts = [(record.key or b"").decode(errors="replace")]
    if value:
        parts.append((record.value or b"").decode(errors="replace"))
    parts.extend(f"{name}={data.decode(errors='replace')}" for name, data in record.headers or ())
    return "\n".join(parts)


def _may_hold_details(topic: str, suffix: str) -> bool:
    if topic in {CONTACTS + suffix, VAULT + suffix}:
        return True
    return any(topic.endswith(name) for name in DETAIL_INTERNAL_TOPICS)


async def _scan_topics(bootstrap: str, suffix: str, needles: Needles) -> tuple[Findings, Findings]:
    """Scan every topic of the run; give findings where none may be, and where some may."""
    clean, allowed = Findings(), Findings()
    for topic, partition_count in (await _topics(bootstrap, suffix)).items():
        records = await _read(bootstrap, topic, partition_count)
        holds_details = _may_hold_details(topic, suffix)
        target = allowed if holds_details else clean
        target.records[topic] += len(records)
        for record in records:
            # Dead letters keep the original bytes of what was rejected; their
            # reason (the headers) and keys must be clean.
            whole = not holds_details and topic != DEADLETTER + suffix
            target.add(topic, needles.kinds_in(_record_text(record, value=whole or holds_details)))
            if topic == DEADLETTER + suffix:
                allowed.add(topic, needles.kinds_in((record.value or b"").decode(errors="replace")))
    return clean, allowed


async def _inspect(bootstrap: str) -> tuple[Needles, int, Findings, Findings]:
    """Find the run's topics, what the demo sent to whom, and scan every topic."""
    topics = await _topics(bootstrap, ".demo-")
    suffixes = {match.group(1) for name in topics if (match := re.search(r"(\.demo-\d+)", name))}
    assert len(suffixes) == 1, sorted(topics)
    suffix = suffixes.pop()
    vault = await _read(bootstrap, VAULT + suffix, topics[VAULT + suffix])
    surveys = await _read(bootstrap, SURVEYS + suffix, topics[SURVEYS + suffix])
    needles, sent = _needles(vault, surveys)
    clean, allowed = await _scan_topics(bootstrap, suffix, needles)
    return needles, sent, clean, allowed


@pytest.mark.timeout(MAX_RUN_SECONDS + 300)  # the run, plus the broker's start and the scan
def test_no_personal_data_outside_the_places_that_need_it_after_a_demo_run(
    tmp_path: Path,
) -> None:
    """A leak into a log, a metric or an analytics topic would outlive every deletion promise."""
    port = _free_port_pair()
    run = DemoRun(port, tmp_path / "demo.out")
    bootstrap = f"127.0.0.1:{port}"
    try:
        asyncio.run(_run_demo(run))
        output = run.text()
        assert run.process.returncode in {0, 1}, output[-3000:]
        assert set(run.logs) == {"Web service", "Worker"}, output[-3000:]
        needles, sent, clean, allowed = asyncio.run(_inspect(bootstrap))
    finally:
        logs = {name: log.read() for name, log in run.logs.items()}
        run.close()
        _kafka_down(port)

    # The scan is not vacuous: the demo sent surveys to the very numbers and addresses searched for.
    assert sent >= MIN_SMS + MIN_EMAILS, sent
    assert len(needles.phones) >= MIN_SMS // 2, len(needles.phones)
    assert len(needles.emails) >= MIN_EMAILS // 2, len(needles.emails)
    assert sum(clean.records.values()) >= MIN_RECORDS, clean.records
    for role in ("surveys", "responses", "comments", "ratings", "metrics"):
        assert any(f"palaute.{role}.v1" in topic for topic in clean.records), clean.records
    assert {topic for topic in allowed.hits if CONTACTS in topic or VAULT in topic}, allowed.hits
    lines = [line for text in (output, *logs.values()) for line in text.splitlines()]
    assert len(lines) >= MIN_LOG_LINES, len(lines)
    assert len(run.metrics) == 4
    assert all("palaute_" in text for text in run.metrics)
    # The worker's own page is scraped too (its agents' progress is only there).
    assert all(
        "palaute_agent_last_progress_timestamp_seconds" in text for text in run.metrics[1::2]
    ), run.metrics[1][:2000]

    assert clean.hits == {}, {place: sorted(set(kinds))[:4] for place, kinds in clean.hits.items()}
    log_hits = {
        f"{where}:{number}": needles.kinds_in(line)
        for where, text in (("demo", output), *logs.items(), *(("metrics", m) for m in run.metrics))
        for number, line in enumerate(text.splitlines(), 1)
        if needles.kinds_in(line)
    }
    assert log_hits == {}
