"""Follow-up statements: configured per language, answered one event each, after a vote."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

from connectors.web.answers import Answers
from connectors.web.open_surveys import OpenSurvey
from engine.evidence import InteractionKind, VoteMode
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import TouchpointConfig
from schemas.responses import StatementAnswered
from schemas.topics import TopicNames

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_statements_are_given_in_the_citizens_language_or_as_written_once() -> None:
    """A statement in three languages follows the page; a plain one reads the same in each."""
    touchpoint = TouchpointConfig(
        follow_up_statements=[
            {Language.FI: "Sain apua", Language.SV: "Jag fick hjälp", Language.EN: "I got help"},
            "Palvelu oli nopeaa.",
        ]
    )
    assert touchpoint.statements(Language.SV) == ("Jag fick hjälp", "Palvelu oli nopeaa.")
    assert touchpoint.statements(Language.SE) == ("Sain apua", "Palvelu oli nopeaa.")


@pytest.mark.parametrize(
    "statements",
    [
        [{Language.FI: "Sain apua", Language.EN: "I got help"}],
        [f"Väite {n}" for n in range(8)],
    ],
    ids=["a language missing", "more than seven"],
)
def test_statements_missing_a_language_or_too_many_are_refused(statements: list[object]) -> None:
    """A Swedish speaker must not meet a Finnish-only statement; the THL model has seven at most."""
    with pytest.raises(pydantic.ValidationError):
        TouchpointConfig(follow_up_statements=statements)


class _Producer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        assert (topic, key) == ("r", b"s-1")
        assert headers
        self.sent.append(json.loads(value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _survey() -> OpenSurvey:
    return OpenSurvey(
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


async def test_statements_are_taken_only_from_the_client_whose_vote_may_count() -> None:
    """Statements follow the answer; a scanner or a stranger must not add any."""
    producer = _Producer()
    answers = Answers(producer, TopicNames(responses="r", surveys="s"))
    survey = _survey()
    at = T0 + timedelta(hours=1)
    assert not await answers.statements(survey, {0: 4}, "person", at)
    await answers.vote(survey, 4, mode=VoteMode.TAP, link="page", client="person", now=at)
    await answers.visit(survey, InteractionKind.HONEYPOT, "honeypot", "gateway", at)
    await answers.vote(survey, 1, mode=VoteMode.AUTO, link="page", client="gateway", now=at)
    assert not await answers.statements(survey, {0: 1}, "gateway", at)
    assert not await answers.statements(survey, {0: 1}, "stranger", at)
    assert not await answers.statements(survey, {}, "person", at)
    assert await answers.statements(survey, {2: 5, 0: 3}, "person", at)
    statements = [event for event in producer.sent if event["type"] == "StatementAnswered"]
    assert [(event["statement_index"], event["score"]) for event in statements] == [(0, 3), (2, 5)]
    assert len({event["answer_id"] for event in statements}) == 2


@pytest.mark.parametrize(
    ("index", "score"), [(-1, 3), (7, 3), (0, 0), (0, 6)], ids=["-1", "8th", "0", "6"]
)
def test_a_statement_answer_off_the_agreement_scale_or_list_is_invalid(
    index: int, score: int
) -> None:
    """The contract holds statements 0..6 on a 1..5 agreement scale."""
    with pytest.raises(pydantic.ValidationError):
        StatementAnswered(
            answer_id="a", survey_id="s", statement_index=index, score=score, received_at=T0
        )
