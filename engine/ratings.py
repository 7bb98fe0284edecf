"""Joining answers with their survey: which answers become Ratings, and with what revision.

One :class:`SurveyAnswers` per survey folds the survey's facts (scheduled,
sent) and its answers (RatingReceived) in any order:

* only **confirmed** answers count; a provisional link vote waits for the web
  service to write it again, confirmed;
* an answer received at or after the survey's expiry is **refused**;
* an answer whose survey is not known yet is kept (a few per survey) until the
  survey's facts arrive: the two topics are read independently;
* the first counted answer is revision 1; a **changed** score is a new
  revision of the same rating (``rating_id`` is the survey id), which replaces
  the earlier one in the metrics, so a survey counts once; the same score
  again, or the same answer id again (a retry), changes nothing.

A Rating's service and touchpoint channel are the contact's, carried by
SurveyScheduled, and so are its team, case type and queue wait (for the
breakdowns; absent when the contact named none); surveys scheduled before
SurveyScheduled carried them fall back to the :class:`TouchpointFacts` the
caller gives from the catalogue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from engine.lifecycle import stored_instant
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating, RatingReceived

if TYPE_CHECKING:
    from schemas.surveys import SurveyScheduled, SurveySent

#: Answers kept while their survey is unknown; more is a flood, not a citizen.
MAX_PENDING = 10
#: Answer ids remembered per survey to recognise retries.
MAX_SEEN = 20


class Refusal(StrEnum):
    """Why an answer did not become a rating (safe to count)."""

    UNCONFIRMED = "unconfirmed"
    EXPIRED = "expired"
    OFF_SCALE = "off-scale"
    REPEAT = "repeat"
    UNCHANGED = "unchanged"
    WAITING = "waiting-for-survey"
    TOO_MANY_WAITING = "too-many-waiting"


@dataclass(frozen=True, slots=True)
class SurveyFacts:
    """What the join needs of a survey."""

    touchpoint_id: str
    channel: SurveyChannel
    language: Language
    scale: Scale
    send_at: datetime
    expires_at: datetime
    sent_at: datetime | None = None
    service: str | None = None  # the contact's; None in surveys scheduled before it was carried
    touchpoint_channel: TouchpointChannel | None = None
    #: The contact's context for the breakdowns; None when not given or not yet carried.
    team: str | None = None
    case_type: str | None = None
    queue_wait_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class TouchpointFacts:
    """What the join needs of a touchpoint, from the catalogue: the fallback for old surveys."""

    service: str
    channel: TouchpointChannel


@dataclass(frozen=True, slots=True)
class SurveyAnswers:
    """The join's state for one survey."""

    survey: SurveyFacts | None = None
    revision: int = 0
    score: int | None = None
    seen: tuple[str, ...] = ()
    pending: tuple[str, ...] = field(default=())  # RatingReceived JSON
    #: When the survey was sent, if SurveySent came before its facts (SurveyScheduled):
    #: kept so that the order of the two, or a replay of both, gives the same ratings.
    sent_early: datetime | None = None

    def to_json(self) -> str:
        """Serialise for a table that stores strings."""
        survey = None
        if self.survey is not None:
            facts = self.survey
            survey = {
                "touchpoint_id": facts.touchpoint_id,
                "channel": facts.channel.value,
                "language": facts.language.value,
                "scale": facts.scale.value,
                "send_at": facts.send_at.isoformat(),
                "expires_at": facts.expires_at.isoformat(),
                "sent_at": None if facts.sent_at is None else facts.sent_at.isoformat(),
                "service": facts.service,
                "touchpoint_channel": (
                    None if facts.touchpoint_channel is None else facts.touchpoint_channel.value
                ),
                "team": facts.team,
                "case_type": facts.case_type,
                "queue_wait_seconds": facts.queue_wait_seconds,
            }
        return json.dumps(
            {
                "survey": survey,
                "revision": self.revision,
                "score": self.score,
                "seen": list(self.seen),
                "pending": list(self.pending),
                "sent_early": None if self.sent_early is None else self.sent_early.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SurveyAnswers:
        """Read what :meth:`to_json` wrote."""
        data = json.loads(text)
        raw = data["survey"]
        survey = None
        if raw is not None:
            survey = SurveyFacts(
                touchpoint_id=raw["touchpoint_id"],
                channel=SurveyChannel(raw["channel"]),
                language=Language(raw["language"]),
                scale=Scale(raw["scale"]),
                send_at=datetime.fromisoformat(raw["send_at"]),
                expires_at=datetime.fromisoformat(raw["expires_at"]),
                sent_at=None if raw["sent_at"] is None else datetime.fromisoformat(raw["sent_at"]),
                service=raw.get("service"),
                touchpoint_channel=(
                    None
                    if raw.get("touchpoint_channel") is None
                    else TouchpointChannel(raw["touchpoint_channel"])
                ),
                team=raw.get("team"),
                case_type=raw.get("case_type"),
                queue_wait_seconds=raw.get("queue_wait_seconds"),
            )
        return cls(
            survey=survey,
            revision=int(data["revision"]),
            score=data["score"],
            seen=tuple(data["seen"]),
            pending=tuple(data["pending"]),
            sent_early=stored_instant(data.get("sent_early")),
        )


@dataclass(frozen=True, slots=True)
class JoinResult:
    """The new state, the ratings to publish, and why any answer was refused."""

    state: SurveyAnswers
    ratings: tuple[Rating, ...] = ()
    refusals: tuple[Refusal, ...] = ()


def on_scheduled(
    state: SurveyAnswers, event: SurveyScheduled, touchpoint: TouchpointFacts
) -> JoinResult:
    """Learn a survey's facts, and count the answers that waited for them."""
    facts = SurveyFacts(
        touchpoint_id=event.touchpoint_id,
        channel=event.channel,
        language=event.language,
        scale=event.scale,
        send_at=event.send_at,
        expires_at=event.expires_at,
        sent_at=state.sent_early if state.survey is None else state.survey.sent_at,
        service=event.service,
        touchpoint_channel=event.touchpoint_channel,
        team=event.team,
        case_type=event.case_type,
        queue_wait_seconds=event.queue_wait_seconds,
    )
    return _drain(replace(state, survey=facts, sent_early=None), touchpoint)


def on_sent(state: SurveyAnswers, event: SurveySent) -> SurveyAnswers:
    """Learn when the survey was sent: answer times are measured from it.

    Before the survey's facts are known, the time waits for them: the two
    arrive in either order (a replay after a crash brings SurveySent again
    after SurveyScheduled), and either order must give the same ratings.
    """
    if state.survey is None:
        return replace(state, sent_early=event.occurred_at)
    return replace(state, survey=replace(state.survey, sent_at=event.occurred_at))


def on_answer(  # noqa: PLR0911 - one early answer per refusal reads as the rule list above
    state: SurveyAnswers, answer: RatingReceived, touchpoint: TouchpointFacts | None
) -> JoinResult:
    """Count a confirmed answer within the survey's life as a rating or a new revision."""
    if not answer.confirmed:
        return JoinResult(state, refusals=(Refusal.UNCONFIRMED,))
    if answer.answer_id in state.seen:
        return JoinResult(state, refusals=(Refusal.REPEAT,))
    if state.survey is None or touchpoint is None:
        if len(state.pending) >= MAX_PENDING:
            return JoinResult(state, refusals=(Refusal.TOO_MANY_WAITING,))
        pending = (*state.pending, answer.model_dump_json())
        return JoinResult(replace(state, pending=pending), refusals=(Refusal.WAITING,))
    seen = (*state.seen, answer.answer_id)[-MAX_SEEN:]
    survey = state.survey
    if answer.received_at >= survey.expires_at:
        return JoinResult(replace(state, seen=seen), refusals=(Refusal.EXPIRED,))
    if not survey.scale.contains(answer.score):
        return JoinResult(replace(state, seen=seen), refusals=(Refusal.OFF_SCALE,))
    if answer.score == state.score:
        return JoinResult(replace(state, seen=seen), refusals=(Refusal.UNCHANGED,))
    revision = state.revision + 1
    started = survey.sent_at or survey.send_at
    rating = Rating(
        rating_id=answer.survey_id,
        survey_id=answer.survey_id,
        revision=revision,
        touchpoint_id=survey.touchpoint_id,
        service=survey.service or touchpoint.service,
        touchpoint_channel=survey.touchpoint_channel or touchpoint.channel,
        survey_channel=survey.channel,
        language=survey.language,
        scale=survey.scale,
        score=answer.score,
        normalised=survey.scale.normalise(answer.score),
        answered_after_seconds=max(0.0, (answer.received_at - started).total_seconds()),
        answered_at=answer.received_at,
        team=survey.team,
        case_type=survey.case_type,
        queue_wait_seconds=survey.queue_wait_seconds,
    )
    new = replace(state, revision=revision, score=answer.score, seen=seen)
    return JoinResult(new, ratings=(rating,))


def _drain(state: SurveyAnswers, touchpoint: TouchpointFacts) -> JoinResult:
    waiting = state.pending
    current = replace(state, pending=())
    ratings: list[Rating] = []
    refusals: list[Refusal] = []
    for text in waiting:
        result = on_answer(current, RatingReceived.model_validate_json(text), touchpoint)
        current = result.state
        ratings.extend(result.ratings)
        refusals.extend(result.refusals)
    return JoinResult(current, tuple(ratings), tuple(refusals))
