"""Raw answers from citizens (responses topic, keyed by survey id), and Rating.

Answers arrive by SMS reply or from a one-tap page. They are joined with their
survey and become Rating events on the ratings topic, keyed by touchpoint so
that one partition holds everything one touchpoint's metrics need.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from schemas.base import (
    CitizenKey,
    Event,
    Identifier,
    Language,
    Scale,
    ShortText,
    SurveyChannel,
    Timestamp,
)
from schemas.contacts import MAX_QUEUE_WAIT_SECONDS, TouchpointChannel

#: Rounding slack when checking a normalised score against its raw score.
_TOLERANCE = 1e-9


class AnswerVia(StrEnum):
    """How the answer came in."""

    SMS_REPLY = "sms-reply"
    LINK = "link"


class RatingReceived(Event):
    """A citizen's score for a survey, possibly replacing an earlier one."""

    type: Literal["RatingReceived"] = "RatingReceived"
    answer_id: Identifier = Field(
        description="Unique per answer; de-duplicates retries. For an SMS reply it is "
        "derived from Twilio's MessageSid, so a replayed message is the same answer."
    )
    survey_id: Identifier
    score: int
    via: AnswerVia
    received_at: Timestamp
    confirmed: bool = Field(
        default=True,
        description="False while a link click may still be an email security scanner's.",
    )


class OptOut(Event):
    """The citizen asked not to be asked again."""

    type: Literal["OptOut"] = "OptOut"
    answer_id: Identifier
    survey_id: Identifier
    citizen_key: CitizenKey
    via: AnswerVia
    received_at: Timestamp


class OptIn(Event):
    """The citizen asked to be asked again after opting out (ALOITA, STARTA, START)."""

    type: Literal["OptIn"] = "OptIn"
    answer_id: Identifier
    survey_id: Identifier
    citizen_key: CitizenKey
    via: AnswerVia
    received_at: Timestamp


class CommentReceived(Event):
    """A free-text comment, redacted of contact details before it is written."""

    type: Literal["CommentReceived"] = "CommentReceived"
    answer_id: Identifier
    survey_id: Identifier
    text: Annotated[str, Field(min_length=1, max_length=1000)]
    received_at: Timestamp


#: The agreement scale of follow-up statements: 1 = strongly disagree, 5 = strongly agree.
STATEMENT_LOW = 1
STATEMENT_HIGH = 5
#: Statement indices run 0..6: a touchpoint configures at most seven statements.
MAX_STATEMENT_INDEX = 6


class StatementAnswered(Event):
    """A citizen's agreement with one follow-up statement, shown after the one-tap answer.

    ``statement_index`` is the statement's place in the touchpoint's
    ``follow_up_statements`` when the survey was answered. A later answer to
    the same statement of the same survey replaces an earlier one.
    """

    type: Literal["StatementAnswered"] = "StatementAnswered"
    answer_id: Identifier = Field(description="Unique per answer; de-duplicates retries.")
    survey_id: Identifier
    statement_index: int = Field(ge=0, le=MAX_STATEMENT_INDEX)
    score: int = Field(
        ge=STATEMENT_LOW,
        le=STATEMENT_HIGH,
        description="Agreement: 1 = strongly disagree, 5 = strongly agree.",
    )
    received_at: Timestamp


#: Anything on the responses topic.
ResponseEvent = Annotated[
    RatingReceived | OptOut | OptIn | CommentReceived | StatementAnswered,
    Field(discriminator="type"),
]


class Rating(Event):
    """A rating joined with its survey: the input of the metrics.

    A later revision for the same survey replaces the earlier one, so a
    changed answer is counted once.
    """

    type: Literal["Rating"] = "Rating"
    rating_id: Identifier
    survey_id: Identifier
    revision: int = Field(default=1, ge=1)
    touchpoint_id: Identifier
    service: Annotated[str, Field(min_length=1, max_length=200)]
    touchpoint_channel: TouchpointChannel
    survey_channel: SurveyChannel
    language: Language
    scale: Scale
    score: int
    normalised: float = Field(ge=0.0, le=1.0, description="Score mapped onto 0..1.")
    answered_after_seconds: float = Field(ge=0.0)
    answered_at: Timestamp
    team: ShortText | None = Field(
        default=None, description="The contact's team, as the front office named it."
    )
    case_type: ShortText | None = Field(
        default=None, description="The contact's case type, as the front office named it."
    )
    queue_wait_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_QUEUE_WAIT_SECONDS,
        description="How long the citizen queued before the contact.",
    )

    @model_validator(mode="after")
    def _score_on_scale(self) -> Self:
        if not self.scale.contains(self.score):
            raise ValueError(
                f"score {self.score} is outside the {self.scale.value} scale "
                f"({self.scale.low}..{self.scale.high})"
            )
        if abs(self.scale.normalise(self.score) - self.normalised) > _TOLERANCE:
            raise ValueError("normalised does not match score on its scale")
        return self
