"""Three workers in one consumer group; one is killed, then a fourth joins: two rebalances.

Contacts (decided and sent by SMS) and ratings (counted) flow through all of
them while the group changes. The kill comes at a random moment in the
sending, and the newcomer joins while the second half of the traffic arrives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
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
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTACTS_PER_HALF = 50
RATINGS_PER_HALF = 300
EXTRA = """
[dispatch]
sms_per_second = 20
burst = 3
tick = "1s"
outcome_grace = "3s"

[touchpoints.shared]
send_delay = "2s"
channel_preference = ["sms"]

[metrics]
windows = ["24h"]
emit_interval = "1s"
"""


@pytest.mark.timeout(900)
async def test_a_worker_killed_and_one_added_in_a_group_of_three_lose_and_repeat_nothing(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, rng: random.Random
) -> None:
    """Partitions move twice under load: decisions, sends and counts stay exact."""
    twilio = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER, callback_delay=0.01
        )
    )
    sim_url = await twilio.start("127.0.0.1", 0)
    workers = [
        new_worker(
            worker_config(tmp_path, name, kafka_bootstrap, run_suffix, sim_url=sim_url, extra=EXTRA)
        )
        for name in ("a", "b", "c", "d")
    ]
    group, newcomer = workers[:3], workers[3]
    surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
    metrics = Reader(kafka_bootstrap, METRICS + run_suffix)
    deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
    readers = [surveys, metrics, deadletters]
    log = SurveyLog(surveys)
    contacts = Contacts()
    ratings = Ratings()
    for reader in readers:
        await reader.start()
    for worker in group:
        worker.start()
    victim = rng.choice(group)
    alive = [worker for worker in workers if worker is not victim]
    try:
        await produce(
            kafka_bootstrap,
            CONTACTS + run_suffix,
            contacts.batch(0, CONTACTS_PER_HALF, "shared", bad=2),
        )
        await produce(
            kafka_bootstrap, RATINGS + run_suffix, ratings.batch(rng, 0, RATINGS_PER_HALF, bad=1)
        )
        point = rng.randint(5, CONTACTS_PER_HALF // 2)
        await wait_for(
            lambda: sum(texts(twilio).values()) >= point, readers, group, f"{point} sends"
        )
        victim.kill()
        print(  # noqa: T201
            f"killed worker {victim.config.stem} after {sum(texts(twilio).values())} texts"
        )
        await produce(
            kafka_bootstrap,
            CONTACTS + run_suffix,
            contacts.batch(1000, CONTACTS_PER_HALF, "shared", bad=1),
        )
        await produce(
            kafka_bootstrap,
            RATINGS + run_suffix,
            ratings.batch(rng, 10_000, RATINGS_PER_HALF, bad=1),
        )
        newcomer.start()
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
            alive,
            "every survey to end and every rating counted",
            explain=lambda: still_missing(log.events(), contacts.valid, metrics.records, expected),
            idle=120.0,
            group=(kafka_bootstrap, "palaute" + run_suffix),
        )
        await settle(readers, 4.0)
    finally:
        returncodes = await stop_all(workers)
        for reader in readers:
            await reader.stop()
        await twilio.settle()
        await twilio.stop()
    assert [code for worker, code in zip(workers, returncodes, strict=True) if worker in alive] == [
        0,
        0,
        0,
    ], "\n".join(worker.tail()[-2000:] for worker in alive)

    _check(twilio, log.events(), contacts)
    check_metrics(metrics.records, expected, "24h")
    intake_letters = [r for r in deadletters.records if r.value in contacts.bad]
    check_dead_letters(intake_letters, dict(contacts.bad), "intake", CONTACTS + run_suffix)
    rating_letters = [r for r in deadletters.records if r.value not in contacts.bad]
    check_dead_letters(rating_letters, dict.fromkeys(ratings.bad), "metrics", RATINGS + run_suffix)


def _check(twilio: TwilioSimulator, events: list[Any], contacts: Contacts) -> None:
    """One decision per contact, one ending per survey, one text per citizen."""
    check_one_decision_per_contact(events, contacts.valid)
    check_no_message_twice(twilio, None)
    outcomes = check_every_survey_ends_once(events)
    assert outcomes.failed == outcomes.expired == 0, outcomes
    assert outcomes.sent + outcomes.unknown == len(contacts.valid), outcomes
    assert outcomes.unknown <= 1, outcomes  # only the victim's send in flight
    delivered = sum(texts(twilio).values())
    assert outcomes.sent <= delivered <= outcomes.sent + outcomes.unknown
