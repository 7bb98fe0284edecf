"""Run the demo: every part of the engine live on this machine, and a terminal view of it.

Started here, stopped here, also on Ctrl-C or SIGTERM: the local Kafka broker
(unless it was already running, or ``--keep-kafka``), ``palaute web`` and
``palaute worker`` as subprocesses in their own process groups, and, in this
process, the Twilio simulator, an SMTP server, the synthetic front office
and the simulated citizens who answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connectors.kafka_client import client_options, local_broker
from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from engine.tokens import SigningKey, TokenPayload, TokenPurpose, TokenSigner
from ops.kafka import BrokerState, LocalKafka, create_topic, delete_topics, load_settings
from palaute.demo import citizens
from palaute.demo.frontoffice import (
    BY_ID,
    DEGRADED,
    FrontOffice,
    breakdowns_toml,
    broken_records,
    catalogue_toml,
)
from palaute.demo.mailsink import MailSink
from palaute.demo.outbox import Outbox
from schemas.deadletter import DeadLetter
from schemas.topics import (
    ALERTS,
    COMMENTS,
    CONTACTS,
    DEADLETTER,
    RATINGS,
    RESPONSES,
    SURVEYS,
    TOPICS,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from email.message import EmailMessage

PROCESS_STOP_SECONDS = 20.0
PARTITIONS = 4
APP_ID = "palaute-demo"
#: The worker's internal topics (``<app id>-<name>``), created beforehand like the changelogs.
INTERNAL_TOPICS = (
    "contacts-by-citizen",
    "surveys-by-id",
    "answers-by-survey",
    "metrics-by-key",
    "metrics-rollup",
)
#: The worker's tables (streams/*.py ``*_TABLE``): their changelogs are created beforehand
#: too, compacted as faust makes them; one created after the worker subscribed stays
#: unknown to it and crashes the first table write (faust's PartitionsMismatch).
TABLES = (
    "citizen-history",
    "survey-lifecycle",
    "survey-answers",
    "metrics-ledger",
    "metrics-rollup",
    "detector-state",
    "detector-activity",
    "alerts-notified",
)
_COMPACT = {"cleanup.policy": "compact"}
#: Contacts a second at ``--speed 1``.
BASE_RATE = 12.0
#: Ratings the degraded touchpoint needs first: the detector learns its baseline from 100
#: (50 learnt, 50 held back); a few more for ratings still on their way.
BASELINE_RATINGS = 105
LINK_SIGNING_KEY = "demo-only-link-signing-key-abcdefghijklmnop"
ACCOUNT_SID = "AC" + "de" * 16
AUTH_TOKEN = "demo-only-twilio-auth-token"  # noqa: S105 - the local simulator's, not a secret
SENDER = "+358451234567"
LINK = re.compile(r'href="([^"]+/r/[A-Za-z0-9_-]+)"')

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    """What ``palaute demo`` was asked for."""

    speed: float = 1.0
    duration: float | None = None
    degrade_after: float = 60.0
    events: int | None = None
    port: int | None = None
    web_port: int = 8080
    keep_kafka: bool = False
    exit_on_alert: bool = False


@dataclass
class Tally:
    """What the demo has seen on the topics so far."""

    contacts: int = 0
    scheduled: Counter[str] = field(default_factory=Counter)  # by channel
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    sent: Counter[str] = field(default_factory=Counter)  # by channel
    failed: int = 0
    #: Send time of each scheduled survey, until it is sent, fails or ends otherwise.
    unsent: dict[str, str] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)  # responses by type
    ratings: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> touchpoint, score
    #: Records set aside, by where they came from: a stage that repeats a record after
    #: a restart (at-least-once) writes its dead letter again, but it is one record.
    #: Each one's stage and reason code, for the summary.
    dead_lettered: dict[tuple[str, int, int], tuple[str, str]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # alert id -> latest
    degraded_at: float | None = None

    def ratings_of(self, touchpoint: str) -> list[int]:
        """Scores of one touchpoint, latest revision of each rating."""
        return [score for tp, score in self.ratings.values() if tp == touchpoint]

    def active(self) -> list[dict[str, Any]]:
        """Alerts firing now."""
        return [alert for alert in self.alerts.values() if alert["state"] == "firing"]

    def degraded_alert(self, kind: str | None = None) -> dict[str, Any] | None:
        """Find an alert (of one kind, or any) that fired for the degraded touchpoint."""
        for alert in self.alerts.values():
            if alert["touchpoint_id"] == DEGRADED and kind in {None, alert["kind"]}:
                return alert
        return None

    def line(self, elapsed: float) -> str:
        """One progress line for the terminal; what matters most comes first."""
        degraded = self.ratings_of(DEGRADED)
        decided = sum(self.scheduled.values()) + sum(self.skipped.values())
        return (
            f"[{elapsed:4.0f}s] alerts {len(self.active())} | contacts {self.contacts} | "
            f"decided {decided} | sent SMS {self.sent['sms']}, email {self.sent['email']} | "
            f"answers {sum(self.answers.values())} | ratings {len(self.ratings)} | "
            f"{DEGRADED}: {len(degraded)} ratings, mean {_mean(degraded)}"
        )


def _mean(scores: list[int]) -> str:
    return f"{sum(scores) / len(scores):.2f}" if scores else "  - "


def _say(message: str) -> None:
    print(message, flush=True)  # noqa: T201 - the demo talks to its terminal


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _web_port(wanted: int) -> int:
    """Keep the wanted port when the web service can bind it.

    The probe binds as aiohttp does, with SO_REUSEADDR: without it, sockets
    of the last run still in TIME-WAIT after a Ctrl-C make a free port look
    taken, and every rerun moved off 8080.
    """
    if wanted == 0:
        return _free_port()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", wanted))
        except OSError:
            port = _free_port()
            _say(f"Port {wanted} is taken; the web service uses {port}.")
            return port
    return wanted


@dataclass(frozen=True)
class Ports:
    """Where the demo's parts listen."""

    bootstrap: str
    web: int
    simulator: str
    smtp: int
    operator_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    #: The worker's own /metrics and /healthz, for Prometheus and the orchestrator.
    worker_web: int = field(default_factory=_free_port)

    @property
    def base_url(self) -> str:
        """The web service, as citizens and Twilio reach it."""
        return f"http://127.0.0.1:{self.web}"


def _write_config(directory: Path, ports: Ports, suffix: str) -> Path:
    path = directory / "palaute-demo.toml"
    path.write_text(
        f"""# Written by `palaute demo`; development keys only.
[kafka]
bootstrap_servers = ["{ports.bootstrap}"]

[secrets]
pseudonymisation_key = "demo-only-pseudonymisation-key-0123456789"
link_signing_key = "{LINK_SIGNING_KEY}"

[streams]
app_id = "{APP_ID}"
topic_suffix = "{suffix}"
data_dir = "{directory / "data"}"
partitions = {PARTITIONS}
web_host = "127.0.0.1"
web_port = {ports.worker_web}

[twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
from_number = "{SENDER}"
api_base_url = "{ports.simulator}"

[smtp]
host = "127.0.0.1"
port = {ports.smtp}
security = "none"
sender = "palaute@example.fi"
sender_name = "Palaute"
timeout_seconds = 10

[web]
public_base_url = "{ports.base_url}"
bind_port = {ports.web}
# The demo's operator token (printed in the terminal) opens the dashboard and acknowledges alerts.
ops_token_sha256 = ["{hashlib.sha256(ports.operator_token.encode()).hexdigest()}"]

[policy]
# The demo runs at any hour: no quiet hours, no holidays.
quiet_hours_start = "00:00"
quiet_hours_end = "00:00"
holiday_handling = "ignore"

[dispatch]
sms_per_second = 200
email_per_second = 200
burst = 200
tick = "1s"
retry_base = "1s"
retry_cap = "5s"

[alerts]
# A CSAT target (share of 4s and 5s) on the busiest touchpoint, for target-breach alerts:
# well below its usual share (about 78 %), so that chance alone does not breach it.
csat_targets = {{ "{DEGRADED}" = 0.65 }}

{breakdowns_toml()}
{catalogue_toml()}
[defaults.organisation]
# Who asks: named first in every SMS and on every email and answer page.
name = {{ fi = "Demokaupunki", sv = "Demostad", en = "Demo City" }}
privacy_url = "https://palaute.example.fi/tietosuoja"
stop_word_in_sms = true
""",
        encoding="utf-8",
    )
    return path


class Child:
    """A ``palaute`` subprocess in its own process group, so Ctrl-C reaches the demo only."""

    def __init__(self, name: str, arguments: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "palaute", *arguments],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL if it hangs."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(PROCESS_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Anything the child left in its group goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Citizens:
    """The simulated citizens: they read their SMS and email and sometimes answer."""

    def __init__(
        self, tally: Tally, simulator: TwilioSimulator, base_url: str, speed: float
    ) -> None:
        self.tally = tally
        self.simulator = simulator
        self.base_url = base_url
        self.speed = speed
        self.rng = random.Random(11)  # noqa: S311 - simulated behaviour, not secrets
        self.by_phone: dict[str, str] = {}  # number -> touchpoint of the latest contact
        self.by_email: dict[str, str] = {}
        self.signer = TokenSigner([SigningKey("k1", LINK_SIGNING_KEY.encode())])
        self.tasks: set[asyncio.Task[None]] = set()
        self.seen_sms: set[str] = set()
        self.answered: Counter[str] = Counter()  # what the citizens did, by kind
        self.session: aiohttp.ClientSession | None = None

    def level(self, touchpoint: str) -> float:
        """How satisfied citizens of a touchpoint are right now."""
        if touchpoint == DEGRADED and self.tally.degraded_at is not None:
            return citizens.DEGRADED_LEVEL
        return BY_ID[touchpoint].mean

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def poll_sms(self) -> None:
        """Look at the simulator's outbound texts; a citizen answers some of them."""
        for message in self.simulator.messages:
            sid = message["sid"]
            if message["direction"] != "outbound-api" or sid in self.seen_sms:
                continue
            self.seen_sms.add(sid)
            touchpoint = self.by_phone.get(message["to"])
            if touchpoint is None:
                continue
            reply = citizens.sms_reply(self.rng, self.level(touchpoint), self.speed)
            if reply is not None:
                self._spawn(self._text_back(message["to"], reply))

    async def _text_back(self, number: str, reply: citizens.SmsReply) -> None:
        await asyncio.sleep(reply.delay)
        try:
            await self.simulator.send_inbound(number, reply.body)
            self.answered["sms"] += 1
        except (aiohttp.ClientError, OSError, ValueError):
            self.answered["sms-failed"] += 1

    def mail(self, message: EmailMessage) -> None:
        """Hand a delivered survey email to its citizen, who may answer with a one-tap link."""
        touchpoint = self.by_email.get(str(message["To"].addresses[0].addr_spec))
        body = message.get_body(preferencelist=("html",))
        if touchpoint is None or body is None:
            return
        answer = citizens.email_answer(self.rng, self.level(touchpoint), self.speed)
        if answer is None:
            return
        now = datetime.now(UTC)
        for link in {html.unescape(link) for link in LINK.findall(body.get_content())}:
            payload = self.signer.verify(link.rsplit("/", 1)[-1], now)
            if (
                isinstance(payload, TokenPayload)
                and payload.purpose is TokenPurpose.SCORE
                and payload.score == answer.score
            ):
                self._spawn(self._tap(link, answer))
                return

    async def _tap(self, link: str, answer: citizens.EmailAnswer) -> None:
        """Open the score link, let the page's script vote and tap the score, as a person does."""
        await asyncio.sleep(answer.delay)
        # Each citizen has an address and a browser of their own.
        address = f"127.0.0.{self.rng.randint(2, 250)}"
        agent = f"Mozilla/5.0 (demo citizen {self.rng.randrange(10**9)})"
        json_headers = {"Accept": "application/json", "User-Agent": agent}
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        try:
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=10)
            ) as session:
                async with session.get(link, headers={"User-Agent": agent}) as page:
                    await page.read()
                # The page votes by itself (which never counts alone), then the citizen taps.
                for mode in ("auto", "tap"):
                    async with session.post(
                        link, data={"score": str(answer.score), "mode": mode}, headers=json_headers
                    ) as vote:
                        await vote.read()
                if answer.comment is not None:
                    await asyncio.sleep(3.0)
                    async with session.post(
                        link + "/comment", data={"comment": answer.comment}, headers=json_headers
                    ) as comment:
                        await comment.read()
            self.answered["email"] += 1
        except (aiohttp.ClientError, OSError):
            self.answered["email-failed"] += 1


def _record_survey(tally: Tally, data: dict[str, Any]) -> None:
    kind = data.get("type")
    if kind == "SurveyScheduled":
        tally.scheduled[data["channel"]] += 1
        tally.unsent[data["survey_id"]] = data["send_at"]
    elif kind == "SurveySkipped":
        tally.skipped[data["reason"]] += 1
        tally.unsent.pop(data["survey_id"], None)
    elif kind == "SurveySent":
        tally.sent[data["channel"]] += 1
        tally.unsent.pop(data["survey_id"], None)
    elif kind == "SurveyFailed":
        tally.failed += 1
        tally.unsent.pop(data["survey_id"], None)
    elif kind == "SurveyExpired":
        tally.unsent.pop(data["survey_id"], None)


def _record_alert(tally: Tally, data: dict[str, Any]) -> dict[str, Any] | None:
    known = tally.alerts.get(data["alert_id"])
    tally.alerts[data["alert_id"]] = data
    return data if known is None or known["state"] != data["state"] else None


def _record(
    tally: Tally, topic: str, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()
) -> dict[str, Any] | None:
    """Count one record; return an alert when it is new or changed its state."""
    if topic.startswith(DEADLETTER):
        with contextlib.suppress(ValueError):  # only a worker's own dead letters are counted
            letter = DeadLetter.from_headers(list(headers))
            source = (letter.source_topic, letter.source_partition, letter.source_offset)
            tally.dead_lettered[source] = (letter.stage, letter.reason_code)
        return None
    try:
        data = json.loads(value or b"null")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    if topic.startswith(SURVEYS):
        _record_survey(tally, data)
    elif topic.startswith((RESPONSES, COMMENTS)):
        tally.answers[str(kind)] += 1
    elif topic.startswith(RATINGS) and kind == "Rating":
        tally.ratings[data["rating_id"]] = (data["touchpoint_id"], data["score"])
    elif topic.startswith(ALERTS) and kind == "ScoreDropAlert":
        return _record_alert(tally, data)
    return None


def _figure(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _show_alert(alert: dict[str, Any], base_url: str) -> None:
    evidence = alert.get("evidence") or {}
    where = alert.get("dashboard_url") or ""
    _say("")
    _say(
        f"*** ALERT {alert['state'].upper()}: {alert['kind']} on {alert['touchpoint_id']} "
        f"({alert['severity']})"
    )
    _say(f"    {alert['summary']}")
    figures = {
        "before": alert.get("before"),
        "after": alert.get("after"),
        "target": alert.get("target"),
        "ratings": alert.get("sample_size"),
        "statistic": evidence.get("statistic"),
        "threshold": evidence.get("threshold"),
    }
    shown = "  ".join(
        f"{name} {_figure(value)}" for name, value in figures.items() if value is not None
    )
    _say(f"    evidence ({evidence.get('method')}): {shown}")
    if where:
        _say(f"    {base_url + where if where.startswith('/') else where}")
    if alert["state"] == "firing":
        _say(f"    acknowledge it with a comment: {base_url}/dashboard/alerts")
    _say("")


class Demo:
    """The running demo's parts, and the loop that drives them."""

    def __init__(self, options: DemoOptions, ports: Ports, suffix: str) -> None:
        self.options = options
        self.ports = ports
        self.suffix = suffix
        self.tally = Tally()
        self.stop = asyncio.Event()
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the front office opened."""
        return time.monotonic() - self.started

    async def feed(self, office: FrontOffice, crowd: Citizens) -> None:
        """Send contacts at the demo's rate, as the day brings them (Poisson arrivals)."""
        producer = AIOKafkaProducer(
            **client_options(local_broker(self.ports.bootstrap)),
            enable_idempotence=True,
            linger_ms=20,
        )
        await producer.start()
        rng = random.Random(3)  # noqa: S311 - simulated arrivals, not secrets
        rate = BASE_RATE * self.options.speed
        try:
            for key, value in broken_records():
                await producer.send(CONTACTS + self.suffix, value, key=key)
            while not self.stop.is_set():
                if self.options.events is not None and office.count >= self.options.events:
                    await asyncio.sleep(0.5)
                    continue
                contact = office.next(datetime.now(UTC).replace(microsecond=0))
                if contact.phone:
                    crowd.by_phone[contact.phone] = contact.touchpoint.id
                if contact.email:
                    crowd.by_email[contact.email] = contact.touchpoint.id
                await producer.send(CONTACTS + self.suffix, contact.value, key=contact.key)
                self.tally.contacts = office.count
                await asyncio.sleep(rng.expovariate(rate))
        finally:
            await producer.stop()

    async def watch(self) -> None:
        """Read every output topic and keep the tally; show alerts as they change."""
        consumer = AIOKafkaConsumer(
            *(
                name + self.suffix
                for name in (SURVEYS, RESPONSES, COMMENTS, RATINGS, ALERTS, DEADLETTER)
            ),
            **client_options(local_broker(self.ports.bootstrap)),
            group_id=f"{APP_ID}-terminal{self.suffix}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while not self.stop.is_set():
                batches = await consumer.getmany(timeout_ms=300)
                for partition, batch in batches.items():
                    for record in batch:
                        alert = _record(self.tally, partition.topic, record.value, record.headers)
                        if alert is not None:
                            _show_alert(alert, self.ports.base_url)
        finally:
            await consumer.stop()

    def maybe_degrade(self) -> None:
        """Degrade the busiest touchpoint once it is due and the detector has its baseline."""
        if self.tally.degraded_at is not None or self.elapsed() < self.options.degrade_after:
            return
        if len(self.tally.ratings_of(DEGRADED)) < BASELINE_RATINGS:
            return
        self.tally.degraded_at = self.elapsed()
        _say("")
        _say(
            f">>> {self.elapsed():.0f}s: service at {DEGRADED} degrades now "
            f"(its citizens' scores fall from about 4.2 to about 3; "
            f"{len(self.tally.ratings_of(DEGRADED))} ratings so far, mean "
            f"{_mean(self.tally.ratings_of(DEGRADED))})"
        )
        _say("")

    async def show(self, crowd: Citizens, children: list[Child]) -> None:
        """Print progress, degrade on time, and stop when asked to."""
        interactive = sys.stdout.isatty()
        last = 0.0
        alert_seen: float | None = None
        while not self.stop.is_set():
            await asyncio.sleep(1.0)
            crowd.poll_sms()
            self.maybe_degrade()
            now = self.elapsed()
            if interactive:
                # One line rewritten in place; a wrapped line could not be.
                width = shutil.get_terminal_size().columns - 1
                line = self.tally.line(now)[:width].ljust(width)
                print("\r" + line, end="", flush=True)  # noqa: T201 - the terminal
            elif now - last >= 5.0:  # noqa: PLR2004 - a line every 5 s in a log
                _say(self.tally.line(now))
                last = now
            for child in children:
                if not child.alive():
                    _say(f"\n{child.name} exited with status {child.process.returncode}; "
                         f"see {child.log_path}")  # fmt: skip
                    self.stop.set()
            if self.options.duration is not None and now >= self.options.duration:
                _say(f"\n--duration {self.options.duration:.0f}s reached.")
                self.stop.set()
            # The drop detector's own finding; a target breach usually comes first.
            if self.tally.degraded_alert("drop") is not None and alert_seen is None:
                alert_seen = now
            if self.options.exit_on_alert and alert_seen is not None and now >= alert_seen + 3:
                _say("\nThe drop alert fired (--exit-on-alert).")
                self.stop.set()


async def _wait_for_web(base_url: str, web: Child, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline and web.alive():
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(base_url + "/healthz") as response:
                    if response.status == 200:  # noqa: PLR2004 - HTTP OK
                        return
            await asyncio.sleep(0.5)


async def _dashboard(base_url: str) -> str | None:
    """Tell where the dashboard is, when this version of the web service has one."""
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
            session.get(base_url + "/dashboard", allow_redirects=False) as response,
        ):
            if response.status != 404:  # noqa: PLR2004 - HTTP Not Found
                return base_url + "/dashboard"
    return None


def _summary(tally: Tally, crowd: Citizens) -> None:
    _say("")
    _say(f"Contacts: {tally.contacts}; dead-lettered records: {len(tally.dead_lettered)}")
    for (stage, reason), count in sorted(Counter(tally.dead_lettered.values()).items()):
        _say(f"  set aside by {stage:<10} {reason:<28} {count:>5}")
    for channel, count in sorted(tally.scheduled.items()):
        _say(f"  scheduled by {channel:<6} {count:>5}   sent {tally.sent[channel]:>5}")
    for reason, count in tally.skipped.most_common():
        _say(f"  skipped, {reason:<22} {count:>5}")
    _say(_unsent_line(tally, datetime.now(UTC)))
    _say(f"Citizens answered: {crowd.answered['sms']} by SMS, {crowd.answered['email']} by email")
    _say(f"Responses: {dict(tally.answers)}")
    _say(f"Ratings: {len(tally.ratings)}")
    for touchpoint in sorted({tp for tp, _ in tally.ratings.values()}):
        scores = tally.ratings_of(touchpoint)
        _say(f"  {touchpoint:<26} {len(scores):>4} ratings, mean {_mean(scores)}")
    for alert in tally.alerts.values():
        _say(f"Alert {alert['state']}: {alert['kind']} on {alert['touchpoint_id']}")
    found = tally.degraded_alert("drop") or tally.degraded_alert()
    if found is not None:
        _say(f"A {found['kind']} alert fired for the degraded touchpoint {DEGRADED}.")
    else:
        _say(f"No alert for {DEGRADED} yet (run longer, or faster with --speed).")


def _unsent_line(tally: Tally, now: datetime) -> str:
    """Say how many scheduled surveys were not sent when the demo stopped, and why."""
    if not tally.unsent:
        return f"Every scheduled survey was sent or closed ({tally.failed} failed)."
    waiting = sum(1 for send_at in tally.unsent.values() if datetime.fromisoformat(send_at) > now)
    behind = len(tally.unsent) - waiting
    return (
        f"Not sent when the demo stopped: {len(tally.unsent)} scheduled surveys: "
        f"{waiting} not yet due (their send delay had not passed), {behind} due but still "
        f"queued (the dispatcher was behind; on a loaded machine, try --speed 0.5); "
        f"{tally.failed} failed"
    )


def _start_children(children: list[Child], config: Path, directory: Path, ports: Ports) -> None:
    """Start the web service, then the worker; ``children`` holds each as soon as it runs."""
    web = Child("palaute web", ["web", "--config", str(config)], directory / "web.log")
    children.append(web)
    worker = Child("palaute worker", ["worker", "--config", str(config)], directory / "worker.log")
    children.append(worker)
    _say(f"Web service at {ports.base_url} (pid {web.process.pid}; log {web.log_path})")
    _say(
        f"Worker metrics at http://127.0.0.1:{ports.worker_web}/metrics "
        f"(pid {worker.process.pid}; log {worker.log_path})"
    )
    _say(f"Twilio simulator at {ports.simulator}; SMTP server at 127.0.0.1:{ports.smtp}")


async def _run(options: DemoOptions, bootstrap: str, suffix: str, directory: Path) -> int:
    loop = asyncio.get_running_loop()
    simulator = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER, callback_delay=0.2
        )
    )
    sim_url = await simulator.start("127.0.0.1", 0)
    crowd_ref: list[Citizens] = []
    outbox = Outbox(lambda: simulator.messages)
    outbox_url = await outbox.start()

    def deliver(message: EmailMessage) -> None:
        outbox.keep(message)
        if crowd_ref:
            crowd_ref[0].mail(message)

    sink = MailSink(deliver)
    smtp_port = await sink.start()
    web_port = _web_port(options.web_port)
    ports = Ports(bootstrap, web_port, sim_url, smtp_port)
    simulator.config.inbound_url = ports.base_url + "/twilio/inbound"
    demo = Demo(options, ports, suffix)
    crowd = Citizens(demo.tally, simulator, ports.base_url, options.speed)
    crowd_ref.append(crowd)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, demo.stop.set)
    config = _write_config(directory, ports, suffix)
    children: list[Child] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        _start_children(children, config, directory, ports)
        await _wait_for_web(ports.base_url, children[0])
        dashboard = await _dashboard(ports.base_url)
        if dashboard is not None:
            _say(f"Dashboard: {dashboard} (any user name; password {ports.operator_token})")
        _say(f"Outbox: {outbox_url} (each SMS and email as its citizen got it; links work)")
        _say(
            f"Front office opens: about {BASE_RATE * options.speed:.0f} contacts a second over "
            f"{len(BY_ID)} touchpoints; {DEGRADED} degrades after "
            f"{options.degrade_after:.0f}s. Ctrl-C stops everything."
        )
        demo.started = time.monotonic()
        tasks = [
            loop.create_task(demo.feed(FrontOffice(), crowd)),
            loop.create_task(demo.watch()),
            loop.create_task(demo.show(crowd, children)),
        ]
        await demo.stop.wait()
        _say("\nStopping...")
    finally:
        demo.stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        for task in list(crowd.tasks):
            task.cancel()
        await asyncio.gather(*crowd.tasks, return_exceptions=True)
        for child in reversed(children):
            await asyncio.to_thread(child.stop)
            _say(f"{child.name} stopped.")
        await simulator.stop()
        await sink.stop()
        await outbox.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    _summary(demo.tally, crowd)
    return 0 if demo.tally.degraded_alert() is not None else 1


def _quiet_client_logs() -> None:
    """Keep client libraries' chatter off the demo's terminal."""
    for name in ("aiokafka", "aiohttp", "mail.log", "connectors.twilio_sim"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _create_topics(bootstrap: str, suffix: str) -> None:
    # The workers' internal topics too: one a worker creates just before joining
    # its group can be missing from its first assignment.
    # As in production: the vault, the comments and the metrics are compacted (a
    # tombstone deletes), and time-retained topics keep their retention.
    for spec in TOPICS:
        configs = spec.configs() or None
        create_topic(bootstrap, spec.name + suffix, partitions=PARTITIONS, configs=configs)
    for name in INTERNAL_TOPICS:
        create_topic(bootstrap, f"{APP_ID}{suffix}-{name}", partitions=PARTITIONS)
    for table in TABLES:
        name = f"{APP_ID}{suffix}-{table}-changelog"
        create_topic(bootstrap, name, partitions=PARTITIONS, configs=_COMPACT)


def run_demo(options: DemoOptions) -> int:
    """Run the whole demo; return the process exit status (0: the alert fired)."""
    kafka = LocalKafka(load_settings(port=options.port))
    was_up = kafka.status().state is BrokerState.UP
    directory = Path(tempfile.mkdtemp(prefix="palaute-demo-"))
    suffix = f".demo-{int(time.time())}"
    bootstrap: str | None = None
    try:
        status = kafka.up()
        bootstrap = status.bootstrap_servers
        _say(f"Kafka is up at {bootstrap} (log: {status.log_path})")
        _quiet_client_logs()
        _create_topics(bootstrap, suffix)
        return asyncio.run(_run(options, bootstrap, suffix, directory))
    finally:
        # Cleaning up is not interrupted by another Ctrl-C: that would leave a broker behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not options.keep_kafka and bootstrap is not None:
            # The run's topics hold its made-up contact details and take room on disk
            # (about 40 MB a run): gone, whether the broker stays up or not.
            with contextlib.suppress(Exception):
                _delete_run_topics(bootstrap, suffix)
                _say("The demo's topics are deleted (keep them with --keep-kafka).")
        if not was_up and not options.keep_kafka:
            kafka.down()
            _say("Kafka stopped (it was started by the demo; keep it with --keep-kafka).")
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _delete_run_topics(bootstrap: str, suffix: str) -> None:
    """Delete this run's topics from a broker that stays up, so runs do not pile up."""

    async def names() -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415 - only at the end

        admin = AIOKafkaAdminClient(**client_options(local_broker(bootstrap)))
        await admin.start()
        try:
            return [name for name in await admin.list_topics() if suffix in name]
        finally:
            await admin.close()

    found = asyncio.run(names())
    if found:
        delete_topics(bootstrap, found)
