"""Quiet hours through the real dispatch path: a retry after Twilio's 20429 waits for morning.

``palaute worker`` runs as a real process against the session's broker and
sends with the real twilio client to the Twilio simulator. The worker's
quiet hours are set to begin shortly after the test starts (in Helsinki wall
clock, to the second), so the test does not depend on the hour it runs at:
the simulator answers 20429 until quiet hours begin, the survey's retry then
falls inside them, and the survey must go out only when they end.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from dispatch_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDER,
    Reader,
    Worker,
    config_text,
    contact,
    produce,
    settle,
    wait_until,
)
from smtp_server import running_smtp_sink

from connectors.twilio_sim import FaultMode, SimulatorConfig, TwilioSimulator
from schemas.surveys import SurveyDispatching, SurveyScheduled, SurveySent
from schemas.topics import CONTACTS, SURVEYS

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

HELSINKI = ZoneInfo("Europe/Helsinki")
#: Time for the worker to start and make its first attempt before quiet hours begin.
LEAD = timedelta(seconds=60)
#: How long the quiet hours last; every retry in them must wait.
QUIET = timedelta(seconds=25)
#: After quiet hours begin, Twilio keeps refusing this long (a request decided before may be late).
SETTLING = timedelta(seconds=5)
PHONE = "+358401112233"


def _wall_clock(moment: datetime) -> str:
    """Write an instant as a Helsinki time of day, to the second, for ``[policy]``."""
    return moment.astimezone(HELSINKI).strftime("%H:%M:%S")


def _quiet_config(base: str, starts: datetime, ends: datetime) -> str:
    """Replace the harness's "no quiet hours" with quiet hours from ``starts`` to ``ends``."""
    quiet = base.replace(
        'quiet_hours_start = "00:00"', f'quiet_hours_start = "{_wall_clock(starts)}"'
    ).replace('quiet_hours_end = "00:00"', f'quiet_hours_end = "{_wall_clock(ends)}"')
    assert quiet != base
    return quiet


async def _until(moment: datetime, readers: list[Reader]) -> None:
    """Keep reading until the wall clock reaches ``moment``."""
    while datetime.now(UTC) < moment:
        for reader in readers:
            await reader.poll()
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_a_retry_after_a_20429_does_not_go_out_in_quiet_hours(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """Retries after 429s went out at 21:01-21:41: quiet hours hold at the moment of sending."""
    began = time.monotonic()
    quiet_from = (datetime.now(UTC) + LEAD).replace(microsecond=0)
    quiet_until = quiet_from + QUIET
    simulator = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SENDER, callback_delay=0.01
        )
    )
    sim_url = await simulator.start("127.0.0.1", 0)
    # Twilio is over its rate until quiet hours begin: every attempt before then gets 20429.
    simulator.inject_fault(FaultMode.HTTP_429)
    async with running_smtp_sink() as sink:
        config = tmp_path / "palaute.toml"
        base = config_text(
            kafka_bootstrap,
            run_suffix,
            tmp_path / "data",
            sim_url=sim_url,
            smtp_port=sink.port,
            extra="""
[dispatch]
tick = "1s"
retry_base = "1s"
retry_cap = "2s"

[touchpoints.night]
send_delay = "0s"
channel_preference = ["sms"]
expiry = "1h"
""",
        )
        config.write_text(_quiet_config(base, quiet_from, quiet_until), encoding="utf-8")
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        await surveys.start()
        worker = Worker(config, tmp_path / "worker.log")
        worker.start()
        try:
            citizen = {"id": "cust-night", "phone": PHONE, "consent": {"sms": True}}
            record = contact(1, citizen, "night", datetime.now(UTC))
            await produce(kafka_bootstrap, CONTACTS + run_suffix, [(b"citizen-night", record)])

            def refused_once() -> bool:
                return any(exchange.status == 429 for exchange in simulator.exchanges)

            before_quiet = (quiet_from - datetime.now(UTC)).total_seconds()
            await wait_until(
                refused_once,
                [surveys],
                worker,
                before_quiet,
                "a first attempt (20429) before quiet hours begin",
            )
            assert datetime.now(UTC) < quiet_from, (
                f"the worker needed {time.monotonic() - began:.0f} s for its first attempt; "
                "it must come before quiet hours begin for this test to prove anything"
            )
            # A retry decided just before quiet hours began may still be on its way:
            # Twilio refuses a few seconds more, then would take the message, and
            # only quiet hours keep it from going.
            await _until(quiet_from + SETTLING, [surveys])
            simulator.clear_faults()
            requests_at_clear = simulator.api_requests()
            await _until(quiet_until - timedelta(seconds=1), [surveys])
            requests_in_quiet = simulator.api_requests() - requests_at_clear

            def sent() -> bool:
                return any(isinstance(event, SurveySent) for event in surveys.events())

            await wait_until(sent, [surveys], worker, 60, "the survey to be sent after quiet hours")
            await settle([surveys], 2.0)
        finally:
            returncode = worker.stop()
            await surveys.stop()
            await simulator.settle()
            await simulator.stop()
        assert returncode == 0, worker.tail()

    _assert_held_until_quiet_hours_end(
        surveys, simulator, quiet_from, quiet_until, requests_in_quiet
    )


def _assert_held_until_quiet_hours_end(
    surveys: Reader,
    simulator: TwilioSimulator,
    quiet_from: datetime,
    quiet_until: datetime,
    requests_in_quiet: int,
) -> None:
    """Planned before quiet hours, refused once, then nothing until they ended: one text after."""
    events = surveys.events()
    (scheduled,) = [e for e in events if isinstance(e, SurveyScheduled)]
    assert scheduled.send_at < quiet_from  # planned outside quiet hours: only the retry is late
    attempts = [e for e in events if isinstance(e, SurveyDispatching)]
    assert attempts[0].occurred_at < quiet_from
    in_quiet = [e for e in attempts if quiet_from <= e.occurred_at < quiet_until]
    assert in_quiet == [], f"attempts made in quiet hours: {in_quiet}"
    assert requests_in_quiet == 0, requests_in_quiet
    (sent_event,) = [e for e in events if isinstance(e, SurveySent)]
    assert sent_event.occurred_at >= quiet_until
    assert attempts[-1].occurred_at >= quiet_until
    texts = [m for m in simulator.messages if m["to"] == PHONE]
    assert len(texts) == 1
    assert parsedate_to_datetime(texts[0]["date_created"]) >= quiet_until - timedelta(seconds=1)
