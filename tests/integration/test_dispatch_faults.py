"""Dispatch under faults: a worker killed mid-send, and a provider that is down for a while.

Both run ``palaute worker`` as a real process against a real broker, with the
real twilio client talking to the Twilio simulator.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
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
    endings,
    produce,
    settle,
    wait_until,
)
from smtp_server import running_smtp_sink

from connectors.twilio_sim import FaultMode, SimulatorConfig, TwilioSimulator
from schemas.deadletter import DeadLetter
from schemas.surveys import SurveyScheduled
from schemas.topics import CONTACTS, DEADLETTER, SURVEYS, VAULT
from tests.fixtures import SHORT_SESSION_ENVIRONMENT

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

BAD_VAULT_RECORDS = [
    (b"sv-bad-1", b"not json at all"),
    (b"sv-bad-2", b'{"type": "ContactDetails", "survey_id": "sv-bad-2"}'),
]


def _citizen(index: int) -> dict[str, Any]:
    return {
        "id": f"cust-{index}",
        "phone": f"+35840{3000000 + index * 131:07d}",
        "consent": {"sms": True},
        "language": "fi",
    }


def _records(count: int, now: datetime, touchpoints: list[str]) -> list[tuple[bytes, bytes]]:
    """One contact per citizen, so each citizen is due exactly one survey."""
    return [
        (
            f"citizen-{index}".encode(),
            contact(index, _citizen(index), touchpoints[index % len(touchpoints)], now),
        )
        for index in range(count)
    ]


def _simulator() -> TwilioSimulator:
    return TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            sms_number=SENDER,
            callback_delay=0.01,
        )
    )


def _assert_set_aside(deadletters: Reader, source_topic: str) -> None:
    """Each unreadable record is on the dead-letter topic, whole, with the reason."""
    assert sorted(r.value for r in deadletters.records) == sorted(v for _, v in BAD_VAULT_RECORDS)
    for record in deadletters.records:
        letter = DeadLetter.from_headers(list(record.headers))
        assert letter.stage == "scheduler"
        assert letter.source_topic == source_topic
        assert letter.reason_code == "unreadable_survey_record"


def _texts(simulator: TwilioSimulator) -> Counter[str]:
    return Counter(m["to"] for m in simulator.messages if m["direction"] == "outbound-api")


@pytest.mark.slow
async def test_a_worker_killed_while_sending_never_sends_a_survey_twice(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """SIGKILL mid-batch, then restart: nobody gets two texts, every survey is accounted for."""
    count = 500
    simulator = _simulator()
    sim_url = await simulator.start("127.0.0.1", 0)
    async with running_smtp_sink() as sink:
        config = tmp_path / "palaute.toml"
        config.write_text(
            config_text(
                kafka_bootstrap,
                run_suffix,
                tmp_path / "data",
                sim_url=sim_url,
                smtp_port=sink.port,
                extra="""
[dispatch]
sms_per_second = 60
burst = 10
tick = "1s"
outcome_grace = "3s"

[touchpoints.crash]
send_delay = "4s"
channel_preference = ["sms"]
""",
            ),
            encoding="utf-8",
        )
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        await surveys.start()
        # The restarted worker takes over the killed one's partitions when its
        # session ends: a short session, so that is seconds, not a minute.
        worker = Worker(config, tmp_path / "worker.log", env=SHORT_SESSION_ENVIRONMENT)
        worker.start()
        try:
            await produce(
                kafka_bootstrap,
                CONTACTS + run_suffix,
                _records(count, datetime.now(UTC), ["crash"]),
            )

            def all_scheduled() -> bool:
                return sum(isinstance(e, SurveyScheduled) for e in surveys.events()) >= count

            await wait_until(all_scheduled, [surveys], worker, 90, "500 scheduled surveys")

            def sending() -> bool:
                return sum(_texts(simulator).values()) >= 120

            await wait_until(sending, [surveys], worker, 60, "the sends to be under way")
            worker.kill()
            killed_at = sum(_texts(simulator).values())
            assert killed_at < count, "the kill came too late to test anything"

            worker.start()
            scheduled = {e.survey_id for e in surveys.events() if isinstance(e, SurveyScheduled)}

            def all_ended() -> bool:
                return set(endings(surveys.events())) >= scheduled

            await wait_until(all_ended, [surveys], worker, 120, "every survey to end")
            await settle([surveys], 4.0)
            assert worker.alive(), worker.tail()
        finally:
            returncode = worker.stop()
            await surveys.stop()
            await simulator.settle()
            await simulator.stop()
        assert returncode == 0, worker.tail()

    texts = _texts(simulator)
    assert max(texts.values()) == 1, "a citizen got the same survey twice"
    ends = endings(surveys.events())
    assert set(ends) == scheduled
    assert len(scheduled) == count
    assert all(len(events) == 1 for events in ends.values()), "a survey ended twice"
    kinds = Counter(
        (events[0].type, getattr(events[0], "reason", None)) for events in ends.values()
    )
    sent = kinds[("SurveySent", None)]
    unknown = kinds[("SurveyFailed", "outcome-unknown")]
    assert sent + unknown == count, kinds
    # Only what was in flight at the kill can be unknown: one send at a time per worker.
    assert unknown <= 1
    # Every survey recorded as sent reached the simulator, and nothing else did but the unknown.
    assert sent <= sum(texts.values()) <= sent + unknown
    assert killed_at > 0


async def test_a_provider_outage_delays_surveys_until_it_ends_or_they_expire(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """Twilio answers 503 for a while: surveys wait and are sent once, or expire unsent.

    Two unreadable records on the vault topic go to the dead-letter topic whole,
    and the worker carries on.
    """
    simulator = _simulator()
    sim_url = await simulator.start("127.0.0.1", 0)
    outage = 10.0
    async with running_smtp_sink() as sink:
        config = tmp_path / "palaute.toml"
        config.write_text(
            config_text(
                kafka_bootstrap,
                run_suffix,
                tmp_path / "data",
                sim_url=sim_url,
                smtp_port=sink.port,
                extra="""
[dispatch]
sms_per_second = 200
burst = 50
tick = "1s"
retry_base = "1s"
retry_cap = "2s"
last_call = "1s"

[touchpoints.patient]
send_delay = "2s"
channel_preference = ["sms"]
expiry = "1h"

[touchpoints.hasty]
send_delay = "2s"
channel_preference = ["sms"]
expiry = "5s"
""",
            ),
            encoding="utf-8",
        )
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
        await surveys.start()
        await deadletters.start()
        worker = Worker(config, tmp_path / "worker.log")
        worker.start()
        try:
            simulator.inject_fault(FaultMode.HTTP_503, seconds=outage + 30)
            records = _records(100, datetime.now(UTC), ["patient", "hasty"])
            await produce(kafka_bootstrap, VAULT + run_suffix, BAD_VAULT_RECORDS)
            await produce(kafka_bootstrap, CONTACTS + run_suffix, records)

            def all_scheduled() -> bool:
                return sum(isinstance(e, SurveyScheduled) for e in surveys.events()) >= 100

            await wait_until(all_scheduled, [surveys], worker, 90, "100 scheduled surveys")
            # The outage lasts from now on, well past the short surveys' expiry.
            simulator.clear_faults()
            simulator.inject_fault(FaultMode.HTTP_503, seconds=outage)
            recovers_at = datetime.now(UTC) + timedelta(seconds=outage)
            scheduled = {e.survey_id: e for e in surveys.events() if isinstance(e, SurveyScheduled)}

            def all_ended() -> bool:
                return set(endings(surveys.events())) >= set(scheduled)

            await wait_until(all_ended, [surveys, deadletters], worker, 90, "every survey to end")
            await settle([surveys, deadletters], 3.0)
        finally:
            returncode = worker.stop()
            await surveys.stop()
            await deadletters.stop()
            await simulator.settle()
            await simulator.stop()
        assert returncode == 0, worker.tail()

    _assert_set_aside(deadletters, VAULT + run_suffix)
    ends = endings(surveys.events())
    assert any(ex.status == 503 for ex in simulator.exchanges), "the outage never reached us"
    texts = _texts(simulator)
    assert set(texts.values()) == {1}
    for survey_id, survey in scheduled.items():
        (end,) = ends[survey_id]
        if survey.expires_at < recovers_at:
            assert end.type == "SurveyExpired", end
            assert end.was_sent is False
        else:
            assert end.type == "SurveySent", end
            assert end.occurred_at >= recovers_at - timedelta(seconds=1)
    sent = sum(1 for (end,) in ends.values() if end.type == "SurveySent")
    assert sent == sum(texts.values())
    assert 0 < sent < len(scheduled)


@pytest.mark.slow
async def test_two_workers_share_the_sending_and_a_rebalance_repeats_nothing(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """Each worker acts only on partitions it owns (never standbys), also across a rebalance."""
    count = 300
    simulator = _simulator()
    sim_url = await simulator.start("127.0.0.1", 0)
    extra = """
[dispatch]
sms_per_second = 40
burst = 5
tick = "1s"
outcome_grace = "3s"

[touchpoints.shared]
send_delay = "3s"
channel_preference = ["sms"]
"""
    async with running_smtp_sink() as sink:
        workers = []
        for name in ("a", "b"):
            config = tmp_path / f"palaute-{name}.toml"
            config.write_text(
                config_text(
                    kafka_bootstrap,
                    run_suffix,
                    tmp_path / f"data-{name}",
                    sim_url=sim_url,
                    smtp_port=sink.port,
                    extra=extra,
                ),
                encoding="utf-8",
            )
            workers.append(Worker(config, tmp_path / f"worker-{name}.log"))
        first, second = workers
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        await surveys.start()
        for worker in workers:
            worker.start()
        try:

            def both_own_partitions() -> bool:
                # A worker's scheduler rebuilds its index on the first tick of partitions
                # it owns: once both have, the group has both, whichever joined later.
                return all(
                    "due index rebuilt" in worker.log.read_text(errors="replace")
                    for worker in workers
                )

            await wait_until(
                both_own_partitions, [surveys], first, 120, "both workers to own partitions"
            )
            await produce(
                kafka_bootstrap,
                CONTACTS + run_suffix,
                _records(count, datetime.now(UTC), ["shared"]),
            )

            def under_way() -> bool:
                return sum(_texts(simulator).values()) >= count // 3

            await wait_until(under_way, [surveys], first, 90, "the sends to be under way")
            # A clean stop hands the first worker's partitions to the second mid-batch.
            # In a thread: the simulator runs in this loop and must keep answering.
            assert await asyncio.to_thread(first.stop) == 0, first.tail()
            scheduled = {e.survey_id for e in surveys.events() if isinstance(e, SurveyScheduled)}

            def all_ended() -> bool:
                return len(scheduled) == count and set(endings(surveys.events())) >= scheduled

            def refresh() -> bool:
                scheduled.update(
                    e.survey_id for e in surveys.events() if isinstance(e, SurveyScheduled)
                )
                return all_ended()

            await wait_until(refresh, [surveys], second, 120, "every survey to end")
            await settle([surveys], 3.0)
        finally:
            returncodes = [worker.stop() for worker in workers]
            await surveys.stop()
            await simulator.settle()
            await simulator.stop()
        assert returncodes[1] == 0, second.tail()

    texts = _texts(simulator)
    assert max(texts.values()) == 1, "a citizen got the same survey twice"
    ends = endings(surveys.events())
    assert all(len(events) == 1 for events in ends.values()), "a survey ended twice"
    kinds = Counter(events[0].type for events in ends.values())
    assert kinds["SurveySent"] + kinds["SurveyFailed"] == count
    assert kinds["SurveyFailed"] <= 1
    assert kinds["SurveySent"] <= sum(texts.values()) <= count
    senders = [worker.log.read_text(errors="replace").count(" accepted, ") for worker in workers]
    assert all(sent > 0 for sent in senders), f"one worker did all the sending: {senders}"
