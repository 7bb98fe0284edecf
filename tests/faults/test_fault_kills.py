"""Kill -9 a worker at random points during intake, dispatch and metrics, and restart it.

Each test makes ``PALAUTE_FAULT_TRIALS`` kills (3 by default, 20 in the full
run): for every trial it writes a fresh batch of work, waits until a random
share of that batch is done (the kill point, drawn from the printed seed),
kills the worker with SIGKILL and starts it again at once, so the next batch
meets a worker that is recovering. When everything is done the oracles of
``harness`` must hold for the whole run.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from schemas.topics import CONTACTS, DEADLETTER, METRICS, RATINGS, RESPONSES, SURVEYS
from tests.faults.harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDER,
    TRIALS,
    Answers,
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
    sms_citizen,
    still_missing,
    stop_all,
    texts,
    wait_for,
    worker_config,
)
from tests.integration.smtp_server import running_smtp_sink

if TYPE_CHECKING:
    import random
    from pathlib import Path

    from tests.integration.smtp_server import SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INTAKE_BATCH = 150
DISPATCH_BATCH = 40
RATINGS_BATCH = 400
ANSWERS_BATCH = 150
METRICS_EXTRA = """
[metrics]
windows = ["24h"]
emit_interval = "1s"
"""


def simulator() -> TwilioSimulator:
    """Make the Twilio simulator with the test account."""
    return TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER, callback_delay=0.01
        )
    )


def _pairs(number: int) -> dict[str, object]:
    # Two contacts per citizen: the second meets the first's history (caps, duplicates).
    return sms_citizen(number // 2)


@pytest.mark.timeout(1800)
async def test_intake_killed_at_random_points_decides_every_contact_exactly_once(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, rng: random.Random
) -> None:
    """A crash between a decision and its history must neither lose nor change a decision."""
    config = worker_config(
        tmp_path,
        "a",
        kafka_bootstrap,
        run_suffix,
        extra="""
[touchpoints.later]
send_delay = "1h"
channel_preference = ["sms"]
""",
    )
    worker = new_worker(config)
    surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
    deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
    log = SurveyLog(surveys)
    contacts = Contacts()
    await surveys.start()
    await deadletters.start()
    worker.start()
    try:
        for trial in range(TRIALS):
            first = trial * INTAKE_BATCH
            batch = contacts.batch(first, INTAKE_BATCH, "later", _pairs, bad=2)
            await produce(kafka_bootstrap, CONTACTS + run_suffix, batch)
            ids = {f"contact-{n}" for n in range(first, first + INTAKE_BATCH)}
            point = rng.randint(1, INTAKE_BATCH - 1)

            def reached(ids: set[str] = ids, point: int = point) -> bool:
                return len(decided(log.events()) & ids) >= point

            await wait_for(reached, [surveys], [worker], f"trial {trial}: {point} decisions")
            worker.kill()
            done = len(decided(log.events()) & ids)
            print(f"intake trial {trial}: killed at {done}/{INTAKE_BATCH} decisions")  # noqa: T201
            worker.start()

        def finished() -> bool:
            return decided(log.events()) >= contacts.valid and {
                r.value for r in deadletters.records
            } >= set(contacts.bad)

        def missing() -> str:
            undecided = sorted(contacts.valid - decided(log.events()))
            letters = {r.value for r in deadletters.records}
            return f"undecided {len(undecided)} {undecided[:10]}, dead letters {len(letters)}"

        await wait_for(
            finished,
            [surveys, deadletters],
            [worker],
            "every contact decided",
            explain=missing,
            idle=90.0,
        )
        # The last restart may have found nothing left to do; a worker stopped
        # while it still starts has no signal handlers yet and cannot stop cleanly.
        await wait_for(worker.ready, [surveys], [worker], "the restarted worker to be ready")
        await settle([surveys, deadletters], 3.0)
    finally:
        returncodes = await stop_all([worker])
        await surveys.stop()
        await deadletters.stop()
    assert returncodes == [0], worker.tail()

    check_one_decision_per_contact(log.events(), contacts.valid)
    check_dead_letters(deadletters.records, dict(contacts.bad), "intake", CONTACTS + run_suffix)


@pytest.mark.timeout(1800)
async def test_dispatch_killed_at_random_points_never_sends_a_survey_twice(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, rng: random.Random
) -> None:
    """Kills mid-send: every survey ends once, no citizen gets two texts, one unknown per kill."""
    twilio = simulator()
    sim_url = await twilio.start("127.0.0.1", 0)
    contacts = Contacts()
    async with running_smtp_sink() as sink:
        config = worker_config(
            tmp_path,
            "a",
            kafka_bootstrap,
            run_suffix,
            sim_url=sim_url,
            smtp_port=sink.port,
            extra="""
[dispatch]
sms_per_second = 25
burst = 5
tick = "1s"
outcome_grace = "3s"

[touchpoints.crash]
send_delay = "2s"
channel_preference = ["sms"]
""",
        )
        worker = new_worker(config)
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
        log = SurveyLog(surveys)
        await surveys.start()
        await deadletters.start()
        worker.start()
        try:
            for trial in range(TRIALS):
                first = trial * DISPATCH_BATCH
                batch = contacts.batch(first, DISPATCH_BATCH, "crash", bad=1)
                base = sum(texts(twilio).values())
                await produce(kafka_bootstrap, CONTACTS + run_suffix, batch)
                point = rng.randint(1, DISPATCH_BATCH - 5)

                def reached(base: int = base, point: int = point) -> bool:
                    return sum(texts(twilio).values()) >= base + point

                await wait_for(reached, [surveys], [worker], f"trial {trial}: {point} sends")
                worker.kill()
                sent = sum(texts(twilio).values()) - base
                print(f"dispatch trial {trial}: killed after {sent} new texts")  # noqa: T201
                worker.start()

            def finished() -> bool:
                events = log.events()
                return decided(events) >= contacts.valid and all_ended(events)

            await wait_for(
                finished,
                [surveys, deadletters],
                [worker],
                "every survey to end",
                explain=lambda: still_missing(log.events(), contacts.valid),
                idle=90.0,
            )
            await settle([surveys, deadletters], 4.0)
        finally:
            returncodes = await stop_all([worker])
            await surveys.stop()
            await deadletters.stop()
            await twilio.settle()
            await twilio.stop()
        assert returncodes == [0], worker.tail()

    _check_dispatch(twilio, sink, log.events(), contacts)
    check_dead_letters(deadletters.records, dict(contacts.bad), "intake", CONTACTS + run_suffix)


def _check_dispatch(
    twilio: TwilioSimulator, sink: SmtpSink, events: list[Any], contacts: Contacts
) -> None:
    """One decision per contact, one ending per survey, one text per citizen."""
    check_one_decision_per_contact(events, contacts.valid)
    check_no_message_twice(twilio, sink)
    outcomes = check_every_survey_ends_once(events)
    assert outcomes.failed == outcomes.expired == 0, outcomes
    assert outcomes.sent + outcomes.unknown == len(contacts.valid), outcomes
    # One send at a time per worker: only the one in flight at a kill can be unknown.
    assert outcomes.unknown <= TRIALS, outcomes
    delivered = sum(texts(twilio).values())
    assert outcomes.sent <= delivered <= outcomes.sent + outcomes.unknown, (outcomes, delivered)


@pytest.mark.timeout(1800)
async def test_responses_and_metrics_killed_at_random_points_keep_every_acknowledged_rating(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, rng: random.Random
) -> None:
    """A rating acknowledged to the citizen, or by the broker, is counted once whatever dies when.

    Each trial writes surveys and the citizens' answers to them (joined by
    the responses stage into ratings) and ratings straight onto the ratings
    topic (changed answers, replays and bad records among them); the kill
    lands in the join or in the counting.
    """
    config = worker_config(tmp_path, "a", kafka_bootstrap, run_suffix, extra=METRICS_EXTRA)
    worker = new_worker(config)
    metrics = Reader(kafka_bootstrap, METRICS + run_suffix)
    joined = Reader(kafka_bootstrap, RATINGS + run_suffix)
    deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
    readers = [metrics, joined, deadletters]
    answers = Answers()
    ratings = Ratings()
    for reader in readers:
        await reader.start()
    worker.start()
    try:
        for trial in range(TRIALS):
            surveys, responses = answers.batch(rng, trial * ANSWERS_BATCH, ANSWERS_BATCH)
            direct = ratings.batch(rng, trial * RATINGS_BATCH, RATINGS_BATCH, bad=2)
            await produce(kafka_bootstrap, SURVEYS + run_suffix, surveys)
            await produce(kafka_bootstrap, RESPONSES + run_suffix, responses)
            await produce(kafka_bootstrap, RATINGS + run_suffix, direct)
            # The batch waits for the restarted worker. Most kills come while it works
            # on it, one in three while it is still starting (recovering its tables).
            at_work = rng.random() >= 1 / 3
            if at_work:
                await wait_for(worker.ready, [], [worker], f"trial {trial}: the worker to start")
            pause = rng.uniform(0.0, 2.5)
            await asyncio.sleep(pause)
            assert worker.alive(), worker.tail()
            worker.kill()
            where = "work" if at_work else "start"
            print(f"ratings trial {trial}: killed {pause:.2f} s into the {where}")  # noqa: T201
            worker.start()
        expected = answers.expected()
        for key, counts in expected_metrics(ratings.records, ratings.bad).items():
            expected[key] += counts

        def finished() -> bool:
            return (
                metrics_match(metrics.records, expected, "24h")
                and {r.value for r in deadletters.records} >= ratings.bad
            )

        def missing() -> str:
            return f"answers never joined into a rating: {_unjoined(answers, joined)[:10]}"

        try:
            await wait_for(finished, readers, [worker], "the figures", explain=missing, idle=90.0)
        except AssertionError:
            check_metrics(metrics.records, expected, "24h")  # says which keys are short
            raise
        await settle(readers, 3.0)
    finally:
        returncodes = await stop_all([worker])
        for reader in readers:
            await reader.stop()
    assert returncodes == [0], worker.tail()

    assert not _unjoined(answers, joined), "an acknowledged answer never became a rating"
    check_metrics(metrics.records, expected, "24h")
    # Set aside by the metrics stage, which now reads the ratings topic itself.
    check_dead_letters(
        deadletters.records, dict.fromkeys(ratings.bad), "metrics", RATINGS + run_suffix
    )


def _unjoined(answers: Answers, joined: Reader) -> list[str]:
    """Surveys whose last score is not on the ratings topic: lost by the join, not the counting."""
    published = set()
    for record in joined.records:
        rating = json.loads(record.value) if record.value.startswith(b"{") else {}
        published.add((rating.get("survey_id"), rating.get("score")))
    return sorted(
        survey for survey, (_, score) in answers.final.items() if (survey, score) not in published
    )
