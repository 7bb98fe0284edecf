"""The life of one survey, as events on the surveys topic (keyed by citizen key).

Every contact ends in exactly one decision (SurveyScheduled or SurveySkipped),
and every scheduled survey ends as sent, failed, skipped (superseded) or
expired. The ``type`` field tells the events apart on the one topic.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

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


class SkipReason(StrEnum):
    """Why a contact is not surveyed. Each maps to one configurable policy rule."""

    DUPLICATE = "duplicate"  # the same contact id was decided before
    OPTED_OUT = "opted-out"
    NO_CONSENT = "no-consent"
    NO_CHANNEL = "no-channel"  # no mobile number or address with consent
    NON_DISCLOSURE = "non-disclosure"  # turvakielto
    UNDER_AGE = "under-age"
    SENSITIVE_TOUCHPOINT = "sensitive-touchpoint"
    FREQUENCY_CAP = "frequency-cap"
    EPISODE = "episode"  # a follow-up of a contact surveyed recently
    NOT_SAMPLED = "not-sampled"
    TOO_OLD = "too-old"  # the event arrived too late after the contact ended
    SUPERSEDED = "superseded"  # a newer contact of the same citizen took its place


class SurveyEvent(Event):
    """Fields every survey lifecycle event carries."""

    survey_id: Identifier
    citizen_key: CitizenKey
    contact_id: Identifier
    touchpoint_id: Identifier
    occurred_at: Timestamp
    contact_source: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")] | None = (
        Field(
            default=None,
            description="The CloudEvents source of the contact event: a contact id is unique "
            "only within its source. Absent in records written before it was carried.",
        )
    )


class SurveyScheduled(SurveyEvent):
    """The policy decided to ask; the survey waits for its send time."""

    type: Literal["SurveyScheduled"] = "SurveyScheduled"
    channel: SurveyChannel
    language: Language
    scale: Scale
    contact_ended_at: Timestamp
    send_at: Timestamp
    reminder_at: Timestamp | None = None
    expires_at: Timestamp
    service: ShortText | None = Field(
        default=None,
        description="The service of the contact's touchpoint; absent in records written "
        "before it was carried.",
    )
    touchpoint_channel: TouchpointChannel | None = Field(
        default=None,
        description="How the citizen met the touchpoint; absent in records written before "
        "it was carried.",
    )
    team: ShortText | None = Field(
        default=None,
        description="The contact's team (contact.context.team), for the breakdowns; absent "
        "when the contact named none or in records written before it was carried.",
    )
    case_type: ShortText | None = Field(
        default=None,
        description="The contact's case type (contact.context.case_type), for the breakdowns.",
    )
    queue_wait_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_QUEUE_WAIT_SECONDS,
        description="How long the citizen queued (contact.context.queue_wait_seconds).",
    )


class SurveySkipped(SurveyEvent):
    """The policy decided not to ask, or a scheduled survey was called off."""

    type: Literal["SurveySkipped"] = "SurveySkipped"
    reason: SkipReason
    detail: Annotated[str, Field(max_length=200)] | None = None


class SurveyDispatching(SurveyEvent):
    """Intent to send, written durably before the provider is called.

    After a crash a survey in this state is never sent again blindly: the
    provider call may or may not have happened, and a second text message is
    worse than a missing one.
    """

    type: Literal["SurveyDispatching"] = "SurveyDispatching"
    channel: SurveyChannel
    attempt: int = Field(ge=1)


class SurveySent(SurveyEvent):
    """The provider accepted the message."""

    type: Literal["SurveySent"] = "SurveySent"
    channel: SurveyChannel
    provider_message_id: Annotated[str, Field(max_length=256)] | None = None
    segments: int | None = Field(default=None, ge=1, description="SMS segments billed.")


class SurveyFailed(SurveyEvent):
    """The survey could not be sent, permanently."""

    type: Literal["SurveyFailed"] = "SurveyFailed"
    channel: SurveyChannel
    reason: Annotated[str, Field(max_length=200)]
    provider_error_code: Annotated[str, Field(max_length=32)] | None = None
    attempts: int = Field(ge=0)


class SurveyExpired(SurveyEvent):
    """The survey's life ended: unsent (a provider outage outlasted it) or unanswered."""

    type: Literal["SurveyExpired"] = "SurveyExpired"
    was_sent: bool


class ReminderSent(SurveyEvent):
    """The one reminder a touchpoint may configure was sent."""

    type: Literal["ReminderSent"] = "ReminderSent"
    channel: SurveyChannel


class DeliveryStatus(StrEnum):
    """Final delivery states that providers report back."""

    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


class DeliveryReported(SurveyEvent):
    """A provider's delivery callback for a sent survey."""

    type: Literal["DeliveryReported"] = "DeliveryReported"
    channel: SurveyChannel
    status: DeliveryStatus
    provider_error_code: Annotated[str, Field(max_length=32)] | None = None


#: Anything on the surveys topic.
SurveyLifecycleEvent = Annotated[
    SurveyScheduled
    | SurveySkipped
    | SurveyDispatching
    | SurveySent
    | SurveyFailed
    | SurveyExpired
    | ReminderSent
    | DeliveryReported,
    Field(discriminator="type"),
]
