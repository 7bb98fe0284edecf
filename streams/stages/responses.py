"""The answers join as a pure stage: fold each survey's facts and answers, ask for its Ratings.

The answers (responses topic, keyed by survey id) and the survey's facts
(surveys topic, keyed by citizen key) meet on one internal topic keyed by
survey id, whose partitions are those of the ``survey-answers`` state; the
forwarders that put them there (:mod:`streams.responses`) decide what to
forward with :func:`survey_to_forward` and :func:`answer_to_forward`.

:class:`JoinAnswers` reads that topic, keeps one
:class:`engine.ratings.SurveyAnswers` per survey and asks for what
:mod:`engine.ratings` decides to be published: a Rating (keyed by touchpoint
id) for each confirmed answer within the survey's life, a new revision when
the score changes. A record that cannot be read is rejected with the
decoder's reason, and the runtime makes it a dead letter.

**Where a Rating goes.** The metrics stage counts a touchpoint in the
partition :func:`streams.partitioning.touchpoint_partition` gives, and a
Rating written to that partition of the ratings topic is counted where it
lands. Whether that partition exists is a fact of the running worker (the
ratings topic may have been created with another partition count; its
consumer's metadata says), not of the record, so the stage does not decide
it: it is given a ``place`` function at construction, the touchpoint id to
its partition or None (the producer's choice). The Kafka wiring gives one
that asks the consumer's metadata; the memory runtime a plain function. The
stage stays a function of its inputs, and this module needs no Kafka client
(the partition hash is aiokafka's murmur2).

No I/O here: the runtime produces, awaits the acknowledgements and only then
stores the state (:mod:`streams.runtime.checkpoint`). A crash in between
folds the replayed answer again from the stored state and repeats the Rating
with the same ``rating_id`` and ``revision``, which the metrics recognise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.ratings import (
    JoinResult,
    SurveyAnswers,
    TouchpointFacts,
    on_answer,
    on_scheduled,
    on_sent,
)
from schemas.contacts import TouchpointChannel
from schemas.decoding import FieldError, Rejected, decode_event
from schemas.responses import RatingReceived
from schemas.surveys import SurveyScheduled, SurveySent
from streams.runtime.model import NOTHING, Output, Produce, Rejection

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from engine.ratings import Refusal
    from schemas.config import Settings
    from streams.runtime.model import Record, StateView

#: The stage label of its dead letters and counters.
LABEL = "responses"
#: Output role, which the runtime maps onto the ratings topic.
RATINGS = "ratings"
#: Output role of the forwarders: the internal topic keyed by survey id.
BY_SURVEY = "answers-by-survey"
#: The catalogue has no channel for a touchpoint; ratings of surveys scheduled
#: before SurveyScheduled carried the contact's channel say ``digital``.
DEFAULT_TOUCHPOINT_CHANNEL = TouchpointChannel.DIGITAL

Joined = SurveyScheduled | SurveySent | RatingReceived
_JOINED = (SurveyScheduled, SurveySent)


@dataclass(frozen=True, slots=True)
class Refused:
    """An observation: an answer of this survey did not become a rating, and why."""

    survey_id: str
    refusal: Refusal


def touchpoint_facts(settings: Settings, touchpoint_id: str) -> TouchpointFacts:
    """Give the fallback for old surveys: the catalogue name (else the id) and ``digital``."""
    config, _known = settings.touchpoint(touchpoint_id)
    return TouchpointFacts(service=config.name or touchpoint_id, channel=DEFAULT_TOUCHPOINT_CHANNEL)


def decode_joined(value: bytes) -> Joined | Rejected:
    """Read a record of the internal topic (or of either input) as the join needs it."""
    event = decode_event(value)
    if isinstance(event, Rejected | SurveyScheduled | SurveySent | RatingReceived):
        return event
    return Rejected((FieldError("$.type", "not_joined", "not an event the join reads"),))


def survey_to_forward(value: bytes) -> bytes | None:
    """Give the survey id a surveys-topic record is forwarded under, or None to leave it.

    Only SurveyScheduled and SurveySent are the join's; anything else on the
    surveys topic, readable or not, belongs to other stages.
    """
    if b'"SurveyScheduled"' in value or b'"SurveySent"' in value:
        decoded = decode_joined(value)
        if isinstance(decoded, _JOINED):
            return decoded.survey_id.encode()
    return None


def answer_to_forward(value: bytes) -> bytes | Rejected | None:
    """Give the survey id an answer is forwarded under, its rejection, or None to leave it.

    A record that claims to be a RatingReceived and cannot be read is the
    join's to set aside; other records of the responses topic are others'.
    """
    if b'"RatingReceived"' not in value:
        return None
    decoded = decode_joined(value)
    if isinstance(decoded, RatingReceived):
        return decoded.survey_id.encode()
    if isinstance(decoded, Rejected):
        return decoded
    return None


def fold(state: SurveyAnswers, event: Joined, settings: Settings) -> JoinResult:
    """Fold one survey event or answer into the survey's answers, as engine.ratings decides."""
    if isinstance(event, SurveyScheduled):
        return on_scheduled(state, event, touchpoint_facts(settings, event.touchpoint_id))
    if isinstance(event, SurveySent):
        return JoinResult(on_sent(state, event))
    touchpoint = (
        None if state.survey is None else touchpoint_facts(settings, state.survey.touchpoint_id)
    )
    return on_answer(state, event, touchpoint)


def _anywhere(touchpoint_id: str) -> int | None:
    del touchpoint_id
    return None


class JoinAnswers:
    """The answers join: one SurveyAnswers per survey, a Rating per counted answer."""

    name = "responses-join"
    label = LABEL

    def __init__(self, settings: Settings, place: Callable[[str], int | None] = _anywhere) -> None:
        self._settings = settings
        self._place = place

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Fold the record into its survey's answers; ask for the Ratings it counts."""
        del now
        decoded = decode_joined(record.value or b"")
        if isinstance(decoded, Rejected):
            return Output(rejection=Rejection(decoded.code, decoded.reason))
        key = decoded.survey_id
        stored = state.get(key)
        before = SurveyAnswers() if stored is None else SurveyAnswers.from_json(stored)
        result = fold(before, decoded, self._settings)
        if result.state == before and not result.ratings and not result.refusals:
            return NOTHING
        return Output(
            produce=tuple(
                Produce(
                    RATINGS,
                    rating.touchpoint_id.encode(),
                    rating.model_dump_json().encode(),
                    self._place(rating.touchpoint_id),
                )
                for rating in result.ratings
            ),
            state={key: result.state.to_json()} if result.state != before else {},
            observations=(
                *result.ratings,
                *(Refused(key, refusal) for refusal in result.refusals),
            ),
        )


class ForwardSurveys:
    """The join's part of the surveys topic: SurveyScheduled and SurveySent, by survey id."""

    label = LABEL

    def handle(self, record: Record, now: datetime) -> Output:
        """Forward the record under its survey id if it is the join's; else nothing."""
        del now
        value = record.value or b""
        key = survey_to_forward(value)
        if key is None:
            return NOTHING
        return Output(produce=(Produce(BY_SURVEY, key, value),))


class ForwardAnswers:
    """The join's part of the responses topic: every RatingReceived, by survey id."""

    label = LABEL

    def handle(self, record: Record, now: datetime) -> Output:
        """Forward an answer under its survey id; reject one that claims to be and is not."""
        del now
        value = record.value or b""
        forward = answer_to_forward(value)
        if isinstance(forward, Rejected):
            return Output(rejection=Rejection(forward.code, forward.reason))
        if forward is None:
            return NOTHING
        return Output(produce=(Produce(BY_SURVEY, forward, value),))
