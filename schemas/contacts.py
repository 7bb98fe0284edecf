"""ContactCompleted: what a front-office system says when a contact ends.

The event travels in a CloudEvents 1.0 envelope (structured JSON mode) so that
integrators can produce it with any CloudEvents SDK, over Kafka or HTTP.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal, Self

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import Event, Identifier, Language, PastTimestamp, ShortText

CONTACT_COMPLETED_TYPE = "fi.palaute.contact.completed.v1"


class TouchpointChannel(StrEnum):
    """How the citizen met the service at this touchpoint."""

    PHONE = "phone"
    FACE_TO_FACE = "face-to-face"
    DIGITAL = "digital"
    CHAT = "chat"
    EMAIL = "email"
    VIDEO = "video"
    HOME_VISIT = "home-visit"
    LETTER = "letter"


class ServicePathStage(StrEnum):
    """Where on the citizen's service path the touchpoint lies."""

    INFORMATION = "information"  # finding out what to do
    BOOKING = "booking"  # making an appointment or a request
    WAITING = "waiting"  # queueing, waiting for a decision
    SERVICE = "service"  # the service encounter itself
    DECISION = "decision"  # receiving a decision or result
    FOLLOW_UP = "follow-up"  # after-care, next steps


@lru_cache(maxsize=65536)
def _check_phone(value: str) -> str:
    # Cached by value: parsing costs ~50 µs and the same citizens recur.
    if not value.startswith("+"):
        raise PydanticCustomError(
            "invalid_phone", "phone number must be in E.164 form: + and the country code"
        )
    if any(char.isalpha() for char in value):
        # phonenumbers would read letters as a keypad's (vanity numbers); E.164 has none.
        raise PydanticCustomError("invalid_phone", "phone number contains letters")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise PydanticCustomError("invalid_phone", "phone number is not a number") from None
    if not phonenumbers.is_valid_number(number):
        raise PydanticCustomError("invalid_phone", "phone number is not valid for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65536)
def _check_email(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        # The library's own message may quote the address; ours does not.
        raise PydanticCustomError("invalid_email", "email address is not valid") from None
    return result.normalized


@lru_cache(maxsize=65536)
def is_mobile_number(e164: str) -> bool:
    """Tell whether a validated number can receive SMS (mobile or ambiguous)."""
    number_type = phonenumbers.number_type(phonenumbers.parse(e164, None))
    return number_type in {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }


#: A valid phone number, normalised to E.164.
PhoneNumber = Annotated[str, Field(max_length=20), AfterValidator(_check_phone)]

#: A syntactically valid email address, normalised (no DNS look-up).
EmailAddress = Annotated[str, Field(max_length=254), AfterValidator(_check_email)]


class Consent(Event):
    """What the citizen has agreed to be contacted by, and whether they opted out."""

    sms: bool = Field(default=False, description="Consent to feedback requests by SMS.")
    email: bool = Field(default=False, description="Consent to feedback requests by email.")
    opted_out: bool = Field(
        default=False,
        description="The citizen has asked never to receive feedback requests.",
    )


class Citizen(Event):
    """The person the contact was with, as much as the survey needs and no more."""

    id: Identifier | None = Field(
        default=None,
        description="The source system's own customer reference; pseudonymised on intake. "
        "Never a personal identity code.",
    )
    phone: PhoneNumber | None = Field(default=None, description="Mobile number in E.164 form.")
    email: EmailAddress | None = None
    language: Language = Field(default=Language.FI, description="Preferred language.")
    age: int | None = Field(default=None, ge=0, le=130)
    birth_year: int | None = Field(default=None, ge=1890, le=2100)
    non_disclosure: bool = Field(
        default=False,
        description="Non-disclosure for safety (turvakielto): such a citizen is never contacted.",
    )
    consent: Consent = Field(default_factory=Consent)

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if self.phone is None and self.email is None:
            raise PydanticCustomError(
                "unreachable_citizen", "citizen needs a phone number or an email address"
            )
        return self


class Touchpoint(Event):
    """A point on the service path where the citizen met the organisation."""

    id: Identifier
    name: ShortText
    channel: TouchpointChannel
    service: ShortText = Field(description="The service the touchpoint belongs to.")
    location: ShortText | None = Field(
        default=None, description="Town or service point; none for digital services."
    )
    stage: ServicePathStage = ServicePathStage.SERVICE


#: The longest queue a contact may report: a week; longer is a clock or unit error.
MAX_QUEUE_WAIT_SECONDS = 7 * 24 * 3600


class ContactContext(Event):
    """Operational context the breakdowns show; none of it identifies the citizen."""

    queue_wait_seconds: int | None = Field(default=None, ge=0, le=MAX_QUEUE_WAIT_SECONDS)
    team: ShortText | None = None
    case_type: ShortText | None = None


class Contact(Event):
    """The contact itself: its id in the source system and when it ended."""

    id: Identifier = Field(description="Unique per contact; repeated events with it are one.")
    ended_at: PastTimestamp
    context: ContactContext = Field(default_factory=ContactContext)


class ContactCompletedData(Event):
    """The payload of a ContactCompleted event."""

    contact: Contact
    citizen: Citizen
    touchpoint: Touchpoint


class ContactCompleted(Event):
    """A contact with a citizen ended (CloudEvents 1.0, structured JSON)."""

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="CloudEvents id; unique per source. Re-sending an event keeps its id."
    )
    source: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")] = Field(
        description="URI-reference of the front-office system, e.g. /crm/helsinki-contact-centre."
    )
    type: Literal["fi.palaute.contact.completed.v1"]
    time: PastTimestamp
    datacontenttype: Literal["application/json"] = "application/json"
    subject: Annotated[str, Field(max_length=256)] | None = None
    dataschema: Annotated[str, Field(max_length=512)] | None = None
    data: ContactCompletedData
