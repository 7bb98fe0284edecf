"""Breakdowns, statements and the spreadsheet download, from real topics, in headless Chromium.

Ratings with their contact's team and queue wait, and answers to a follow-up
statement, are produced to the test's own topics on the real broker; the web
app follows them as in production. Chromium (``tests/tooling/console-browser.mjs``)
opens both pages in Finnish, Swedish and English at 1280 px and at 390 px:
axe-core finds no WCAG 2.1 A/AA violation and nothing scrolls sideways. The
XLSX download is read back with openpyxl and compared with what was produced.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
import openpyxl
import pytest

from engine.history import recount
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import Settings
from schemas.contacts import TouchpointChannel
from schemas.responses import CommentReceived, Rating, StatementAnswered
from schemas.topics import COMMENTS, HISTORY, RATINGS, RESPONSES, comment_key
from tests.integration.dashboard_harness import TOKEN, dashboard_env, now

if TYPE_CHECKING:
    from tests.integration.dashboard_harness import DashboardEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOOLING = Path(__file__).resolve().parents[2] / "tests" / "tooling"
CHROMIUM = Path("/usr/bin/chromium")
STATEMENT = {
    "fi": "Sain asiani hoidettua yhdellä yhteydenotolla",
    "sv": "Jag fick mitt ärende skött med en kontakt",
    "en": "My matter was handled in one contact",
}
#: Team, score and queue wait (seconds) of each produced rating.
ANSWERS = [("Neuvonta A", 5, 30)] * 6 + [("Neuvonta A", 4, 400)] * 4 + [("Neuvonta B", 2, 2400)] * 2


def _settings(env: DashboardEnv) -> Settings:
    data: dict[str, Any] = {
        "kafka": {"bootstrap_servers": [env.bootstrap]},
        "secrets": {"pseudonymisation_key": "d" * 40, "link_signing_key": "e" * 40},
        "streams": {"topic_suffix": env.suffix, "partitions": 1},
        "web": {
            "public_base_url": f"http://127.0.0.1:{env.port}",
            "bind_port": env.port,
            "ops_token_sha256": env.settings.web.ops_token_sha256,
        },
        "touchpoints": {
            "phone-service": {"name": "Puhelinpalvelu", "follow_up_statements": [STATEMENT]}
        },
        "breakdowns": {"teams": ["Neuvonta A", "Neuvonta B"]},
        "opendata": {"min_answers": 3},
    }
    return Settings.model_validate(data)


def _rating(number: int, team: str, score: int, wait: int) -> Rating:
    return Rating(
        rating_id=f"s-{number}",
        survey_id=f"s-{number}",
        touchpoint_id="phone-service",
        service="Neuvonta",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS if number % 2 else SurveyChannel.EMAIL,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=(score - 1) / 4,
        answered_after_seconds=60.0,
        answered_at=now() - timedelta(minutes=30),
        team=team.upper(),  # as a front office might spell it
        queue_wait_seconds=wait,
    )


def _require_tooling() -> str:
    node = shutil.which("node")
    if not CHROMIUM.exists() or node is None:
        pytest.fail("headless Chromium and node are needed", pytrace=False)
    return node


async def _browse(node: str, tmp_path: Path, urls: list[str]) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(TOOLING / "console-browser.mjs"),
        str(tmp_path / "chromium-profile"),
        TOKEN,
        *urls,
        cwd=TOOLING,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(180):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: list[dict[str, Any]] = json.loads(out)
    return result


async def test_breakdowns_and_statements_read_the_topics_accessibly_and_export_the_same_figures(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Item by item: team figures, small-group suppression, statements per language, XLSX."""
    node = _require_tooling()
    async with dashboard_env(kafka_bootstrap) as env:
        env.settings = _settings(env)
        ratings = [_rating(number, *answer) for number, answer in enumerate(ANSWERS)]
        for rating in ratings:
            await env.publish(RATINGS, rating.touchpoint_id, rating)
        # The history topic's counts, as the worker's history stage writes them.
        counts = recount(
            ratings,
            [],
            ZoneInfo(env.settings.policy.time_zone),
            lambda _touchpoint: Scale.CSAT_5,
            now=now(),
            breakdowns=env.settings.breakdowns,
        )
        for key, bucket in counts.items():
            await env.publish(HISTORY, key, bucket.record(key))
        for number, agreement in enumerate([5, 5, 4, 4, 2]):
            answered = StatementAnswered(
                answer_id=f"st-{number}",
                survey_id=f"s-{number}",
                statement_index=0,
                score=agreement,
                received_at=now() - timedelta(minutes=20),
            )
            await env.publish(RESPONSES, answered.survey_id, answered)
        for answer_id, text in [("c-1", "Kiitos nopeasta avusta"), ("c-2", "[phone] soittakaa")]:
            comment = CommentReceived(
                answer_id=answer_id, survey_id="s-1", text=text, received_at=now()
            )
            await env.publish(COMMENTS, comment_key("s-1", answer_id), comment)
        # The second comment's citizen asked to be forgotten: a tombstone follows it.
        erased = await env.producer.send(
            env.topic(COMMENTS), value=None, key=comment_key("s-1", "c-2").encode()
        )
        await erased
        await env.start()
        base = env.url("/dashboard/touchpoints/phone-service")
        urls = [
            f"{base}/{page}?lang={language}"
            for page in ("breakdowns", "statements")
            for language in ("fi", "sv", "en")
        ]
        results = await _browse(node, tmp_path, urls)
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
            session.get(f"{base}/export/figures.xlsx?window=24h") as response,
        ):
            assert response.status == 200
            workbook = openpyxl.load_workbook(io.BytesIO(await response.read()))

    for result in results:
        assert result["status"] == 200, result["url"]
        assert result["lang"] == result["url"].rsplit("=", 1)[1]
        assert result["violations"] == [], (result["url"], result["width"])
        assert result["scrollWidth"] <= result["clientWidth"], (result["url"], result["width"])
    by_url = {result["url"]: result["text"] for result in results if result["width"] == 390}
    finnish = by_url[f"{base}/breakdowns?lang=fi"]
    assert "Neuvonta A" in finnish
    assert "alle 3 vastausta" in finnish  # team B's two answers are not shown
    for language, text in STATEMENT.items():
        assert text in by_url[f"{base}/statements?lang={language}"]
    rows = list(workbook["figures"].iter_rows(values_only=True))
    lines = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    figures = {(line["dimension"], line["group"]): line for line in lines if line["answers"]}
    a_scores = [score for team, score, _ in ANSWERS if team == "Neuvonta A"]
    assert figures[("team", "Neuvonta A")]["answers"] == len(a_scores)
    assert figures[("team", "Neuvonta A")]["mean"] == pytest.approx(sum(a_scores) / len(a_scores))
    assert figures[("all", "all")]["answers"] == len(ANSWERS)
    assert figures[("queue_wait", "0-1")]["answers"] == 6
    assert all(line["mean"] is None for line in lines if line["group"] == "Neuvonta B")
    comments = list(workbook["comments"].iter_rows(values_only=True))
    assert [row[2:] for row in comments[1:]] == [(5, "Kiitos nopeasta avusta")]
