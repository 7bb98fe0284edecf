"""The one-tap pages over real HTTP, with the survey index and answers on a real broker."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest

from connectors.web.pages import PAGES, link_signer
from engine.evidence import EMAIL_RULES
from engine.outbound import survey_email
from engine.tokens import TokenPayload, TokenPurpose
from schemas.base import Language, SurveyChannel
from schemas.topics import COMMENTS, RESPONSES
from tests.integration.citizen_harness import (
    STATEMENTS,
    STATEMENTS_TOUCHPOINT,
    citizen_key_for,
    read_topic,
    running_citizen_web,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from schemas.surveys import SurveyScheduled
    from tests.integration.citizen_harness import CitizenEnv

pytestmark = pytest.mark.integration


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


def _email_links(env: CitizenEnv, scheduled: SurveyScheduled) -> list[str]:
    """Every link of the email the dispatcher writes for the survey to the web service.

    The organisation's privacy notice, also linked, is on its own site.
    """
    touchpoint, _known = env.settings.touchpoint(scheduled.touchpoint_id)
    email = survey_email(
        scheduled,
        touchpoint,
        link_signer(env.settings),
        env.base_url,
        "Palaute",
        datetime.now(UTC),
    )
    found = re.findall(r'href="([^"]+)"', email.content.html)
    found += re.findall(r"https?://\S+", email.content.text)
    ours = {html.unescape(link) for link in found if link.startswith(env.base_url)}
    return sorted(ours | {email.unsubscribe_url})


async def _responses(env: CitizenEnv, expect: int | None = None) -> list[dict[str, object]]:
    return await read_topic(env.bootstrap, env.topic(RESPONSES), expect=expect)


async def test_a_score_link_opens_the_page_in_finnish_with_the_score_chosen(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """The citizen sees their language and the score they tapped, before anything is saved."""
    await env.publish_survey("s-page", citizen=citizen_key_for("page"))
    async with http.get(env.link("s-page", TokenPurpose.SCORE, 4)) as response:
        html = await response.text()
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<html lang="fi">' in html
    assert "Kuinka tyytyväinen" in html
    assert re.search(r'value="4"[^>]*aria-pressed="true"', html)
    assert 'data-auto-score="4"' in html
    assert "<noscript>" in html
    assert await _responses(env) == []


async def test_a_scanner_fetching_every_link_of_an_email_records_nothing(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """Mail gateways fetch every link; a GET or HEAD must never vote or unsubscribe."""
    scheduled = await env.publish_survey("s-scan", citizen=citizen_key_for("scan"))
    links = _email_links(env, scheduled)
    assert len(links) == 8  # five scores, the page, unsubscribe, the hidden honeypot
    for link in links:
        async with http.get(link) as response:
            assert response.status == 200
        async with http.head(link) as response:
            assert response.status == 200
    assert await _responses(env) == []


async def test_a_vote_is_provisional_until_a_changed_score_confirms_it(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """The page's own vote may be a scanner's; a person's tap on another score confirms it."""
    await env.publish_survey("s-vote", citizen=citizen_key_for("vote"), sent_ago=timedelta(0))
    link = env.link("s-vote", TokenPurpose.SCORE, 2)
    json_accept = {"Accept": "application/json"}
    async with http.get(link) as response:
        assert response.status == 200
    async with http.post(link, data={"score": "2", "mode": "auto"}, headers=json_accept) as r:
        assert r.status == 200
        assert (await r.json())["score"] == 2
    await asyncio.sleep(2.2)
    async with http.post(link, data={"score": "5", "mode": "tap"}, headers=json_accept) as r:
        assert r.status == 200
    answers = await _responses(env, expect=2)
    assert [(a["type"], a["score"], a["confirmed"]) for a in answers] == [
        ("RatingReceived", 2, False),
        ("RatingReceived", 5, False),  # confirmed, held while late scanner evidence may come
    ]
    assert env.app is not None
    later = datetime.now(UTC) + EMAIL_RULES.settle_period
    await env.app[PAGES].answers.recheck(env.index.surveys, later)
    answers = await _responses(env, expect=3)
    assert [(a["score"], a["confirmed"]) for a in answers][2:] == [(5, True)]


async def test_a_client_that_fetched_the_honeypot_is_a_scanner_whatever_it_votes(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """The hidden link is followed by machines only; their votes, even changed ones, never count."""
    scheduled = await env.publish_survey(
        "s-trap", citizen=citizen_key_for("trap"), sent_ago=timedelta(0)
    )
    (honeypot,) = [link for link in _email_links(env, scheduled) if "/h/" in link]
    async with http.get(honeypot) as response:
        assert response.status == 200
        page = await response.text()
    assert "<form" not in page
    link = env.link("s-trap", TokenPurpose.SCORE, 2)
    json_accept = {"Accept": "application/json"}
    async with http.post(link, data={"score": "2", "mode": "tap"}, headers=json_accept) as r:
        assert r.status == 200
    await asyncio.sleep(2.2)
    async with http.post(link, data={"score": "5", "mode": "tap"}, headers=json_accept) as r:
        assert r.status == 200
    await asyncio.sleep(1)
    assert await _responses(env) == []


async def test_follow_up_statements_come_after_a_vote_one_event_per_answered_statement(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """THL's statements are optional extras: never before the answer, each its own event."""
    await env.publish_survey(
        "s-state",
        citizen=citizen_key_for("statements"),
        language=Language.SV,
        touchpoint_id=STATEMENTS_TOUCHPOINT,
    )
    link = env.link("s-state", TokenPurpose.PAGE)
    json_accept = {"Accept": "application/json"}
    async with http.get(link) as response:
        page = await response.text()
    section = re.search(r"<section id=\"statements\"[^>]*>", page)
    assert section is not None
    assert "hidden" in section.group(0)
    assert all(f"<legend>{each['sv']}</legend>" in page for each in STATEMENTS)
    assert page.count('type="radio" name="statement-1"') == 5
    assert "Instämmer helt" in page
    answers = {"statement-0": "5", "statement-1": ""}
    async with http.post(link + "/statements", data=answers, headers=json_accept) as r:
        assert r.status == 409
    async with http.post(link, data={"score": "4", "mode": "tap"}, headers=json_accept) as r:
        assert r.status == 200
    async with http.post(link + "/statements", data={"statement-0": "9"}) as r:
        assert r.status == 400
    async with http.post(link + "/statements", data=answers, allow_redirects=False) as r:
        assert r.status == 303
        location = r.headers["Location"]
    async with http.get(env.base_url + location) as response:
        after = await response.text()
    assert "Dina svar på påståendena har sparats" in after
    assert '<section id="statements" aria-labelledby="statements-title">' in after
    written = await _responses(env, expect=2)
    assert [(a["type"], a["score"]) for a in written] == [
        ("RatingReceived", 4),
        ("StatementAnswered", 5),
    ]
    assert written[1]["statement_index"] == 0


async def test_statements_after_expiry_are_refused(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """A survey's life ends for its statements too."""
    await env.publish_survey(
        "s-state-late",
        citizen=citizen_key_for("statements-late"),
        touchpoint_id=STATEMENTS_TOUCHPOINT,
        sent_ago=timedelta(days=3),
    )
    link = env.link("s-state-late", TokenPurpose.PAGE)
    async with http.post(link + "/statements", data={"statement-0": "3"}) as response:
        assert response.status == 410
    assert await _responses(env) == []


async def test_the_no_script_form_votes_and_shows_the_saved_answer(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """Without JavaScript the form posts and the page says the answer is saved."""
    await env.publish_survey("s-form", citizen=citizen_key_for("form"), language=Language.SV)
    link = env.link("s-form", TokenPurpose.PAGE)
    async with http.post(link, data={"score": "3", "mode": "form"}, allow_redirects=False) as r:
        assert r.status == 303
        location = r.headers["Location"]
    async with http.get(env.base_url + location) as response:
        html = await response.text()
    assert '<html lang="sv">' in html
    assert "Ditt svar 3 har sparats" in html
    assert "data-auto-score" not in html
    (answer,) = await _responses(env, expect=1)
    assert (answer["score"], answer["via"]) == (3, "link")


async def test_a_comment_is_written_with_contact_details_redacted(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """Comments travel and are stored; numbers, addresses and identity codes must not."""
    await env.publish_survey("s-comment", citizen=citizen_key_for("comment"))
    link = env.link("s-comment", TokenPurpose.PAGE)
    text = "Soita 040 123 4567 tai matti@example.fi, hetu 131052-308T. Hyvä palvelu!"
    async with http.post(link + "/comment", data={"comment": text}, allow_redirects=False) as r:
        assert r.status == 303
    (comment,) = await read_topic(env.bootstrap, env.topic(COMMENTS), expect=1)
    assert comment["type"] == "CommentReceived"
    assert comment["survey_id"] == "s-comment"
    written = str(comment["text"])
    assert "Hyvä palvelu!" in written
    for secret in ("040 123 4567", "matti@example.fi", "131052-308T"):
        assert secret not in written


async def test_bad_links_get_a_clear_page_and_record_nothing(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """Forged, broken, expired and foreign links explain themselves and never vote."""
    await env.publish_survey("s-bad", citizen=citizen_key_for("bad"))
    good = env.link("s-bad", TokenPurpose.SCORE, 3)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    past = datetime.now(UTC) - timedelta(days=3)
    expired_token = link_signer(env.settings).sign(
        TokenPayload("s-bad", TokenPurpose.SCORE, past + timedelta(days=1), 3), past
    )
    cases = {
        tampered: 400,
        env.base_url + "/r/not-a-token": 400,
        env.base_url + "/r/" + expired_token: 410,
        env.link("s-unknown", TokenPurpose.SCORE, 3): 404,
        env.link("s-bad", TokenPurpose.UNSUBSCRIBE).replace("/u/", "/r/"): 400,
    }
    for url, status in cases.items():
        async with http.get(url) as response:
            assert response.status == status, url
            assert "text/html" in response.headers["Content-Type"]
        async with http.post(url, data={"score": "3"}) as response:
            assert response.status == status, url
    assert await _responses(env) == []


async def test_an_answer_after_expiry_is_refused_politely(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """The survey's life ends; a late tap gets an explanation, not a vote."""
    await env.publish_survey("s-late", citizen=citizen_key_for("late"), sent_ago=timedelta(days=3))
    link = env.link("s-late", TokenPurpose.SCORE, 5)
    async with http.post(link, data={"score": "5"}) as response:
        assert response.status == 410
        assert "Kysely on päättynyt" in await response.text()
    assert await _responses(env) == []


async def test_the_sms_code_link_opens_the_survey_page_and_votes_like_a_token(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """The short SMS link must do what the signed page link did, and nothing for a guess."""
    await env.publish_survey("s-code", citizen=citizen_key_for("code"), channel=SurveyChannel.SMS)
    await env.publish_survey(
        "s-code-late",
        citizen=citizen_key_for("code-late"),
        channel=SurveyChannel.SMS,
        sent_ago=timedelta(days=3),
    )
    link = env.sms_link("s-code")
    async with http.get(link) as response:
        page = await response.text()
        assert response.status == 200
    assert "Testikaupunki" in page
    assert 'href="https://palaute.example.fi/tietosuoja"' in page
    async with http.post(link, data={"score": "4", "mode": "tap"}, allow_redirects=False) as vote:
        assert vote.status == 303
    guessed = env.base_url + "/r/" + "A" * 16
    async with http.get(guessed) as response:
        assert response.status == 404
    async with http.get(env.sms_link("s-code-late")) as response:
        assert response.status == 410
    answers = await _responses(env, expect=1)
    assert [(a["survey_id"], a["score"]) for a in answers] == [("s-code", 4)]


async def test_unsubscribe_shows_a_button_on_get_and_opts_out_on_post(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """RFC 8058: the one-click POST unsubscribes; a GET only asks."""
    citizen = citizen_key_for("unsubscribe")
    await env.publish_survey("s-unsub", citizen=citizen, language=Language.EN)
    link = env.link("s-unsub", TokenPurpose.UNSUBSCRIBE)
    async with http.get(link) as response:
        assert response.status == 200
        assert 'method="post"' in await response.text()
    assert await _responses(env) == []
    async with http.post(link, data={"List-Unsubscribe": "One-Click"}) as response:
        assert response.status == 200
        assert "no more feedback requests" in await response.text()
    (opt_out,) = await _responses(env, expect=1)
    assert (opt_out["type"], opt_out["citizen_key"]) == ("OptOut", citizen)


async def test_oversized_bodies_junk_and_floods_get_4xx_never_5xx(
    env: CitizenEnv, http: aiohttp.ClientSession
) -> None:
    """No input may crash a handler; a flood from one client is slowed down."""
    await env.publish_survey("s-junk", citizen=citizen_key_for("junk"))
    link = env.link("s-junk", TokenPurpose.PAGE)
    async with http.post(link, data={"score": "3" * 100_000}) as response:
        assert response.status == 413
    for form in ({"score": "99"}, {"score": "-1"}, {"score": "٣"}, {}, {"comment": ""}):
        async with http.post(link, data=form) as response:
            assert 400 <= response.status < 500, form
    async with http.post(link, data=b"\xff\xfe", headers={"Content-Type": "text/plain"}) as r:
        assert 400 <= r.status < 500
    statuses: list[int] = []
    # Until the limiter answers, not a fixed count: on a slow machine fewer requests
    # a second come through, and the bucket refills meanwhile.
    while 429 not in statuses and len(statuses) < 500:
        async with http.get(link) as response:
            statuses.append(response.status)
    assert 429 in statuses
    assert all(status < 500 for status in statuses)
