"""The intake as two pure stages: admit a contact, then decide it against the citizen's history.

1. :class:`AdmitContacts` reads the contacts topic in either CloudEvents
   content mode, validates the event, and re-keys it by the pseudonymous
   citizen key onto the internal by-citizen topic, as structured JSON and
   without the client's headers (a header no one here wrote must never reach
   a later stage: a client's ``palaute-record`` header would pass for an
   opt-out). A record that fails the gate is rejected with the gate's reason.
2. :class:`DecideContacts` reads the by-citizen topic, whose partitions are
   those of the citizen-history state, asks :func:`engine.policy.decide`, and
   asks for what the decision says to be published (the vault record first,
   then the decision and any superseded surveys' skips) and for the new
   history to be stored. An OptOut forwarded by the responses reader (marked
   with the ``palaute-record: opt-out`` header) is recorded in the history.

Neither does I/O: the runtime produces, awaits the acknowledgements and only
then stores the history (:mod:`streams.runtime.checkpoint`), so a crash
before the decision is on the broker decides the contact again, with the
same survey id, rather than taking the replay for a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.policy import CitizenHistory, Schedule, decide
from engine.pseudonym import citizen_key
from schemas.cloudevents_kafka import structured_event
from schemas.decoding import Rejected, decode_contact, decode_event
from schemas.responses import OptIn, OptOut
from streams.runtime.model import NOTHING, Output, Produce, Rejection

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date, datetime

    from engine.policy import Decision
    from schemas.config import Settings
    from schemas.contacts import ContactCompleted
    from schemas.surveys import SurveyScheduled, SurveySkipped
    from schemas.vault import ContactDetails
    from streams.runtime.model import Record, StateView

#: The stage label of both stages' dead letters and counters.
LABEL = "intake"
#: Marks an OptOut forwarded to the by-citizen topic among the contacts.
RECORD_HEADER = "palaute-record"
OPT_OUT_RECORD = b"opt-out"
#: Marks an OptIn (the citizen resumed) forwarded the same way.
OPT_IN_RECORD = b"opt-in"
_OPT_OUT_HEADERS = ((RECORD_HEADER, OPT_OUT_RECORD),)
_OPT_IN_HEADERS = ((RECORD_HEADER, OPT_IN_RECORD),)
#: Output roles, which the runtime maps onto topics.
BY_CITIZEN = "by_citizen"
SURVEYS = "surveys"
VAULT = "vault"


@dataclass(frozen=True, slots=True)
class Admitted:
    """A valid contact, re-keyed by its citizen, as the deciding stage reads it."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class UnknownTouchpoint:
    """An observation: a contact named a touchpoint missing from the catalogue."""

    touchpoint_id: str


def admit_contact(
    value: bytes | None, headers: Any, secret: bytes, now: datetime
) -> Admitted | Rejected:
    """Validate one record of the contacts topic, in either CloudEvents content mode."""
    structured = structured_event(value, headers)
    if isinstance(structured, Rejected):
        return structured
    contact = decode_contact(structured, now=now)
    if isinstance(contact, Rejected):
        return contact
    key = citizen_key(secret, contact.data.citizen, source=contact.source)
    return Admitted(key.encode(), structured)


def _json(event: ContactDetails | SurveyScheduled | SurveySkipped) -> bytes:
    return event.model_dump_json().encode()


def publications(decision: Decision, contact: ContactCompleted, now: datetime) -> list[Produce]:
    """Turn a decision into the records to produce, vault first.

    The vault record goes first so that the details of a survey exist before
    anything reads its SurveyScheduled.
    """
    key = decision.citizen_key.encode()
    if not isinstance(decision, Schedule):
        skipped = decision.skipped_event(now)
        return [] if skipped is None else [Produce(SURVEYS, key, _json(skipped))]
    details = decision.contact_details(contact.data.citizen, now)
    return [
        Produce(VAULT, decision.survey_id.encode(), _json(details)),
        Produce(SURVEYS, key, _json(decision.scheduled_event(now))),
        *(Produce(SURVEYS, key, _json(skip)) for skip in decision.superseded_events(now)),
    ]


def _record_kind(headers: Any) -> bytes | None:
    items = (headers or {}).items() if isinstance(headers, dict) else (headers or [])
    return next((value for name, value in items if name == RECORD_HEADER), None)


def is_opt_out(headers: Any) -> bool:
    """Tell whether a record of the by-citizen topic is a forwarded OptOut."""
    return _record_kind(headers) == OPT_OUT_RECORD


def is_opt_in(headers: Any) -> bool:
    """Tell whether a record of the by-citizen topic is a forwarded OptIn."""
    return _record_kind(headers) == OPT_IN_RECORD


def with_opt_out(before: CitizenHistory) -> CitizenHistory | None:
    """Give the history with the opt-out recorded; None when it already is."""
    return None if before.opted_out else before.with_opt_out()


class ForwardOptOuts:
    """The intake's part of the responses topic: each OptOut and OptIn, to its citizen's history.

    Marked with the ``palaute-record: opt-out`` (or ``opt-in``) header, which
    only this part writes (the intake drops every header a client sent). A
    stop and a resume about the same survey keep their order: the responses
    topic is keyed by survey id, the by-citizen topic by citizen.
    """

    label = LABEL

    def handle(self, record: Record, now: datetime) -> Output:
        """Forward an OptOut by its citizen key; leave every other record to other stages."""
        del now
        value = record.value or b""
        if b'"OptOut"' not in value and b'"OptIn"' not in value:
            return NOTHING
        event = decode_event(value)
        if not isinstance(event, OptOut | OptIn):
            return NOTHING
        headers = _OPT_OUT_HEADERS if isinstance(event, OptOut) else _OPT_IN_HEADERS
        key = event.citizen_key.encode()
        return Output(produce=(Produce(BY_CITIZEN, key, value, None, headers),))


class AdmitContacts:
    """The first intake stage: the validation gate and the re-keying by citizen."""

    name = "intake"
    label = LABEL

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Forward a valid contact by its citizen key; reject anything else with the reason."""
        del state
        admitted = admit_contact(record.value, record.headers, self._secret, now)
        if isinstance(admitted, Rejected):
            return Output(rejection=Rejection(admitted.code, admitted.reason))
        return Output(produce=(Produce(BY_CITIZEN, admitted.key, admitted.value),))


class DecideContacts:
    """The second intake stage: one decision per contact, against the citizen's history."""

    name = "intake-decide"
    label = LABEL

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._is_holiday: Callable[[date], bool] = settings.policy.holiday_calendar()

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Decide a contact, or record a forwarded opt-out, for the record's citizen."""
        key = (record.key or b"").decode()
        stored = state.get(key)
        before = CitizenHistory() if stored is None else CitizenHistory.from_json(stored)
        if is_opt_out(record.headers):
            opted_out = with_opt_out(before)
            return NOTHING if opted_out is None else Output(state={key: opted_out.to_json()})
        if is_opt_in(record.headers):
            if not before.opted_out:
                return NOTHING
            return Output(state={key: before.with_opt_in().to_json()})
        contact = decode_contact(record.value or b"", now=now)
        if isinstance(contact, Rejected):  # the first stage let it through: a bug, kept
            return Output(rejection=Rejection(contact.code, contact.reason))
        touchpoint, known = self._settings.touchpoint(contact.data.touchpoint.id)
        decision = decide(
            contact,
            before,
            touchpoint,
            self._settings.policy,
            now,
            citizen_key=key,
            is_holiday=self._is_holiday,
        )
        observations: tuple[Any, ...] = (decision,)
        if not known:
            observations += (UnknownTouchpoint(contact.data.touchpoint.id),)
        return Output(
            produce=tuple(publications(decision, contact, now)),
            state={key: decision.history.to_json()} if decision.history != before else {},
            observations=observations,
        )
