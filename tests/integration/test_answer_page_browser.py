"""The answer page in headless Chromium at a phone's width: who asks, the touchpoint's own question.

A THL-style touchpoint asks its own 0-10 recommendation question; the page a
citizen opens from the SMS must ask the same one, on the same scale, name the
organisation and the service, link the privacy notice, and show the answer
already given by SMS reply, with the option to change it. Every page passes
axe-core (WCAG 2.1 A/AA) and does not scroll sideways at 390 px.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from connectors.twilio_sim import TwilioSimulator
from connectors.twilio_sim.server import SimulatorConfig
from engine.tokens import TokenPurpose
from schemas.base import Language, Scale, SurveyChannel
from tests.integration.citizen_harness import (
    NPS_QUESTION,
    NPS_TOUCHPOINT,
    ORGANISATION,
    PRIVACY_URL,
    WAIT_SECONDS,
    citizen_key_for,
    running_citizen_web,
)
from tests.integration.test_browser import TOOLING, _require_tooling

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.citizen_harness import CitizenEnv

pytestmark = pytest.mark.integration

PHONE = "+358401234568"


async def _open(node: str, url: str, profile: Path) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(TOOLING / "answer-page-browser.mjs"),
        url,
        str(profile),
        cwd=TOOLING,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def _answered(env: CitizenEnv, survey_id: str) -> int | None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        survey = env.index.get(survey_id)
        if survey is not None and survey.answered is not None:
            return survey.answered
        await asyncio.sleep(0.1)
    return None


def _accessible(page: dict[str, Any]) -> None:
    serious = [v for v in page["violations"] if v["impact"] in {"serious", "critical"}]
    assert serious == [], serious
    assert page["sideways"] is False


@pytest.mark.slow
async def test_an_sms_answered_nps_survey_opens_its_own_question_with_the_answer_shown(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The page asks what the SMS asked, says who asks, and shows the answer given by reply."""
    node = _require_tooling()
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "web-data")) as env:
        simulator = TwilioSimulator(SimulatorConfig(inbound_url=env.base_url + "/twilio/inbound"))
        await simulator.start()
        try:
            await env.publish_survey(
                "s-nps",
                citizen=citizen_key_for("nps-page"),
                channel=SurveyChannel.SMS,
                phone=PHONE,
                scale=Scale.NPS_11,
                touchpoint_id=NPS_TOUCHPOINT,
            )
            delivery = await simulator.send_inbound(PHONE, "8")
            assert [attempt.status for attempt in delivery.attempts] == [200]
        finally:
            await simulator.stop()
        assert await _answered(env, "s-nps") == 8
        page = await _open(node, env.sms_link("s-nps"), tmp_path / "profile-nps")
        await env.publish_survey("s-sv", citizen=citizen_key_for("sv-page"), language=Language.SV)
        fresh = await _open(node, env.link("s-sv", TokenPurpose.PAGE), tmp_path / "profile-sv")

    assert (page["status"], page["lang"]) == (200, "fi")
    assert page["question"] == NPS_QUESTION["fi"]
    assert page["scores"] == [str(score) for score in range(11)]
    assert page["hint"].startswith("0 = en lainkaan todennäköisesti, 10 = erittäin todennäköisesti")
    assert page["pressed"] == ["8"]
    assert page["statusLine"] == "Vastauksesi: 8"
    assert page["organisation"] == ORGANISATION["fi"]
    assert page["service"] == ["Palvelu: Terveysaseman vastaanotto"]
    assert page["privacy"] == {"href": PRIVACY_URL, "text": "Tietosuojaseloste"}
    _accessible(page)

    assert (fresh["status"], fresh["lang"]) == (200, "sv")
    assert fresh["question"] == "Hur nöjd var du med servicen du fick?"
    assert fresh["hint"].startswith("1 = mycket missnöjd, 5 = mycket nöjd")
    assert fresh["pressed"] == []
    assert fresh["statusLine"] == ""
    assert fresh["organisation"] == ORGANISATION["sv"]
    assert fresh["privacy"] == {"href": PRIVACY_URL, "text": "Dataskyddsbeskrivning"}
    _accessible(fresh)
