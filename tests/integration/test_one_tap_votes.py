"""One-tap votes over real HTTP and a real broker: a person's repeats count once, page loads never.

The web service runs as in production (``running_citizen_web``); time is moved
on by calling the same re-judging its background task runs every five
seconds, with a later ``now``, instead of waiting out the quiet period.
The scanner test drives headless Chromium (Debian's ``chromium``) through
every link of a survey email that the real mailer delivered to a real SMTP
server, in order, with JavaScript on.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.email import OutgoingEmail, SmtpMailer
from connectors.web.pages import PAGES, link_signer
from engine.evidence import EMAIL_RULES
from engine.outbound import asker_for, survey_email
from engine.ratings import SurveyAnswers, TouchpointFacts, on_answer, on_scheduled
from engine.tokens import TokenPurpose
from schemas.config import SmtpConfig
from schemas.contacts import TouchpointChannel
from schemas.responses import RatingReceived
from schemas.topics import RESPONSES
from tests.integration.citizen_harness import PARTITIONS, citizen_key_for, running_citizen_web
from tests.integration.smtp_server import HOST, running_smtp_sink
from tests.integration.test_browser import _require_tooling

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from schemas.surveys import SurveyScheduled
    from tests.integration.citizen_harness import CitizenEnv

pytestmark = pytest.mark.integration

TOOLING = Path(__file__).resolve().parents[2] / "tests" / "tooling"
JSON = {"Accept": "application/json"}
#: Past the quiet period and the settle period of every rule set.
LATER = timedelta(minutes=11)
#: How long reading a topic may take on a busy 2-core machine.
WAIT_SECONDS = 120.0


@pytest.fixture
async def env(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    """Run a web service with its own topics."""
    async with running_citizen_web(kafka_bootstrap, str(tmp_path / "data")) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Give an HTTP client for the test."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _later(env: CitizenEnv, by: timedelta) -> None:
    """Re-judge provisional votes as the background task will once ``by`` has passed."""
    assert env.app is not None
    await env.app[PAGES].answers.recheck(env.index.surveys, datetime.now(UTC) + by)


async def _read_all(env: CitizenEnv, base: str) -> list[dict[str, Any]]:
    """Read every record a topic holds now, up to its end offsets: no guessing how long to wait.

    Whatever the web service wrote was acknowledged before its answer (or its
    re-judging) returned, so the end offsets taken here cover all of it.
    """
    topic = env.topic(base)
    consumer = AIOKafkaConsumer(bootstrap_servers=env.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        values: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while any([await consumer.position(p) < ends[p] for p in partitions]):
            assert asyncio.get_running_loop().time() < deadline, f"{topic} not read to its end"
            batches = await consumer.getmany(timeout_ms=500)
            values.extend(json.loads(r.value) for batch in batches.values() for r in batch)
        return values
    finally:
        await consumer.stop()


async def _ratings_received(env: CitizenEnv, survey_id: str) -> list[tuple[int, bool]]:
    answers = await _read_all(env, RESPONSES)
    return [
        (answer["score"], answer["confirmed"])
        for answer in answers
        if answer["type"] == "RatingReceived" and answer["survey_id"] == survey_id
    ]


def _counted(scheduled: SurveyScheduled, answers: list[dict[str, Any]]) -> list[int]:
    """Fold the answers through the join's rules: the scores that reach the metrics."""
    facts = TouchpointFacts(service="Puhelinpalvelu", channel=TouchpointChannel.PHONE)
    state = on_scheduled(SurveyAnswers(), scheduled, facts).state
    scores: list[int] = []
    for answer in answers:
        result = on_answer(state, RatingReceived.model_validate(answer), facts)
        state = result.state
        scores.extend(rating.score for rating in result.ratings)
    return scores


async def test_a_double_tap_is_one_vote_kept_and_counted_once(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """A citizen who taps the same score twice keeps the answer the page said was saved."""
    scheduled = await env.publish_survey("s-double", citizen=citizen_key_for("double"))
    link = env.link("s-double", TokenPurpose.SCORE, 4)
    async with http.get(link) as response:
        assert response.status == 200
    async with http.post(link, data={"score": "4", "mode": "auto"}, headers=JSON) as r:
        own = await r.json()
    assert (r.status, own["saved"]) == (200, False)
    assert own["message"] == "Lähetä vastauksesi 4 napauttamalla sitä."

    async def tap() -> dict[str, Any]:
        async with http.post(link, data={"score": "4", "mode": "tap"}, headers=JSON) as r:
            assert r.status == 200
            result: dict[str, Any] = await r.json()
            return result

    taps = await asyncio.gather(tap(), tap())
    assert [t["message"] for t in taps] == ["Kiitos! Vastauksesi 4 on tallennettu."] * 2
    assert await _ratings_received(env, "s-double") == [(4, False)]
    await _later(env, LATER)
    await _later(env, timedelta(days=1))
    assert await _ratings_received(env, "s-double") == [(4, False), (4, True)]
    answers = await _read_all(env, RESPONSES)
    assert _counted(scheduled, answers) == [4]


async def test_a_post_repeated_five_times_is_one_vote_kept_and_counted_once(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """A browser sending the no-script form again and again must not turn the answer into noise."""
    scheduled = await env.publish_survey("s-repeat", citizen=citizen_key_for("repeat"))
    link = env.link("s-repeat", TokenPurpose.PAGE)
    for _ in range(5):
        async with http.post(link, data={"score": "2", "mode": "form"}, allow_redirects=False) as r:
            assert r.status == 303
            location = r.headers["Location"]
    async with http.get(env.base_url + location) as response:
        assert "Kiitos! Vastauksesi 2 on tallennettu." in await response.text()
    assert await _ratings_received(env, "s-repeat") == [(2, False)]
    await _later(env, LATER)
    assert await _ratings_received(env, "s-repeat") == [(2, False), (2, True)]
    answers = await _read_all(env, RESPONSES)
    assert _counted(scheduled, answers) == [2]


async def _deliver(env: CitizenEnv, scheduled: SurveyScheduled) -> list[str]:
    """Send the survey email with the real mailer to a real SMTP server; its links, in order."""
    touchpoint, _known = env.settings.touchpoint(scheduled.touchpoint_id)
    text = survey_email(
        scheduled, touchpoint, link_signer(env.settings), env.base_url, "Palaute", datetime.now(UTC)
    )
    async with running_smtp_sink() as sink:
        config = SmtpConfig(host=HOST, port=sink.port, security="none", sender="palaute@example.fi")
        await SmtpMailer(config).send(
            OutgoingEmail(
                to="matti@example.fi", content=text.content, unsubscribe_url=text.unsubscribe_url
            )
        )
        (mail,) = sink.received
    body = mail.message().get_body(preferencelist=("html",))
    assert body is not None
    links = [html.unescape(href) for href in re.findall(r'href="([^"]+)"', body.get_content())]
    return list(dict.fromkeys(links))


@pytest.mark.slow
async def test_a_scanner_loading_every_link_of_a_real_email_with_javascript_makes_no_rating(
    env: CitizenEnv, tmp_path: Path
) -> None:
    """Each page's own vote for its score is a page load, not a person: none may ever count."""
    node = _require_tooling()
    scheduled = await env.publish_survey("s-scanned", citizen=citizen_key_for("scanned"))
    every_link = await _deliver(env, scheduled)
    # The organisation's privacy notice is on its own site, which no test can reach; the
    # scanner loads every link the email has on the web service.
    links = [link for link in every_link if link.startswith(env.base_url)]
    touchpoint, _known = env.settings.touchpoint(scheduled.touchpoint_id)
    asker = asker_for(touchpoint, scheduled.language, "Palaute")
    assert [link for link in every_link if link not in links] == [asker.privacy_url]
    assert sum("/r/" in link for link in links) == 6  # five scores and the survey page
    # Slower than the link-burst rule sees (three links in ten seconds), as some gateways are.
    pause_ms = int(EMAIL_RULES.burst_window.total_seconds() / 2 * 1000) + 500
    process = await asyncio.create_subprocess_exec(
        node,
        str(TOOLING / "scanner-every-link.mjs"),
        str(tmp_path / "scanner-profile"),
        str(pause_ms),
        *links,
        cwd=TOOLING,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    loaded = json.loads(out)
    assert [page["status"] for page in loaded] == [200] * len(links)
    voted = [page for page in loaded if page["autoVoted"]]
    assert len(voted) == 5, loaded  # every score page posted its score by itself
    assert all("tallennettu" not in page["text"] for page in voted)

    for by in (timedelta(0), LATER, timedelta(days=1)):
        await _later(env, by)
        received = await _ratings_received(env, "s-scanned")
        assert received, "the pages' own votes reached the web service"
        assert not [score for score, confirmed in received if confirmed]
    answers = await _read_all(env, RESPONSES)
    assert _counted(scheduled, answers) == []
