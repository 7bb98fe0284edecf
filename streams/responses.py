"""Responses stage: join answers with their survey and publish Ratings by touchpoint.

An agent and two handlers, because the answers (responses topic, keyed by survey id) and
the survey's facts (surveys topic, keyed by citizen key) must meet where one
survey's state lives:

1. a handler on the surveys topic's one reader (``surveys-reader``, see
   :mod:`streams.shared`) forwards SurveyScheduled and SurveySent to an
   internal topic keyed by survey id;
2. a handler on the responses topic's one reader (``responses-reader``)
   forwards RatingReceived to the same internal topic;
3. ``responses-join`` reads it, keeps one :class:`engine.ratings.SurveyAnswers`
   per survey in the ``survey-answers`` table and publishes what
   :mod:`engine.ratings` decides: a Rating (keyed by touchpoint id) for each
   confirmed answer within the survey's life, a new revision when the score
   changes. It goes to the partition in which the metrics stage counts its
   touchpoint (:func:`streams.partitioning.touchpoint_partition`), so that
   stage counts it where it lands.

Records that cannot be read go to the dead-letter topic. Idempotence: the
state remembers answer ids and the score counted, so a replay publishes
nothing new; a crash between publishing and storing can repeat a Rating with
the same ``rating_id`` and ``revision``, which the metrics recognise.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust

from connectors import telemetry
from engine.ratings import SurveyAnswers, TouchpointFacts, on_answer, on_scheduled, on_sent
from schemas.contacts import TouchpointChannel
from schemas.decoding import FieldError, Rejected, decode_event
from schemas.responses import RatingReceived
from schemas.surveys import SurveyScheduled, SurveySent
from streams import shared
from streams.acks import acknowledged
from streams.containment import Containment
from streams.partitioning import copartitioned, touchpoint_partition
from streams.producer import DirectProducer
from streams.stores import table_store_options

if TYPE_CHECKING:
    from faust.types import EventT

    from engine.ratings import JoinResult
    from schemas.config import Settings
    from schemas.topics import TopicNames

log = logging.getLogger(__name__)

JOIN_AGENT = "responses-join"
ANSWERS_TABLE = "survey-answers"
#: The catalogue has no channel for a touchpoint; ratings of surveys scheduled
#: before SurveyScheduled carried the contact's channel say ``digital``.
DEFAULT_TOUCHPOINT_CHANNEL = TouchpointChannel.DIGITAL

_JOINED = (SurveyScheduled, SurveySent)


def touchpoint_facts(settings: Settings, touchpoint_id: str) -> TouchpointFacts:
    """Give the fallback for old surveys: the catalogue name (else the id) and ``digital``."""
    config, _known = settings.touchpoint(touchpoint_id)
    return TouchpointFacts(service=config.name or touchpoint_id, channel=DEFAULT_TOUCHPOINT_CHANNEL)


def decode_joined(value: bytes) -> SurveyScheduled | SurveySent | RatingReceived | Rejected:
    """Read a record of the internal topic (or of either input) as the join needs it."""
    event = decode_event(value)
    if isinstance(event, Rejected | SurveyScheduled | SurveySent | RatingReceived):
        return event
    return Rejected((FieldError("$.type", "not_joined", "not an event the join reads"),))


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:  # noqa: C901 - the agent and its handlers share the wiring and read best together
    """Add the responses agents and the survey-answers table to the app."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    ratings = app.topic(names.ratings, **raw)
    by_survey = app.topic(
        f"{app.conf.id}-answers-by-survey",
        internal=True,
        partitions=settings.streams.partitions,
        **raw,
    )
    # The forwarders hand their records straight to the producer (see DirectProducer).
    producer = DirectProducer(app)
    table = app.Table(
        ANSWERS_TABLE,
        default=None,
        partitions=settings.streams.partitions,
        schema=faust.Schema(key_type=str, value_type=str),
        options=table_store_options(),
    )

    guard = Containment(producer, names.deadletter, telemetry.Stage.RESPONSES)

    async def set_aside(event: Any, rejected: Rejected, now: datetime) -> None:
        await guard.reject(event.message, rejected.code, rejected.reason, now)

    async def forward_survey(event: EventT[bytes]) -> None:
        value = event.message.value or b""
        if b'"SurveyScheduled"' in value or b'"SurveySent"' in value:
            decoded = decode_joined(value)
            if isinstance(decoded, _JOINED):
                await producer.send(by_survey, decoded.survey_id.encode(), value)

    shared.read(app, "surveys", names.surveys, forward_survey, guard)

    async def forward_answer(event: EventT[bytes]) -> None:
        value = event.message.value or b""
        if b'"RatingReceived"' in value:
            decoded = decode_joined(value)
            if isinstance(decoded, RatingReceived):
                await producer.send(by_survey, decoded.survey_id.encode(), value)
            elif isinstance(decoded, Rejected):
                await set_aside(event, decoded, datetime.now(UTC))

    shared.read(app, "responses", names.responses, forward_answer, guard)

    @app.agent(by_survey, name=JOIN_AGENT)
    async def join(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guard.run(event.message, join_one, event)
            telemetry.agent_progress(JOIN_AGENT, datetime.now(UTC))

    async def join_one(event: EventT[bytes]) -> None:
        """Fold one answer or survey event into its survey's answers; publish what it rates."""
        now = datetime.now(UTC)
        decoded = decode_joined(event.message.value or b"")
        if isinstance(decoded, Rejected):
            await set_aside(event, decoded, now)
            return
        key = decoded.survey_id
        stored = table.get(key)
        before = SurveyAnswers() if stored is None else SurveyAnswers.from_json(stored)
        result = _fold(before, decoded, settings)
        delivered = []
        # Where the metrics stage counts the touchpoint, if the topics allow.
        aligned = copartitioned(app, names.ratings, settings.streams.partitions)
        for rating in result.ratings:
            delivered.append(
                await ratings.send(
                    key=rating.touchpoint_id.encode(),
                    value=rating.model_dump_json().encode(),
                    partition=touchpoint_partition(
                        rating.touchpoint_id, settings.streams.partitions
                    )
                    if aligned
                    else None,
                )
            )
            telemetry.count_event(telemetry.Stage.RESPONSES, telemetry.Outcome.OK)
        for refusal in result.refusals:
            log.debug("answer for survey %s not counted: %s", key, refusal.value)
        # The state reaches the local store at once, its changelog later: kept
        # back until the ratings are on the broker, so a worker killed in between
        # folds the replayed answer again instead of taking it as counted.
        outcomes = await acknowledged(app, delivered)
        failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failed is not None:
            # Not stored: the containment retries a broker's refusal, so the
            # rating is not dropped with its offset committed.
            raise failed
        if result.state != before:
            table[key] = result.state.to_json()


def _fold(
    state: SurveyAnswers,
    event: SurveyScheduled | SurveySent | RatingReceived,
    settings: Settings,
) -> JoinResult:
    from engine.ratings import JoinResult  # noqa: PLC0415 - the runtime name of a type import

    if isinstance(event, SurveyScheduled):
        return on_scheduled(state, event, touchpoint_facts(settings, event.touchpoint_id))
    if isinstance(event, SurveySent):
        return JoinResult(on_sent(state, event))
    touchpoint = (
        None if state.survey is None else touchpoint_facts(settings, state.survey.touchpoint_id)
    )
    return on_answer(state, event, touchpoint)
