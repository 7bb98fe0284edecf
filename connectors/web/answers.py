"""Turning what citizens do on the pages and by SMS into responses-topic events.

Comments go to a topic of their own, compacted and keyed per comment
(:func:`schemas.topics.comment_key`), so that a citizen's request to be
forgotten can remove them with tombstones instead of waiting for the
responses topic's retention.

Every request for a survey's links is kept as an
:class:`engine.evidence.Interaction` (in memory, per open survey) and the
survey's votes are judged again after each one with
:func:`engine.evidence.assess`. A vote is written as a RatingReceived with
``confirmed`` telling whether the evidence confirms it yet; a provisional
vote is judged again when its quiet period ends (:meth:`Answers.recheck`), and
written again, confirmed, if it holds. The ratings stage counts confirmed
answers only, once per survey. A vote's kind (the page's own, a tap, a
change of score) comes from :func:`engine.evidence.vote_kind`; the rules of
what confirms it are all in :mod:`engine.evidence`.

The interactions live in this process only: a restart forgets the evidence
of votes still provisional (they stay uncounted; the citizen's next action
on the page confirms them). SMS replies need no evidence: nobody scans them.

Follow-up statements are taken only from a client whose own vote on the page
may count (confirmed or provisional, not a scanner's): each answered
statement is written at once as a StatementAnswered. Whoever reads them
should count a survey's statements only once its rating is confirmed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.evidence import (
    EMAIL_RULES,
    SMS_RULES,
    VOTES,
    Interaction,
    InteractionKind,
    Verdict,
    VoteMode,
    assess,
    vote_kind,
)
from engine.ids import RANDOM_BYTES, letters
from schemas.base import SurveyChannel
from schemas.redaction import redact
from schemas.responses import (
    AnswerVia,
    CommentReceived,
    OptIn,
    OptOut,
    RatingReceived,
    StatementAnswered,
)
from schemas.topics import TopicNames, comment_key

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from connectors.web.ingress import ContactProducer
    from connectors.web.open_surveys import OpenSurvey
    from engine.evidence import Assessment
    from schemas.surveys import DeliveryReported

log = logging.getLogger(__name__)

#: The longest comment kept (CommentReceived allows 1000 characters).
MAX_COMMENT = 1000
#: Interactions kept per survey; more than any person makes, fewer than a flood.
MAX_INTERACTIONS = 200
_JSON = (("content-type", b"application/json"),)
#: Verdicts of a client whose follow-up statements are taken.
_MAY_COUNT = frozenset({Verdict.CONFIRMED, Verdict.PROVISIONAL})


def _new_answer_id() -> str:
    """Make a random answer id in letters only: hex could hold an identity code (engine.ids)."""
    return letters(secrets.token_bytes(RANDOM_BYTES))


def client_fingerprint(secret: bytes, address: str, user_agent: str) -> str:
    """Hash who is asking, keyed: tells clients apart without keeping an address."""
    raw = f"{address}\x00{user_agent}".encode()
    return hmac.new(secret, b"palaute-client\x00" + raw, hashlib.sha256).hexdigest()[:24]


def message_links(survey: OpenSurvey) -> frozenset[str]:
    """Link ids of the message a survey was sent in (see :func:`link_id`)."""
    if survey.channel is SurveyChannel.SMS:
        return frozenset({"page"})
    scores = (f"score-{n}" for n in range(survey.scale.low, survey.scale.high + 1))
    return frozenset({"page", "unsubscribe", *scores})


def link_id(purpose: str, score: int | None) -> str:
    """Name one link of a message: its purpose, and the score of a score link."""
    return f"score-{score}" if score is not None else purpose


@dataclass
class _Votes:
    interactions: list[Interaction] = field(default_factory=list)
    written: tuple[int, bool] | None = None  # (score, confirmed) last written
    chosen: int | None = None


class Answers:
    """Writes answers, opt-outs, comments and delivery reports; judges link votes."""

    def __init__(self, producer: ContactProducer, topics: TopicNames) -> None:
        self._producer = producer
        self._topics = topics
        self._votes: dict[str, _Votes] = {}

    def chosen(self, survey_id: str) -> int | None:
        """Return the score last chosen on the page, to show it again."""
        votes = self._votes.get(survey_id)
        return None if votes is None else votes.chosen

    async def visit(
        self, survey: OpenSurvey, kind: InteractionKind, link: str, client: str, now: datetime
    ) -> None:
        """Keep a GET (or HEAD) of a link: it casts nothing but is evidence."""
        await self._add(survey, Interaction(kind, now, link, client), now)

    async def vote(
        self,
        survey: OpenSurvey,
        score: int,
        *,
        mode: VoteMode,
        link: str,
        client: str,
        now: datetime,
    ) -> None:
        """Keep a vote from the page and write what the evidence now says.

        Its kind comes from how it was posted and this client's own previous
        vote (:func:`engine.evidence.vote_kind`): another client's vote, or
        the page's automatic one, is never taken as this client changing its mind.
        """
        votes = self._votes.setdefault(survey.survey_id, _Votes())
        previous = next(
            (
                item.score
                for item in reversed(votes.interactions)
                if item.client == client and item.kind in VOTES
            ),
            None,
        )
        kind = vote_kind(mode, previous, score)
        votes.chosen = score
        await self._add(survey, Interaction(kind, now, link, client, score), now)

    async def comment(self, survey: OpenSurvey, text: str, client: str, now: datetime) -> bool:
        """Write a comment with contact details redacted; False when nothing is left of it.

        Returns only once Kafka has acknowledged it, as every answer does.
        """
        cleaned = redact(text.strip()[:MAX_COMMENT]).text.strip()
        if not cleaned:
            return False
        event = CommentReceived(
            answer_id=_new_answer_id(),
            survey_id=survey.survey_id,
            text=cleaned[:MAX_COMMENT],
            received_at=now,
        )
        key = comment_key(event.survey_id, event.answer_id)
        await self._send(self._topics.comments, key, event.model_dump_json())
        await self._add(survey, Interaction(InteractionKind.COMMENT, now, "page", client), now)
        return True

    async def statements(
        self, survey: OpenSurvey, scores: Mapping[int, int], client: str, now: datetime
    ) -> bool:
        """Write one StatementAnswered per answered statement; False without a vote of ours.

        Only the client who voted, and whose vote is not judged a scanner's,
        may answer: statements come after the one-tap answer.
        """
        votes = self._votes.get(survey.survey_id)
        if votes is None or not scores:
            return False
        assessment = self._assess(survey, votes, now)
        mine = next((each for each in assessment.clients if each.client == client), None)
        if mine is None or mine.vote is None or mine.verdict not in _MAY_COUNT:
            return False
        for index, score in sorted(scores.items()):
            event = StatementAnswered(
                answer_id=_new_answer_id(),
                survey_id=survey.survey_id,
                statement_index=index,
                score=score,
                received_at=now,
            )
            await self._send(self._topics.responses, survey.survey_id, event.model_dump_json())
        return True

    async def sms_score(
        self, survey: OpenSurvey, score: int, now: datetime, *, answer_id: str | None = None
    ) -> None:
        """Write a score replied by SMS: confirmed at once.

        ``answer_id`` is the message's own (:func:`engine.replies.sms_answer_id`),
        so the answers join refuses a replay of the message as a repeat.
        """
        votes = self._votes.get(survey.survey_id)
        if votes is not None:  # the page shows the latest answer, however it came
            votes.chosen = score
        event = RatingReceived(
            answer_id=answer_id or _new_answer_id(),
            survey_id=survey.survey_id,
            score=score,
            via=AnswerVia.SMS_REPLY,
            received_at=now,
            confirmed=True,
        )
        await self._send(self._topics.responses, survey.survey_id, event.model_dump_json())

    async def opt_out(
        self,
        survey_id: str,
        citizen_key: str,
        via: AnswerVia,
        now: datetime,
        *,
        answer_id: str | None = None,
    ) -> None:
        """Write that the citizen wants no more surveys (``answer_id``: as for an SMS score)."""
        event = OptOut(
            answer_id=answer_id or _new_answer_id(),
            survey_id=survey_id,
            citizen_key=citizen_key,
            via=via,
            received_at=now,
        )
        await self._send(self._topics.responses, survey_id, event.model_dump_json())

    async def opt_in(
        self, survey_id: str, citizen_key: str, via: AnswerVia, now: datetime, *, answer_id: str
    ) -> None:
        """Write that the citizen wants surveys again, after an opt-out (as :meth:`opt_out`)."""
        event = OptIn(
            answer_id=answer_id,
            survey_id=survey_id,
            citizen_key=citizen_key,
            via=via,
            received_at=now,
        )
        await self._send(self._topics.responses, survey_id, event.model_dump_json())

    async def delivery(self, event: DeliveryReported) -> None:
        """Write a provider's delivery report to the surveys topic (keyed by citizen)."""
        await self._send(self._topics.surveys, event.citizen_key, event.model_dump_json())

    async def recheck(self, surveys: dict[str, OpenSurvey], now: datetime) -> None:
        """Judge again every survey whose vote is written but not yet confirmed."""
        for survey_id, votes in list(self._votes.items()):
            survey = surveys.get(survey_id)
            if survey is None:
                del self._votes[survey_id]
                continue
            if votes.written is not None and not votes.written[1]:
                await self._judge(survey, votes, now)

    async def _add(self, survey: OpenSurvey, interaction: Interaction, now: datetime) -> None:
        votes = self._votes.setdefault(survey.survey_id, _Votes())
        if len(votes.interactions) >= MAX_INTERACTIONS:
            return
        votes.interactions.append(interaction)
        await self._judge(survey, votes, now)

    async def _judge(self, survey: OpenSurvey, votes: _Votes, now: datetime) -> None:
        assessment = self._assess(survey, votes, now)
        if assessment.vote is None or assessment.vote.score is None:
            return
        state = (assessment.vote.score, assessment.verdict is Verdict.CONFIRMED)
        if state == votes.written:
            return
        event = RatingReceived(
            answer_id=_new_answer_id(),
            survey_id=survey.survey_id,
            score=state[0],
            via=AnswerVia.LINK,
            received_at=assessment.vote.at,
            confirmed=state[1],
        )
        await self._send(self._topics.responses, survey.survey_id, event.model_dump_json())
        votes.written = state

    @staticmethod
    def _assess(survey: OpenSurvey, votes: _Votes, now: datetime) -> Assessment:
        rules = SMS_RULES if survey.channel is SurveyChannel.SMS else EMAIL_RULES
        return assess(
            votes.interactions,
            delivered_at=survey.sent_at or votes.interactions[0].at,
            message_links=message_links(survey),
            now=now,
            rules=rules,
        )

    async def _send(self, topic: str, key: str, value: str) -> None:
        delivery = await self._producer.send(
            topic, value=value.encode(), key=key.encode(), headers=list(_JSON)
        )
        await delivery
