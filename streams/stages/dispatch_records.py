"""What the scheduler reads and writes besides survey events: ticks, echoes, outcomes, messages.

The scheduler's internal topic (``<app>-surveys-by-id``, keyed by survey id)
carries, besides the survey events, contact details and answers forwarded
to it, three kinds of its own records:

- a **tick** (:func:`tick_value`) names the run of the scheduler that wrote
  it, a token new at every assignment of partitions (:func:`tick_run`);
- an **echo** is a survey event the scheduler published, written back to
  the survey's own partition with the ``palaute-echo`` header (:func:`is_echo`);
- a **delivery outcome** (:class:`DeliveryOutcome`) is what the provider
  answered to a send, written back by the runtime after the call.

The commands the stage gives the runtime (:class:`SendSurvey`) carry the
message as composed here (:func:`compose`, a call into
:mod:`engine.outbound`), so the executor only hands it to the provider.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from connectors.sms_segments import count_segments
from engine.lifecycle import Accepted, Refused, SurveyState, Transient, Unknown
from engine.outbound import status_callback_url, survey_email, survey_sms
from schemas.base import SurveyChannel
from schemas.responses import OptOut, RatingReceived
from schemas.surveys import SurveyLifecycleEvent
from schemas.vault import ContactDetails

if TYPE_CHECKING:
    from engine.lifecycle import ProviderOutcome
    from engine.messages import EmailContent
    from engine.tokens import TokenSigner
    from schemas.config import Settings
    from schemas.surveys import SurveyEvent

#: A tick's value starts with this; the rest names the run that wrote it (:func:`tick_value`).
TICK_PREFIX = b'{"type":"SchedulerTick"'
#: A delivery outcome's value starts with this (:func:`encode_outcome`).
OUTCOME_PREFIX = b'{"type":"DeliveryOutcome"'
#: Header on the scheduler's own events written straight back to its partition.
ECHO_HEADER = "palaute-echo"
#: What the scheduler reads from the responses topic: an answered survey gets no reminder.
ANSWERS: dict[str, type[RatingReceived | OptOut]] = {
    "RatingReceived": RatingReceived,
    "OptOut": OptOut,
}
#: How an answer the scheduler reads shows in a record's bytes, tested before decoding.
ANSWER_MARKERS = tuple(f'"{kind}"'.encode() for kind in ANSWERS)
_SURVEY_EVENT: TypeAdapter[Any] = TypeAdapter(SurveyLifecycleEvent)


def decode_record(value: bytes) -> SurveyEvent | ContactDetails | RatingReceived | OptOut | None:
    """Read a forwarded record of the internal topic; None for anything unreadable."""
    try:
        kind = json.loads(value).get("type")
        if kind == "ContactDetails":
            return ContactDetails.model_validate_json(value)
        if kind in ANSWERS:
            return ANSWERS[kind].model_validate_json(value)
        event: SurveyEvent = _SURVEY_EVENT.validate_json(value)
    except (ValueError, ValidationError, AttributeError):
        return None
    return event


def tick_value(run: str) -> bytes:
    """Write a tick that names the scheduler run writing it (a token new at every assignment)."""
    return TICK_PREFIX + b',"run":"' + run.encode() + b'"}'


def tick_run(value: bytes | None) -> str | None:
    """Name the run that wrote a tick: "" for a tick of an unknown run, None for no tick."""
    if value is None or not value.startswith(TICK_PREFIX):
        return None
    try:
        run = json.loads(value).get("run")
    except (ValueError, AttributeError):
        return ""
    return run if isinstance(run, str) else ""


def is_echo(headers: Any) -> bool:
    """Tell whether a record is the scheduler's own event, written straight back to it."""
    items = headers.items() if isinstance(headers, dict) else headers or []
    return any(name == ECHO_HEADER for name, _ in items)


def encode_entry(partition: int, state: SurveyState) -> str:
    """Write a state value: the partition it lives in (for rebuilding the index) and the state."""
    return f"{partition}|{state.to_json()}"


def decode_entry(value: str) -> tuple[int, SurveyState]:
    """Read what :func:`encode_entry` wrote."""
    partition, _, state = value.partition("|")
    return int(partition), SurveyState.from_json(state)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What the provider answered to one send, as written back to the survey's partition.

    ``at`` is when the answer came: the stage folds the outcome in with that
    time, not the time it reads it, so a replay publishes the same events.
    Reasons are ours and codes the provider's: never a number or address.
    """

    survey_id: str
    attempt: int
    reminder: bool
    outcome: ProviderOutcome
    at: datetime


def _outcome_fields(outcome: ProviderOutcome) -> dict[str, Any]:
    if isinstance(outcome, Accepted):
        return {
            "kind": "accepted",
            "provider_message_id": outcome.provider_message_id,
            "segments": outcome.segments,
        }
    if isinstance(outcome, Refused):
        return {
            "kind": "refused",
            "reason": outcome.reason,
            "code": outcome.code,
            "opted_out": outcome.opted_out,
        }
    kind = "transient" if isinstance(outcome, Transient) else "unknown"
    return {"kind": kind, "reason": outcome.reason}


def encode_outcome(record: DeliveryOutcome) -> bytes:
    """Write a delivery outcome as the internal topic carries it."""
    body = json.dumps(
        {
            "survey_id": record.survey_id,
            "attempt": record.attempt,
            "reminder": record.reminder,
            "outcome": _outcome_fields(record.outcome),
            "at": record.at.isoformat(),
        },
        separators=(",", ":"),
    )
    return OUTCOME_PREFIX + b"," + body[1:].encode()


def _outcome(fields: dict[str, Any]) -> ProviderOutcome:
    kind = fields["kind"]
    if kind == "accepted":
        segments = fields.get("segments")
        return Accepted(
            fields.get("provider_message_id"), None if segments is None else int(segments)
        )
    if kind == "refused":
        return Refused(str(fields["reason"]), fields.get("code"), bool(fields.get("opted_out")))
    if kind == "transient":
        return Transient(str(fields["reason"]))
    if kind == "unknown":
        return Unknown(str(fields["reason"]))
    raise ValueError("not a provider outcome of a known kind")


def decode_outcome(value: bytes | None) -> DeliveryOutcome | None:
    """Read a delivery outcome; None for any other record, ValueError for a damaged one."""
    if value is None or not value.startswith(OUTCOME_PREFIX):
        return None
    try:
        data = json.loads(value)
        at = datetime.fromisoformat(data["at"])
        return DeliveryOutcome(
            survey_id=str(data["survey_id"]),
            attempt=int(data["attempt"]),
            reminder=bool(data["reminder"]),
            outcome=_outcome(data["outcome"]),
            at=at,
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError("a damaged delivery outcome") from error


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A survey SMS ready for the gateway. The number is left out of the repr, and so of logs.

    ``sender_id`` or ``messaging_service_sid`` is the touchpoint's
    organisation's own sender, when it has one.
    """

    to: str = field(repr=False)
    body: str
    status_callback: str
    sender_id: str | None = None
    messaging_service_sid: str | None = None


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """A survey email ready for the relay. The address is left out of the repr."""

    to: str = field(repr=False)
    content: EmailContent
    unsubscribe_url: str


@dataclass(frozen=True, slots=True)
class SendSurvey:
    """A command: hand this survey's message to the provider of its channel, once.

    ``partition`` is the survey's partition of the internal topic, where the
    outcome is written back; ``attempt`` and ``reminder`` say which send the
    outcome belongs to.
    """

    survey_id: str
    partition: int
    channel: SurveyChannel
    attempt: int
    reminder: bool
    message: SmsMessage | EmailMessage


def fits_one_segment(body: str) -> bool:
    """Whether an SMS goes out unconcatenated: the one segment citizens are billed for."""
    return count_segments(body).fits_one_segment


@dataclass(frozen=True, slots=True)
class Composer:
    """What composing a message takes: the catalogue, the link signer and the public address."""

    settings: Settings
    signer: TokenSigner
    base_url: str


def compose(
    state: SurveyState,
    channel: SurveyChannel,
    composer: Composer,
    now: datetime,
    *,
    reminder: bool = False,
) -> SmsMessage | EmailMessage | Refused:
    """Build the message of a survey due to be sent; a message that cannot be built is refused.

    The texts are :mod:`engine.outbound`'s; here they get their recipient.
    Refused means nothing was sent, and the survey fails with the reason.
    """
    scheduled, details = state.scheduled, state.details
    if scheduled is None or details is None:
        return Refused("no contact details for the survey")
    touchpoint, _ = composer.settings.touchpoint(scheduled.touchpoint_id)
    try:
        if channel is SurveyChannel.SMS:
            if details.phone is None:
                return Refused("no phone number in the contact details")
            sms = survey_sms(
                scheduled,
                touchpoint,
                composer.signer,
                composer.base_url,
                composer.settings.dispatch.organisation,
                reminder=reminder,
                fits=fits_one_segment,
            )
            return SmsMessage(
                to=details.phone,
                body=sms.body,
                status_callback=status_callback_url(composer.base_url),
                sender_id=sms.sender_id,
                messaging_service_sid=sms.messaging_service_sid,
            )
        if details.email is None:
            return Refused("no email address in the contact details")
        email = survey_email(
            scheduled,
            touchpoint,
            composer.signer,
            composer.base_url,
            composer.settings.dispatch.organisation,
            now,
            reminder=reminder,
        )
    except ValueError:
        return Refused("the message cannot be built")
    return EmailMessage(
        to=details.email, content=email.content, unsubscribe_url=email.unsubscribe_url
    )
