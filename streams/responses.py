"""Responses wiring: the answers join on the Kafka runtime, and its two forwarders.

The answers (responses topic, keyed by survey id) and the survey's facts
(surveys topic, keyed by citizen key) must meet where one survey's state
lives:

1. the join's part of the surveys topic's one reader (``surveys-reader``,
   see :mod:`streams.shared`), :class:`~streams.stages.responses.ForwardSurveys`,
   forwards SurveyScheduled and SurveySent to the internal
   ``<app>-answers-by-survey`` topic, keyed by survey id;
2. its part of the responses topic's one reader (``responses-reader``),
   :class:`~streams.stages.responses.ForwardAnswers`, forwards RatingReceived
   to the same internal topic, and sets aside a RatingReceived it cannot read;
3. ``responses-join`` (:class:`~streams.stages.responses.JoinAnswers`, a
   pure stage: the rules are in :mod:`engine.ratings`) reads it on the
   runtime (:func:`streams.runtime.faust_agent.run_stage`), keeps one
   :class:`engine.ratings.SurveyAnswers` per survey in the ``survey-answers``
   table and publishes a Rating (keyed by touchpoint id) for each confirmed
   answer within the survey's life, a new revision when the score changes.
   It goes to the partition in which the metrics stage counts its
   touchpoint (:func:`streams.partitioning.touchpoint_partition`) while the
   ratings topic has the worker's partition count, so that stage counts it
   where it lands.

Records that cannot be read go to the dead-letter topic (stage
``responses``). Idempotence: the state remembers answer ids and the score
counted, and it is stored only once the batch's Ratings are acknowledged
(the runtime's checkpoint order, :mod:`streams.runtime.checkpoint`), so a
replay publishes nothing new; a crash between publishing and storing repeats
a Rating with the same ``rating_id`` and ``revision``, which the metrics
recognise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust

from connectors import telemetry
from schemas.responses import Rating
from streams import shared
from streams.partitioning import copartitioned, touchpoint_partition
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.faust_agent import run_stage
from streams.stages.responses import (
    BY_SURVEY,
    DEFAULT_TOUCHPOINT_CHANNEL,
    RATINGS,
    ForwardAnswers,
    ForwardSurveys,
    JoinAnswers,
    Refused,
    decode_joined,
    touchpoint_facts,
)
from streams.stores import table_store_options

if TYPE_CHECKING:
    from schemas.config import Settings
    from schemas.topics import TopicNames

__all__ = [
    "ANSWERS_TABLE",
    "DEFAULT_TOUCHPOINT_CHANNEL",
    "JOIN_AGENT",
    "decode_joined",
    "register",
    "touchpoint_facts",
]

log = logging.getLogger(__name__)

JOIN_AGENT = JoinAnswers.name
ANSWERS_TABLE = "survey-answers"


def _observe(observation: Any) -> None:
    """Count each Rating published; say at debug level why an answer was not counted."""
    if isinstance(observation, Rating):
        telemetry.count_event(telemetry.Stage.RESPONSES, telemetry.Outcome.OK)
    elif isinstance(observation, Refused):
        log.debug(
            "answer for survey %s not counted: %s",
            observation.survey_id,
            observation.refusal.value,
        )


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:
    """Add the answers join, its forwarders and the survey-answers table to the app."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    by_survey = app.topic(
        f"{app.conf.id}-answers-by-survey",
        internal=True,
        partitions=settings.streams.partitions,
        **raw,
    )
    table = app.Table(
        ANSWERS_TABLE,
        default=None,
        partitions=settings.streams.partitions,
        schema=faust.Schema(key_type=str, value_type=str),
        options=table_store_options(),
    )
    partitions = settings.streams.partitions

    def place(touchpoint_id: str) -> int | None:
        # Where the metrics stage counts the touchpoint, if the topics allow: the
        # consumer's live metadata says, so this stays out of the pure stage.
        if copartitioned(app, names.ratings, partitions):
            return touchpoint_partition(touchpoint_id, partitions)
        return None

    topics = {RATINGS: names.ratings, DEADLETTER: names.deadletter}
    run_stage(
        app,
        JoinAnswers(settings, place),
        by_survey,
        topics=topics,
        table=table,
        observe=_observe,
    )

    forwards = {BY_SURVEY: by_survey.get_topic_name()}
    for role, topic, part in (
        ("surveys", names.surveys, ForwardSurveys()),
        ("responses", names.responses, ForwardAnswers()),
    ):
        shared.forward(app, role, topic, part, topics=forwards, deadletter=names.deadletter)
