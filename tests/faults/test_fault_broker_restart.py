"""The broker restarts under load: a private broker goes down mid-stream and comes back.

This test starts a broker of its own (``ops.kafka.LocalKafka`` on free ports
with a state directory under the test's tmp path), so stopping it disturbs no
other test. A worker decides and sends contacts and counts ratings; at a
random moment in the sending the broker is stopped, kept down for a few
seconds, and started again on the same data; then more traffic arrives. The
worker must ride it out without losing or repeating anything.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import pytest

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from ops.kafka import HOST, LocalKafka, LocalKafkaError, load_settings
from schemas.topics import CONTACTS, DEADLETTER, METRICS, RATINGS, SURVEYS
from tests.faults.harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDER,
    Contacts,
    Ratings,
    Reader,
    SurveyLog,
    all_ended,
    check_dead_letters,
    check_every_survey_ends_once,
    check_metrics,
    check_no_message_twice,
    check_one_decision_per_contact,
    create_run_topics,
    decided,
    expected_metrics,
    metrics_match,
    new_worker,
    produce,
    settle,
    still_missing,
    stop_all,
    texts,
    wait_for,
    worker_config,
)

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTACTS_PER_HALF = 40
RATINGS_PER_HALF = 300
EXTRA = """
[dispatch]
sms_per_second = 15
burst = 3
tick = "1s"
outcome_grace = "3s"

[touchpoints.busy]
send_delay = "2s"
channel_preference = ["sms"]

[metrics]
windows = ["24h"]
emit_interval = "1s"
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """Start a broker for this test alone; stop it and delete its data afterwards."""
    port, controller_port = _free_ports(2)
    kafka = LocalKafka(
        load_settings(port=port, controller_port=controller_port, state_dir=tmp_path / "kafka")
    )
    try:
        kafka.up()
    except LocalKafkaError as error:
        pytest.fail(f"could not start the private Kafka broker: {error}", pytrace=False)
    try:
        yield kafka
    finally:
        kafka.down(wipe=True)


@pytest.mark.timeout(900)
async def test_a_broker_restart_under_load_loses_and_repeats_nothing(
    private_broker: LocalKafka, tmp_path: Path, rng: random.Random
) -> None:
    """Kafka itself goes away for a while: every stage waits for it and carries on."""
    bootstrap = private_broker.settings.bootstrap_servers
    suffix = await asyncio.to_thread(create_run_topics, bootstrap)
    twilio = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER, callback_delay=0.01
        )
    )
    sim_url = await twilio.start("127.0.0.1", 0)
    worker = new_worker(
        worker_config(tmp_path, "a", bootstrap, suffix, sim_url=sim_url, extra=EXTRA)
    )
    surveys = Reader(bootstrap, SURVEYS + suffix)
    metrics = Reader(bootstrap, METRICS + suffix)
    deadletters = Reader(bootstrap, DEADLETTER + suffix)
    readers = [surveys, metrics, deadletters]
    log = SurveyLog(surveys)
    contacts = Contacts()
    ratings = Ratings()
    for reader in readers:
        await reader.start()
    worker.start()
    try:
        await produce(
            bootstrap, CONTACTS + suffix, contacts.batch(0, CONTACTS_PER_HALF, "busy", bad=1)
        )
        await produce(bootstrap, RATINGS + suffix, ratings.batch(rng, 0, RATINGS_PER_HALF, bad=1))
        point = rng.randint(3, CONTACTS_PER_HALF // 2)
        await wait_for(
            lambda: sum(texts(twilio).values()) >= point, readers, [worker], f"{point} sends"
        )
        await asyncio.to_thread(private_broker.down)
        downtime = rng.uniform(2.0, 6.0)
        at_stop = sum(texts(twilio).values())
        print(f"broker stopped after {at_stop} texts, down for {downtime:.1f} s")  # noqa: T201
        await asyncio.sleep(downtime)
        await asyncio.to_thread(private_broker.up)
        await produce(
            bootstrap, CONTACTS + suffix, contacts.batch(1000, CONTACTS_PER_HALF, "busy", bad=1)
        )
        await produce(
            bootstrap, RATINGS + suffix, ratings.batch(rng, 10_000, RATINGS_PER_HALF, bad=1)
        )
        expected = expected_metrics(ratings.records, ratings.bad)

        def finished() -> bool:
            events = log.events()
            return (
                decided(events) >= contacts.valid
                and all_ended(events)
                and metrics_match(metrics.records, expected, "24h")
                and {r.value for r in deadletters.records} >= set(contacts.bad) | ratings.bad
            )

        await wait_for(
            finished,
            readers,
            [worker],
            "every survey to end and every rating counted",
            explain=lambda: still_missing(log.events(), contacts.valid, metrics.records, expected),
            idle=120.0,
        )
        await settle(readers, 4.0)
    finally:
        returncodes = await stop_all([worker])
        for reader in readers:
            await reader.stop()
        await twilio.settle()
        await twilio.stop()
    assert returncodes == [0], worker.tail()

    _check(twilio, log.events(), contacts)
    check_metrics(metrics.records, expected, "24h")
    intake_letters = [r for r in deadletters.records if r.value in contacts.bad]
    check_dead_letters(intake_letters, dict(contacts.bad), "intake", CONTACTS + suffix)
    rating_letters = [r for r in deadletters.records if r.value not in contacts.bad]
    check_dead_letters(rating_letters, dict.fromkeys(ratings.bad), "metrics", RATINGS + suffix)


def _check(twilio: TwilioSimulator, events: list[Any], contacts: Contacts) -> None:
    """One decision per contact, one ending per survey, one text per citizen."""
    check_one_decision_per_contact(events, contacts.valid)
    check_no_message_twice(twilio, None)
    outcomes = check_every_survey_ends_once(events)
    assert outcomes.failed == outcomes.expired == 0, outcomes
    assert outcomes.sent + outcomes.unknown == len(contacts.valid), outcomes
    assert outcomes.unknown <= 1, outcomes
    delivered = sum(texts(twilio).values())
    assert outcomes.sent <= delivered <= outcomes.sent + outcomes.unknown
