"""The providers fail: Twilio answers 429 and 500 and times out, the SMTP relay goes down and back.

One worker sends SMS through the real twilio client to the simulator and
email through aiosmtplib to a real SMTP server on a fixed port, which stops
listening for a few seconds at a random moment in the middle of the mailing.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from connectors.twilio_sim import FaultMode, SimulatorConfig, TwilioSimulator
from schemas.surveys import SurveySent
from schemas.topics import CONTACTS, DEADLETTER, SURVEYS
from tests.faults.harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDER,
    Contacts,
    Reader,
    SmtpRelay,
    SurveyLog,
    all_ended,
    check_dead_letters,
    check_every_survey_ends_once,
    check_no_message_twice,
    check_one_decision_per_contact,
    decided,
    email_citizen,
    mails,
    new_worker,
    produce,
    settle,
    stop_all,
    texts,
    wait_for,
    worker_config,
)

if TYPE_CHECKING:
    import random
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PER_CHANNEL = 40
REFUSED_429 = 4
FAILED_500 = 2
TIMED_OUT = 1


@pytest.mark.timeout(900)
async def test_provider_errors_and_a_relay_outage_send_each_survey_at_most_once(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, rng: random.Random
) -> None:
    """429 and a relay outage are retried; a 500 or a timeout is never repeated."""
    twilio = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER, callback_delay=0.01
        )
    )
    sim_url = await twilio.start("127.0.0.1", 0)
    relay = SmtpRelay()
    await relay.up()
    # Taken in this order, one request each: 429s first, then 500s, then a hang
    # past the client's 10 s timeout (the message is created all the same).
    twilio.inject_fault(FaultMode.HTTP_429, count=REFUSED_429)
    twilio.inject_fault(FaultMode.HTTP_500, count=FAILED_500)
    twilio.inject_fault(FaultMode.TIMEOUT, count=TIMED_OUT, hang=15.0)
    config = worker_config(
        tmp_path,
        "a",
        kafka_bootstrap,
        run_suffix,
        sim_url=sim_url,
        smtp_port=relay.sink.port,
        extra="""
[dispatch]
sms_per_second = 20
email_per_second = 20
burst = 5
tick = "1s"
retry_base = "1s"
retry_cap = "2s"

[touchpoints.text]
send_delay = "1s"
channel_preference = ["sms"]

[touchpoints.mail]
send_delay = "1s"
channel_preference = ["email"]
""",
    )
    worker = new_worker(config)
    surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
    deadletters = Reader(kafka_bootstrap, DEADLETTER + run_suffix)
    log = SurveyLog(surveys)
    contacts = Contacts()
    records = [
        *contacts.batch(0, PER_CHANNEL, "text", bad=1),
        *contacts.batch(1000, PER_CHANNEL, "mail", email_citizen),
    ]
    await surveys.start()
    await deadletters.start()
    worker.start()
    try:
        await produce(kafka_bootstrap, CONTACTS + run_suffix, records)
        point = rng.randint(3, 15)
        await wait_for(
            lambda: sum(mails(relay.sink).values()) >= point, [surveys], [worker], "mail sent"
        )
        await relay.down()
        at_outage = sum(mails(relay.sink).values())
        outage = rng.uniform(3.0, 6.0)
        print(f"relay down after {at_outage} mails, for {outage:.1f} s")  # noqa: T201
        await settle([surveys], outage)
        await relay.up()

        def finished() -> bool:
            events = log.events()
            return decided(events) >= contacts.valid and all_ended(events)

        await wait_for(finished, [surveys, deadletters], [worker], "every survey to end")
        await settle([surveys, deadletters], 3.0)
    finally:
        returncodes = await stop_all([worker])
        await surveys.stop()
        await deadletters.stop()
        await relay.down()
        await twilio.settle()
        await twilio.stop()
    assert returncodes == [0], worker.tail()

    assert at_outage < PER_CHANNEL, "the outage came too late to test anything"
    _check(twilio, relay, log.events(), contacts)
    check_dead_letters(deadletters.records, dict(contacts.bad), "intake", CONTACTS + run_suffix)


def _check(
    twilio: TwilioSimulator, relay: SmtpRelay, events: list[Any], contacts: Contacts
) -> None:
    """Retried what was refused, never repeated what may have gone out, nothing twice."""
    statuses = Counter(exchange.status for exchange in twilio.exchanges)
    assert statuses[429] == REFUSED_429
    assert statuses[500] == FAILED_500
    check_one_decision_per_contact(events, contacts.valid)
    check_no_message_twice(twilio, relay.sink)
    outcomes = check_every_survey_ends_once(events)
    # A 500 or a timeout may have reached the citizen: recorded as unknown, never retried.
    assert outcomes.unknown == FAILED_500 + TIMED_OUT, outcomes
    assert outcomes.sent + outcomes.unknown == 2 * PER_CHANNEL, outcomes
    sent = Counter(e.channel.value for e in events if isinstance(e, SurveySent))
    # The simulator created the timed-out message; it refused the 500s before creating any.
    assert sum(texts(twilio).values()) == sent["sms"] + TIMED_OUT
    assert sum(mails(relay.sink).values()) == sent["email"] == PER_CHANNEL
