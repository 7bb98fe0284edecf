"""A citizen's one-tap answer in headless Chromium, through to the ratings topic.

Chromium (Debian's ``chromium``) is driven by Playwright's core library from
``tests/tooling/one-tap-browser.mjs``; axe-core checks the same page for WCAG
2.1 A/AA problems. The responses stage runs as a real faust worker
(``responses_worker.py``), so the Rating asserted is the one production
writes. A missing browser or tooling fails the test with what to install.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from engine.tokens import TokenPurpose
from schemas.base import Language, Scale, SurveyChannel
from schemas.topics import COMMENTS, RATINGS, RESPONSES
from tests.fixtures import start_process, stop_process
from tests.integration.citizen_harness import (
    LINK_SIGNING_KEY,
    PARTITIONS,
    PSEUDONYMISATION_KEY,
    STATEMENTS,
    STATEMENTS_TOUCHPOINT,
    citizen_key_for,
    read_topic,
    running_citizen_web,
)

if TYPE_CHECKING:
    import subprocess

    from tests.integration.citizen_harness import CitizenEnv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ROOT / "tests" / "tooling"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
COMMENT = "Nopea palvelu, soita 040 123 4567"


def _require_tooling() -> str:
    node = shutil.which("node")
    if not CHROMIUM.exists() or node is None:
        pytest.fail(
            "headless Chromium is needed: apt-get install -y chromium chromium-driver nodejs",
            pytrace=False,
        )
    for package in ("playwright-core", "axe-core"):
        if not (TOOLING / "node_modules" / package).is_dir():
            pytest.fail(f"{package} is missing: run npm ci in {TOOLING}", pytrace=False)
    return node


def _worker_config(tmp_path: Path, env: CitizenEnv) -> Path:
    path = tmp_path / "worker.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{env.bootstrap}"]

[secrets]
pseudonymisation_key = "{PSEUDONYMISATION_KEY}"
link_signing_key = "{LINK_SIGNING_KEY}"

[streams]
topic_suffix = "{env.suffix}"
data_dir = "{tmp_path / "worker-data"}"
partitions = {PARTITIONS}

[touchpoints.phone-service]
name = "Puhelinpalvelu"
""",
        encoding="utf-8",
    )
    return path


def _start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return start_process(
        [sys.executable, str(Path(__file__).with_name("responses_worker.py")), str(config)],
        log,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


async def _browse(node: str, url: str, tmp_path: Path) -> dict[str, Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        node,
        str(TOOLING / "one-tap-browser.mjs"),
        url,
        "5",
        COMMENT,
        str(ARTIFACTS / "one-tap-page.png"),
        str(tmp_path / "chromium-profile"),
        cwd=TOOLING,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def _ratings(env: CitizenEnv, survey_id: str) -> list[dict[str, Any]]:
    for _ in range(60):
        ratings = await read_topic(env.bootstrap, env.topic(RATINGS), settle=0.5)
        mine = [rating for rating in ratings if rating["survey_id"] == survey_id]
        if mine:
            await asyncio.sleep(2)  # anything more would come now
            again = await read_topic(env.bootstrap, env.topic(RATINGS), settle=0.5)
            return [rating for rating in again if rating["survey_id"] == survey_id]
        await asyncio.sleep(0.5)
    return []


@pytest.mark.slow
async def test_a_citizen_answers_changes_and_comments_and_the_survey_counts_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The whole one-tap promise: Finnish page, change of mind, comment, one Rating, accessible."""
    node = _require_tooling()
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "web-data")) as env:
        log = tmp_path / "worker.log"
        worker = _start_worker(_worker_config(tmp_path, env), log)
        try:
            await env.publish_survey("s-browser", citizen=citizen_key_for("browser"))
            page = await _browse(node, env.link("s-browser", TokenPurpose.SCORE, 4), tmp_path)
            ratings = await _ratings(env, "s-browser")
            answers = await read_topic(env.bootstrap, env.topic(RESPONSES))
            comments = await read_topic(env.bootstrap, env.topic(COMMENTS))
        finally:
            stop_process(worker)
        worker_log = log.read_text(errors="replace")[-3000:]

    assert page["lang"] == "fi"
    assert page["title"] == "Palautekysely"
    # The page's own vote is no answer until the citizen taps.
    assert page["statuses"][0] == "Lähetä vastauksesi 4 napauttamalla sitä."
    assert page["statuses"][1] == "Kiitos! Vastauksesi 5 on tallennettu."
    assert page["statuses"][2] == "Kiitos kommentistasi!"
    assert page["pressed"] == "5"
    assert page["focusOutline"] == "solid"
    serious = [v for v in page["violations"] if v["impact"] in {"serious", "critical"}]
    assert serious == [], serious
    origin = urlsplit(env.base_url).netloc
    assert {urlsplit(url).netloc for url in page["requests"]} == {origin}
    assert (ARTIFACTS / "one-tap-page.png").stat().st_size > 0

    kinds = [(a["type"], a.get("score"), a.get("confirmed")) for a in answers]
    # The tap on 5 confirms; the confirmation is held while late scanner evidence may come.
    assert kinds == [
        ("RatingReceived", 4, False),
        ("RatingReceived", 5, False),
        ("RatingReceived", 5, True),
    ]
    assert not [a for a in answers if a["type"] == "CommentReceived"]
    # Comments have a compacted topic of their own, where an erasure can tombstone them.
    assert [c["type"] for c in comments] == ["CommentReceived"]
    assert "040 123 4567" not in comments[0]["text"]

    assert len(ratings) == 1, worker_log
    (rating,) = ratings
    assert (rating["rating_id"], rating["revision"], rating["score"]) == ("s-browser", 1, 5)
    assert (rating["touchpoint_id"], rating["language"], rating["survey_channel"]) == (
        "phone-service",
        "fi",
        "email",
    )
    assert rating["normalised"] == 1.0
    assert rating["service"] == "Puhelinpalvelu"


async def test_follow_up_statements_appear_after_the_tap_answer_by_keyboard_and_pass_axe(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Statements come after the answer, in Swedish, usable by keyboard, and each is written."""
    node = _require_tooling()
    statement = STATEMENTS[1]["sv"]
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "web-data")) as env:
        await env.publish_survey(
            "s-statements",
            citizen=citizen_key_for("browser-statements"),
            language=Language.SV,
            channel=SurveyChannel.SMS,
            touchpoint_id=STATEMENTS_TOUCHPOINT,
        )
        process = await asyncio.create_subprocess_exec(
            node,
            str(TOOLING / "statements-browser.mjs"),
            env.link("s-statements", TokenPurpose.PAGE),
            "Betyg 4 av 5",
            statement,
            "Instämmer delvis",
            str(tmp_path / "statements-profile"),
            cwd=TOOLING,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode(errors="replace")[-3000:]
        answers = await read_topic(env.bootstrap, env.topic(RESPONSES), expect=2)
    page = json.loads(out)
    assert page["lang"] == "sv"
    assert page["hiddenBeforeVote"] is True
    assert page["statuses"] == [
        "Tack! Ditt svar 4 har sparats.",
        "Tack! Dina svar på påståendena har sparats.",
    ]
    assert page["checked"] is True
    assert page["focusOutline"] == "solid"
    serious = [v for v in page["violations"] if v["impact"] in {"serious", "critical"}]
    assert serious == [], serious
    statements = [a for a in answers if a["type"] == "StatementAnswered"]
    assert [(a["statement_index"], a["score"]) for a in statements] == [(1, 4)]


async def test_every_kind_of_page_passes_axe_core_in_its_language(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The SMS page, unsubscribe and error pages serve the same citizens as the answer page."""
    node = _require_tooling()
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "web-data")) as env:
        await env.publish_survey(
            "s-sms-page",
            citizen=citizen_key_for("sms-page"),
            language=Language.SV,
            channel=SurveyChannel.SMS,
        )
        await env.publish_survey(
            "s-en", citizen=citizen_key_for("en"), language=Language.EN, scale=Scale.NPS_11
        )
        pages = {
            env.link("s-sms-page", TokenPurpose.PAGE): ("sv", 200),
            env.link("s-en", TokenPurpose.SCORE, 9): ("en", 200),
            env.link("s-en", TokenPurpose.UNSUBSCRIBE): ("en", 200),
            env.link("s-unknown", TokenPurpose.PAGE): ("fi", 404),
            env.base_url + "/r/broken-token": ("fi", 400),
        }
        process = await asyncio.create_subprocess_exec(
            node,
            str(TOOLING / "axe-pages.mjs"),
            str(tmp_path / "axe-profile"),
            *pages,
            cwd=TOOLING,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    results = json.loads(out)
    assert [(r["lang"], r["status"]) for r in results] == list(pages.values())
    for result in results:
        serious = [v for v in result["violations"] if v["impact"] in {"serious", "critical"}]
        assert serious == [], (result["url"], serious)
