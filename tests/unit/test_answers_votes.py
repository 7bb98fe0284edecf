"""What the web service writes for repeated votes, page loads and late scanner evidence."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.web.answers import Answers
from connectors.web.open_surveys import OpenSurvey
from engine.evidence import EMAIL_RULES, InteractionKind, VoteMode
from schemas.base import Language, Scale, SurveyChannel
from schemas.topics import TopicNames

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SURVEY = OpenSurvey(
    survey_id="s-1",
    citizen_key="ef" * 32,
    contact_id="c-1",
    touchpoint_id="tp",
    channel=SurveyChannel.EMAIL,
    language=Language.FI,
    scale=Scale.CSAT_5,
    expires_at=T0 + timedelta(days=3),
    sent_at=T0,
)


class _Producer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        del topic, key, headers
        self.sent.append(json.loads(value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _answers() -> tuple[Answers, _Producer]:
    producer = _Producer()
    return Answers(producer, TopicNames(responses="r", surveys="s")), producer


def _written(producer: _Producer) -> list[tuple[int, bool]]:
    return [(event["score"], event["confirmed"]) for event in producer.sent]


async def test_a_scanner_opening_every_score_link_in_turn_is_never_written_confirmed() -> None:
    """Each page's own vote for another score is no change of mind: nothing may count."""
    answers, producer = _answers()
    at = T0 + timedelta(minutes=2)
    for score in range(1, 6):
        link = f"score-{score}"
        await answers.visit(SURVEY, InteractionKind.LINK_GET, link, "gateway", at)
        await answers.vote(SURVEY, score, mode=VoteMode.AUTO, link=link, client="gateway", now=at)
        at += timedelta(seconds=6)
    for later in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=2)):
        await answers.recheck({"s-1": SURVEY}, at + later)
    assert producer.sent
    assert not [score for score, confirmed in _written(producer) if confirmed]


async def test_a_tap_repeated_five_times_is_written_once_then_confirmed_once() -> None:
    """A browser sending the POST again must neither lose the answer nor write it five times."""
    answers, producer = _answers()
    at = T0 + timedelta(hours=1)
    await answers.visit(SURVEY, InteractionKind.PAGE_GET, "page", "person", at)
    for repeat in range(5):
        now = at + timedelta(milliseconds=100 * repeat)
        await answers.vote(SURVEY, 3, mode=VoteMode.FORM, link="page", client="person", now=now)
    assert _written(producer) == [(3, False)]
    await answers.recheck({"s-1": SURVEY}, at + timedelta(minutes=11))
    await answers.recheck({"s-1": SURVEY}, at + timedelta(days=1))
    assert _written(producer) == [(3, False), (3, True)]


async def test_scanner_evidence_while_a_confirmation_settles_withdraws_it() -> None:
    """A comment confirms, but a honeypot hit in the next seconds means nobody was there."""
    answers, producer = _answers()
    at = T0 + timedelta(hours=1)
    await answers.vote(SURVEY, 4, mode=VoteMode.TAP, link="page", client="c", now=at)
    await answers.comment(SURVEY, "hyvä", "c", at + timedelta(seconds=5))
    ratings = [event for event in producer.sent if event.get("type") == "RatingReceived"]
    assert [(e["score"], e["confirmed"]) for e in ratings] == [(4, False)]
    await answers.visit(
        SURVEY, InteractionKind.HONEYPOT, "honeypot", "c", at + timedelta(seconds=9)
    )
    await answers.recheck({"s-1": SURVEY}, at + EMAIL_RULES.settle_period + timedelta(minutes=30))
    ratings = [event for event in producer.sent if event.get("type") == "RatingReceived"]
    assert [(e["score"], e["confirmed"]) for e in ratings] == [(4, False)]


async def test_a_confirmation_is_written_once_the_survey_has_settled() -> None:
    """Without late evidence the held confirmation is written at the next re-judging."""
    answers, producer = _answers()
    at = T0 + timedelta(hours=1)
    await answers.vote(SURVEY, 4, mode=VoteMode.TAP, link="page", client="c", now=at)
    await answers.vote(
        SURVEY, 2, mode=VoteMode.TAP, link="page", client="c", now=at + timedelta(seconds=3)
    )
    assert _written(producer) == [(4, False), (2, False)]
    await answers.recheck({"s-1": SURVEY}, at + timedelta(seconds=3) + EMAIL_RULES.settle_period)
    assert _written(producer) == [(4, False), (2, False), (2, True)]
