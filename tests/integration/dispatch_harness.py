"""What the dispatch tests share: a worker process, topic readers, contacts and the simulator.

``palaute worker`` runs as a real process against the session's broker, the
Twilio simulator runs in the test's loop (the worker's real twilio client
reaches it through ``[twilio] api_base_url``) and so does the aiosmtpd sink.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import TypeAdapter

from schemas.surveys import SkipReason, SurveyLifecycleEvent, SurveyScheduled, SurveySkipped
from tests.fixtures import PARTITIONS, Worker, create_run_topics, delete_run_topics

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["PARTITIONS", "Worker", "create_run_topics", "delete_run_topics"]

PSEUDONYMISATION_KEY = "dispatch-test-pseudonymisation-key-0123456789"
LINK_SIGNING_KEY = "dispatch-test-link-signing-key-9876543210abcdef"
ACCOUNT_SID = "AC" + "5d" * 16
AUTH_TOKEN = "dispatch-test-auth-token"
SENDER = "+358451234567"
PUBLIC_BASE_URL = "http://127.0.0.1:9"
SOURCE = "/crm/dispatch-test"
_EVENTS: TypeAdapter[Any] = TypeAdapter(SurveyLifecycleEvent)


def survey_event(value: bytes) -> Any:
    """Decode one record of the surveys topic."""
    return _EVENTS.validate_json(value)


def config_text(
    bootstrap: str,
    suffix: str,
    data_dir: Path,
    *,
    sim_url: str,
    smtp_port: int,
    extra: str = "",
) -> str:
    """Write a worker configuration: this run's topics, the simulator, the sink, no quiet hours.

    Quiet hours are turned off (start equals end) and holidays ignored, so the
    test gives the same result at any time of day in Helsinki.
    """
    return f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "{PSEUDONYMISATION_KEY}"
link_signing_key = "{LINK_SIGNING_KEY}"

[streams]
topic_suffix = "{suffix}"
data_dir = "{data_dir}"
partitions = {PARTITIONS}

[twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
from_number = "{SENDER}"
api_base_url = "{sim_url}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "palaute@example.fi"
sender_name = "Palaute"
timeout_seconds = 10

[web]
public_base_url = "{PUBLIC_BASE_URL}"

[policy]
quiet_hours_start = "00:00"
quiet_hours_end = "00:00"
holiday_handling = "ignore"
supersede_pending = false
{extra}
"""


def contact(
    number: int,
    citizen: dict[str, Any],
    touchpoint: str,
    ended: datetime,
    service: str = "tax",
) -> bytes:
    """One contact-completed event."""
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
                    "service": service,
                },
            },
        }
    ).encode()


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
        """Add what arrived since the last poll."""
        batches = await self.consumer.getmany(timeout_ms=200)
        for batch in batches.values():
            self.records.extend(batch)

    async def stop(self) -> None:
        """Close the consumer."""
        await self.consumer.stop()

    def events(self) -> list[Any]:
        """Every survey event read so far, decoded."""
        return [survey_event(record.value) for record in self.records]


#: How much longer than on an idle machine a step may take before a test gives up.
LOADED_MACHINE_FACTOR = 2.0


async def wait_until(
    done: Callable[[], bool],
    readers: list[Reader],
    worker: Worker,
    seconds: float,
    what: str,
) -> None:
    """Poll the readers until ``done()``; fail with the worker's log if it dies or time runs out.

    ``seconds`` is what the step takes at most on an idle machine; the
    deadline is :data:`LOADED_MACHINE_FACTOR` times that, since the suite
    also runs on busy 2-core machines. It ends as soon as ``done()`` holds.
    """
    deadline = time.monotonic() + seconds * LOADED_MACHINE_FACTOR
    while not done():
        assert worker.alive(), f"worker died:\n{worker.tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{worker.tail()}"
        for reader in readers:
            await reader.poll()
        await asyncio.sleep(0.05)


async def settle(readers: list[Reader], seconds: float) -> None:
    """Keep reading a while longer, so that a repeat would show up too."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for reader in readers:
            await reader.poll()


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Write records with an idempotent producer and wait for them all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


def sent_contact_ids(events: list[Any]) -> set[str]:
    """Name the contacts whose survey has a SurveySent among the events."""
    by_survey = {e.survey_id: e.contact_id for e in events if isinstance(e, SurveyScheduled)}
    return {
        by_survey[e.survey_id]
        for e in events
        if getattr(e, "type", "") == "SurveySent" and e.survey_id in by_survey
    }


def decisions(events: list[Any]) -> Counter[str]:
    """Decision events per contact id (SurveyScheduled or a skip that is not a cancellation)."""
    counts: Counter[str] = Counter()
    scheduled: set[str] = set()
    for event in events:
        if isinstance(event, SurveyScheduled):
            scheduled.add(event.survey_id)
            counts[event.contact_id] += 1
        elif isinstance(event, SurveySkipped) and not (
            event.reason is SkipReason.SUPERSEDED and event.survey_id in scheduled
        ):
            counts[event.contact_id] += 1
    return counts


TERMINAL = ("SurveySent", "SurveyFailed", "SurveyExpired")


def endings(events: list[Any]) -> dict[str, list[Any]]:
    """Per survey id, the events that end a scheduled survey (SurveyExpired only if unsent).

    An ending written again after a crash is the same record (equal in every
    field) and counts once: the surveys topic is at least once.
    """
    ends: dict[str, list[Any]] = {}
    for event in events:
        if event.type in TERMINAL and not (event.type == "SurveyExpired" and event.was_sent):
            found = ends.setdefault(event.survey_id, [])
            if event not in found:
                found.append(event)
    return ends


def later(moment: datetime, seconds: float) -> datetime:
    """``moment`` plus some seconds."""
    return moment + timedelta(seconds=seconds)
