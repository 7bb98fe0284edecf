"""A handler that raises on one record, in any stage of a running worker, skips nothing.

faust restarts an agent whose loop raised after the record it was handling,
so before per-record containment such a record was neither processed nor
set aside. Here each stage's handler is made to raise on one chosen record
(:mod:`faulty_worker`); that record must be dead-lettered naming the stage
and the error's class, and every record around it must be processed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from dispatch_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDER,
    Reader,
    Worker,
    config_text,
    contact,
    create_run_topics,
    decisions,
    delete_run_topics,
    produce,
    sent_contact_ids,
    settle,
    wait_until,
)
from smtp_server import running_smtp_sink

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from schemas.deadletter import DeadLetter
from schemas.samples import SAMPLES
from schemas.topics import ALERTS, CONTACTS, DEADLETTER, METRICS, RATINGS, SURVEYS

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

LAUNCHER = Path(__file__).with_name("faulty_worker.py")
FAULTS = {
    "intake": "fault-intake",
    "intake-decide": "fault-decide",
    "scheduler": "fault-scheduler",
    "responses": "fault-responses",
    "metrics": "fault-metrics",
    "notifier": "fault-notifier",
}
#: The stage label each fault's dead letter must name (the deciding stage is the intake's).
LABELS = {name: "intake" if name.startswith("intake") else name for name in FAULTS}


@pytest.fixture
def run_suffix(kafka_bootstrap: str) -> Iterator[str]:
    """Create this run's topics beforehand and delete them afterwards."""
    suffix = create_run_topics(kafka_bootstrap)
    yield suffix
    asyncio.run(delete_run_topics(kafka_bootstrap, suffix))


class FaultyWorker(Worker):
    """The worker process, started through the fault-injecting launcher."""

    def start(self) -> None:
        """Start the process with every stage's fault armed."""
        spec = ",".join(f"{stage}={marker}" for stage, marker in FAULTS.items())
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(LAUNCHER), spec, "worker", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def _citizen(index: int) -> dict[str, Any]:
    return {
        "id": f"faults-citizen-{index}",
        "language": "fi",
        "phone": f"+35840{6100000 + index:07d}",
        "consent": {"sms": True, "email": False},
    }


def _alert(alert_id: str, now: datetime) -> tuple[bytes, bytes]:
    alert = SAMPLES["score-drop-alert"](now).model_copy(update={"alert_id": alert_id})
    return b"phone-service", alert.model_dump_json().encode()


def _rating(survey_id: str, touchpoint_id: str, now: datetime) -> tuple[bytes, bytes]:
    rating = SAMPLES["rating"](now).model_copy(
        update={
            "survey_id": survey_id,
            "rating_id": f"r-{survey_id}",
            "touchpoint_id": touchpoint_id,
        }
    )
    return touchpoint_id.encode(), rating.model_dump_json().encode()


async def test_a_raising_handler_dead_letters_its_record_in_every_stage_and_skips_nothing(  # noqa: C901, PLR0915 - one worker, every stage, checked from every side
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """One broken record per stage: set aside under that stage; the records around it processed."""
    simulator = TwilioSimulator(
        SimulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER)
    )
    sim_url = await simulator.start("127.0.0.1", 0)
    now = datetime.now(UTC)
    ended = now - timedelta(minutes=3)
    # Contact ids hold the markers: the intake fails on its own; the scheduler and the
    # answers join fail on the SurveyScheduled, which carries the contact id.
    ids = [
        "ok-0",
        "fault-intake",
        "ok-1",
        "fault-decide",
        "fault-scheduler",
        "ok-2",
        "fault-responses",
        "ok-3",
    ]
    records = []
    for index, contact_id in enumerate(ids):
        value = contact(index, _citizen(index), "phone-service", ended).replace(
            f'"contact-{index}"'.encode(), f'"{contact_id}"'.encode()
        )
        records.append((f"faults-citizen-{index}".encode(), value))
    alerts = [_alert("a-fault-notifier", now), _alert("a-notifier-ok", now)]
    ratings = [
        _rating("s-metrics-ok-0", "tp-metrics-ok", now),
        _rating("s-fault-metrics", "tp-metrics-ok", now),
        _rating("s-metrics-ok-1", "tp-metrics-ok", now),
    ]
    async with running_smtp_sink() as sink:
        config = tmp_path / "palaute.toml"
        config.write_text(
            config_text(
                kafka_bootstrap,
                run_suffix,
                tmp_path / "data",
                sim_url=sim_url,
                smtp_port=sink.port,
                extra='[defaults]\nsend_delay = "0s"\n\n[metrics]\nemit_interval = "1s"\n'
                '\n[alerts]\nops_email = "ops@example.fi"\n',
            ),
            encoding="utf-8",
        )
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
        metrics = Reader(kafka_bootstrap, METRICS + run_suffix)
        readers = [surveys, deadletters, metrics]
        for reader in readers:
            await reader.start()
        worker = FaultyWorker(config, tmp_path / "worker.log")
        worker.start()
        try:
            await produce(kafka_bootstrap, CONTACTS + run_suffix, records)
            await produce(kafka_bootstrap, RATINGS + run_suffix, ratings)
            await produce(kafka_bootstrap, ALERTS + run_suffix, alerts)

            def letters() -> dict[str, DeadLetter]:
                """Each fault's dead letter, by the fault whose marker its record holds."""
                found = {}
                for record in deadletters.records:
                    for fault, marker in FAULTS.items():
                        if marker.encode() in (record.value or b""):
                            found.setdefault(fault, DeadLetter.from_headers(record.headers))
                return found

            def mailed_ok_alert() -> bool:
                return any(b"a-notifier-ok" in mail.data for mail in sink.received)

            def sent() -> set[str]:
                return sent_contact_ids(surveys.events())

            def done() -> bool:
                return (
                    set(letters()) >= set(FAULTS)
                    and {"ok-0", "ok-1", "ok-2", "ok-3", "fault-responses"} <= sent()
                    and any(b"tp-metrics-ok" in (r.value or b"") for r in metrics.records)
                    and mailed_ok_alert()
                )

            await wait_until(done, readers, worker, 150, "every stage's dead letter and the rest")
            await settle(readers, 2.0)
        finally:
            worker.stop()
            for reader in readers:
                await reader.stop()
            await simulator.stop()
    found = letters()
    assert set(found) == set(FAULTS), found
    for fault, letter in found.items():
        assert letter.stage == LABELS[fault], (fault, letter)
        assert letter.reason_code == "handler_failed", (fault, letter)
        assert letter.error_class == "InjectedFaultError", (fault, letter)
    # Each broken record is dead-lettered once, with its original value; the broken
    # survey's later events hold the marker too, so the answers join sets them aside too.
    sources = [
        (letter.stage, letter.source_topic, letter.source_partition, letter.source_offset)
        for letter in (DeadLetter.from_headers(r.headers) for r in deadletters.records)
    ]
    assert len(sources) == len(set(sources)), sources
    for record in deadletters.records:
        stage = DeadLetter.from_headers(record.headers).stage
        markers = [m for f, m in FAULTS.items() if LABELS[f] == stage]
        assert any(m.encode() in (record.value or b"") for m in markers), stage
    counts = decisions(surveys.events())
    undecided = {"fault-intake", "fault-decide"}
    assert not undecided & set(counts)
    assert {cid: counts[cid] for cid in ids if cid not in undecided} == {
        cid: 1 for cid in ids if cid not in undecided
    }
    assert "fault-scheduler" not in sent()
