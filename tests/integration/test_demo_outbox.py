"""The demo's outbox: a newcomer opens a survey email from it and answers it in Chromium.

The outbox (``palaute/demo/outbox.py``) lists every SMS and email the demo's
citizens received. Here it holds an email exactly as the dispatcher writes
and the SMTP mailer builds it, for a survey the running web service knows;
Chromium opens the outbox, then the email, taps a score link and confirms
the score on the answer page, which writes the rating. The outbox itself
passes axe-core and does not scroll sideways on a phone.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from connectors.email import OutgoingEmail, SmtpMailer
from connectors.web.pages import link_signer
from engine.outbound import survey_email
from palaute.demo.outbox import Outbox
from schemas.config import SmtpConfig
from schemas.topics import RESPONSES
from tests.integration.citizen_harness import citizen_key_for, read_topic, running_citizen_web
from tests.integration.test_browser import TOOLING, _require_tooling

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.mark.slow
async def test_a_newcomer_opens_a_survey_email_from_the_outbox_and_answers_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Seeing what citizens get, and answering as one, is what the demo is for."""
    node = _require_tooling()
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "web-data")) as env:
        scheduled = await env.publish_survey(
            "s-outbox", citizen=citizen_key_for("outbox"), email="asiakas@example.fi"
        )
        touchpoint, _ = env.settings.touchpoint(scheduled.touchpoint_id)
        written = survey_email(
            scheduled,
            touchpoint,
            link_signer(env.settings),
            env.base_url,
            "Palaute",
            datetime.now(UTC),
        )
        mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", sender="palaute@example.fi"))  # type: ignore[arg-type]
        message = mailer.build(
            OutgoingEmail(
                to="asiakas@example.fi",
                content=written.content,
                unsubscribe_url=written.unsubscribe_url,
            )
        )
        sms = {
            "direction": "outbound-api",
            "to": "+358401234567",
            "body": (
                f"Testikaupunki\nPuhelinpalvelu: Miten onnistuimme?\n"
                f"Vastaa 1-5 tai {env.sms_link('x')}"
            ),
            "num_segments": "1",
        }
        outbox = Outbox(lambda: [sms])
        outbox.keep(message)
        url = await outbox.start()
        try:
            process = await asyncio.create_subprocess_exec(
                node,
                str(TOOLING / "outbox-browser.mjs"),
                url,
                "4",
                str(tmp_path / "outbox-profile"),
                cwd=TOOLING,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), 180)
        finally:
            await outbox.stop()
        assert process.returncode == 0, err.decode(errors="replace")[-3000:]
        answers = await read_topic(env.bootstrap, env.topic(RESPONSES), expect=1)
    seen = json.loads(out)
    assert seen["title"] == "Palaute demo: outbox"
    assert seen["subject"] == written.content.subject
    assert seen["statuses"][-1] == "Kiitos! Vastauksesi 4 on tallennettu."
    serious = [v for v in seen["violations"] if v["impact"] in {"serious", "critical"}]
    assert serious == [], serious
    assert seen["sideways"] is False
    assert [(a["type"], a["survey_id"], a["score"]) for a in answers][-1:] == [
        ("RatingReceived", "s-outbox", 4)
    ]
