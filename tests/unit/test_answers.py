"""How page votes become RatingReceived events: provisional, confirmed, never a scanner's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.web.answers import Answers, link_id, message_links
from connectors.web.open_surveys import OpenSurvey
from engine.evidence import InteractionKind, VoteMode
from schemas.base import Language, Scale, SurveyChannel
from schemas.responses import AnswerVia
from schemas.topics import COMMENTS, RESPONSES, SURVEYS, TopicNames

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        assert headers
        self.sent.append((topic, key, json.loads(value)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _survey(channel: SurveyChannel = SurveyChannel.EMAIL) -> OpenSurvey:
    return OpenSurvey(
        survey_id="s-1",
        citizen_key="ef" * 32,
        contact_id="c-1",
        touchpoint_id="tp",
        channel=channel,
        language=Language.FI,
        scale=Scale.CSAT_5,
        expires_at=T0 + timedelta(days=3),
        sent_at=T0,
    )


def _answers() -> tuple[Answers, _Producer]:
    producer = _Producer()
    return Answers(producer, TopicNames(responses="r", surveys="s")), producer


def _written(producer: _Producer) -> list[tuple[int, bool]]:
    return [(event["score"], event["confirmed"]) for _, _, event in producer.sent]


async def test_a_lone_vote_is_provisional_and_confirms_after_the_quiet_period() -> None:
    """Most citizens tap once and leave; their answer must count once it is safe to."""
    answers, producer = _answers()
    survey = _survey()
    at = T0 + timedelta(hours=1)
    await answers.visit(survey, InteractionKind.LINK_GET, "score-4", "person", at)
    await answers.vote(survey, 4, mode=VoteMode.TAP, link="score-4", client="person", now=at)
    await answers.recheck({"s-1": survey}, at + timedelta(minutes=5))
    assert _written(producer) == [(4, False)]
    await answers.recheck({"s-1": survey}, at + timedelta(minutes=11))
    assert _written(producer) == [(4, False), (4, True)]
    await answers.recheck({"s-1": survey}, at + timedelta(minutes=20))
    assert len(producer.sent) == 2


async def test_a_scanner_fetching_every_link_then_voting_is_never_confirmed() -> None:
    """Gateways that run scripts vote too; their votes must never reach the metrics."""
    answers, producer = _answers()
    survey = _survey()
    at = T0 + timedelta(minutes=1)
    for link in sorted(message_links(survey)):
        await answers.visit(survey, InteractionKind.LINK_GET, link, "gateway", at)
    await answers.vote(survey, 1, mode=VoteMode.AUTO, link="score-1", client="gateway", now=at)
    await answers.recheck({"s-1": survey}, at + timedelta(hours=1))
    assert all(not confirmed for _, confirmed in _written(producer))


async def test_an_sms_score_and_an_opt_out_are_written_keyed_by_survey() -> None:
    """The responses topic is keyed by survey id, so one survey's answers stay in order."""
    answers, producer = _answers()
    survey = _survey(SurveyChannel.SMS)
    await answers.sms_score(survey, 5, T0)
    await answers.opt_out("s-1", survey.citizen_key, via=AnswerVia.SMS_REPLY, now=T0)
    assert [(topic, key, event["type"]) for topic, key, event in producer.sent] == [
        ("r", b"s-1", "RatingReceived"),
        ("r", b"s-1", "OptOut"),
    ]


async def test_a_comment_is_redacted_and_an_empty_one_is_refused() -> None:
    """Contact details never leave the web service inside a comment."""
    answers, producer = _answers()
    survey = _survey()
    assert await answers.comment(survey, "Soita 040 123 4567 kiitos", "person", T0)
    assert not await answers.comment(survey, "   ", "person", T0)
    ((topic, key, comment),) = [
        sent for sent in producer.sent if sent[2]["type"] == "CommentReceived"
    ]
    assert "040 123 4567" not in comment["text"]
    assert "kiitos" in comment["text"]
    # Its own compacted topic, one key per comment, so an erasure can tombstone it.
    assert topic == COMMENTS
    assert key == f"s-1|{comment['answer_id']}".encode()


def test_the_comments_topic_carries_the_deployments_suffix() -> None:
    """A deployment with a topic suffix must not write comments to another deployment's topic."""
    names = TopicNames.with_suffix("-test")
    assert (names.responses, names.surveys, names.comments) == (
        RESPONSES + "-test",
        SURVEYS + "-test",
        COMMENTS + "-test",
    )


def test_link_ids_name_the_score_or_the_purpose() -> None:
    """The evidence rules count different links of one message; each needs its own id."""
    assert link_id("score", 3) == "score-3"
    assert link_id("page", None) == "page"
    assert message_links(_survey(SurveyChannel.SMS)) == frozenset({"page"})
    assert len(message_links(_survey())) == 7


async def test_a_client_that_fetched_the_honeypot_never_has_its_vote_written() -> None:
    """Only a machine follows the hidden link; whatever it votes afterwards is a scanner's."""
    answers, producer = _answers()
    survey = _survey()
    at = T0 + timedelta(hours=1)
    await answers.visit(survey, InteractionKind.HONEYPOT, "honeypot", "gateway", at)
    await answers.visit(survey, InteractionKind.LINK_GET, "score-5", "gateway", at)
    await answers.vote(survey, 5, mode=VoteMode.AUTO, link="score-5", client="gateway", now=at)
    await answers.recheck({"s-1": survey}, at + timedelta(hours=1))
    assert producer.sent == []
    await answers.vote(survey, 3, mode=VoteMode.TAP, link="score-3", client="person", now=at)
    await answers.recheck({"s-1": survey}, at + timedelta(hours=1))
    assert _written(producer) == [(3, False), (3, True)]
