"""A citizen's request to be forgotten: what to delete, call off and record.

The request names a phone number, an email address, a source system's
citizen reference with its source, or a citizen key. What can still tie the
citizen to Palaute's records is found in three ways:

* the citizen key derived from that identifier (for a phone number or an
  address, the key of a citizen whose contacts carried no reference);
* the contact events still on a topic (the contacts input, the worker's
  repartition of it, the dead letters): each one that names the citizen
  gives the key intake derived for it, a reference-based key among them;
* the vault: every contact-details record still live there holds the
  citizen key actually used.

A reference-based key therefore stays findable by phone number after the
survey closed and the vault forgot the number, for as long as a contact
event of the person is kept; after that, by the reference and its source.

The plan then says, for the shell to carry out:

* a tombstone for each of the citizen's vault entries (the only place their
  phone number or address is kept on purpose);
* a ``SurveySkipped`` (reason ``opted-out``) for each of their surveys not
  yet finished, so the scheduler drops the details it holds and never sends
  it; the scheduler ignores it once sending has begun;
* an ``OptOut`` for each of those surveys, so a reminder is called off, the
  scheduler forgets the details of a survey already sent, and intake
  remembers, under the pseudonymous key only, not to ask this person again;
* a tombstone for every comment still live on the comments topic whose
  survey is one of theirs (found on the vault or the surveys topic), under
  the key it was written with: free text can name a person even redacted.

Nothing here deletes records of topics with a time-based retention (the
contacts input, the surveys and responses topics): Kafka cannot delete one
record there. docs/privacy.md says what stays, and for how long.

Replaying a plan is harmless: tombstones and call-offs are idempotent, and
the opt-outs have answer ids derived from the survey id. A second run finds
no live vault entry or comment and every survey finished, so it plans nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.pseudonym import citizen_key
from schemas.contacts import Citizen
from schemas.responses import AnswerVia, CommentReceived, OptOut
from schemas.surveys import SkipReason, SurveyEvent, SurveyScheduled, SurveySkipped

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from schemas.vault import ContactDetails

#: Why the surveys were called off, in the SurveySkipped events (no personal data).
CALL_OFF_DETAIL = "the citizen asked to be forgotten"
#: Prefix of the opt-outs' answer ids; the survey id follows, so a replay de-duplicates.
ANSWER_ID_PREFIX = "erasure-"
#: Survey events after which nothing more is sent and no details are kept.
_FINAL_EVENTS = ("SurveySkipped", "SurveyFailed", "SurveyExpired")


@dataclass(frozen=True, slots=True)
class Identity:
    """The normalised identifier of the citizen who asked to be forgotten.

    Exactly one is set: a phone number, an email address, a source system's
    citizen reference (``citizen_id``, with the ``source`` that issued it:
    a reference is unique only there), or a citizen key itself.
    """

    phone: str | None = None
    email: str | None = None
    citizen_id: str | None = None
    source: str | None = None
    citizen_key: str | None = None

    def matches(self, details: ContactDetails) -> bool:
        """Tell whether contact details belong to this identifier."""
        if self.phone is not None and details.phone == self.phone:
            return True
        return (
            self.email is not None
            and details.email is not None
            and details.email.lower() == self.email.lower()
        )

    def names(self, citizen: Citizen, source: str) -> bool:
        """Tell whether a contact event's citizen (sent by ``source``) is this identifier's."""
        if self.phone is not None and citizen.phone == self.phone:
            return True
        if self.email is not None and (citizen.email or "").lower() == self.email.lower():
            return True
        return self.citizen_id is not None and (citizen.id, source) == (
            self.citizen_id,
            self.source,
        )

    def may_name(self, citizen: Mapping[str, Any], source: object) -> bool:
        """Tell cheaply, from a contact's parsed JSON, whether it can be this identifier's.

        A False answer is exact, so the full validation (phone parsing costs
        about 50 µs) runs only on candidates; a key alone says nothing until
        the key is computed, so every contact is a candidate for it.
        """
        if self.citizen_key is not None:
            return True
        if self.citizen_id is not None:
            return citizen.get("id") == self.citizen_id and source == self.source
        if self.email is not None:
            email = citizen.get("email")
            return isinstance(email, str) and email.strip().lower() == self.email.lower()
        phone = citizen.get("phone")
        if not isinstance(phone, str) or self.phone is None:
            return False
        digits = "".join(c for c in phone if c.isdigit())
        return len(digits) >= _SUBSCRIBER_DIGITS and self.phone.endswith(
            digits[-_SUBSCRIBER_DIGITS:]
        )

    def appears_in(self, raw: bytes) -> bool:
        """Tell whether raw bytes (a record nobody could parse) spell this identifier.

        For a dead letter, whose bytes may be anything: a literal search for
        the forms an identifier is usually written in, erring on the side of
        reporting a record.
        """
        lowered = raw.lower()
        forms: list[str] = []
        if self.phone is not None:
            forms.append(self.phone)
            if self.phone.startswith(_FINNISH_PREFIX):
                forms.append("0" + self.phone.removeprefix(_FINNISH_PREFIX))
        if self.email is not None:
            forms.append(self.email.lower())
        if self.citizen_id is not None:
            forms.append(f'"{self.citizen_id.lower()}"')
        if self.citizen_key is not None:
            forms.append(self.citizen_key)
        return any(form.encode() in lowered for form in forms)


#: Trailing digits compared by the cheap phone test: a Finnish mobile number has 7 to 10.
_SUBSCRIBER_DIGITS = 7
_FINNISH_PREFIX = "+358"
_CITIZEN_KEY = re.compile(r"[0-9a-f]{32,64}")
# The Identifier pattern of schemas.base, restated (engine/ does not import pydantic).
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


@dataclass(frozen=True, slots=True)
class BadIdentity:
    """Why the identifier given cannot be used (never quoting it)."""

    reason: str


def identity_of(  # noqa: PLR0911 - one refusal per way an identifier can be wrong
    *,
    phone: str | None = None,
    email: str | None = None,
    citizen_id: str | None = None,
    source: str | None = None,
    key: str | None = None,
) -> Identity | BadIdentity:
    """Normalise exactly one identifier as intake does (E.164; email-validator).

    The contact schema is the judge, so an address or number that intake
    would store in another form is matched in the form intake stored. A
    source-system reference needs its source, as in the contact events.
    """
    given = [value for value in (phone, email, citizen_id, key) if value is not None]
    if len(given) != 1:
        return BadIdentity(
            "give exactly one of a phone number, an email address, a citizen id "
            "(with its source) or a citizen key"
        )
    if (citizen_id is None) != (source is None):
        return BadIdentity(
            "a citizen id needs the source of the system that issued it, "
            "and a source is given only with a citizen id"
        )
    if key is not None:
        if not _CITIZEN_KEY.fullmatch(key):
            return BadIdentity("not a citizen key (32 to 64 lowercase hex digits)")
        return Identity(citizen_key=key)
    if citizen_id is not None and source is not None:
        if not source or any(c.isspace() for c in source) or len(source) > _MAX_SOURCE:
            return BadIdentity("not a valid event source (1-512 characters, no spaces)")
        if not _IDENTIFIER.fullmatch(citizen_id):
            return BadIdentity("not a valid citizen id (1-128 URL-safe ASCII characters)")
        return Identity(citizen_id=citizen_id, source=source)
    try:
        citizen = Citizen(phone=phone, email=email)
    except ValueError:  # pydantic's ValidationError; its message would quote the input
        what = "phone number (E.164, e.g. +358401234567)" if phone else "email address"
        return BadIdentity(f"not a valid {what}")
    return Identity(phone=citizen.phone, email=citizen.email)


#: The longest CloudEvents source the contact schema accepts.
_MAX_SOURCE = 512


def derived_key(secret: bytes, identity: Identity) -> str:
    """Give the citizen key intake derives from this identifier alone."""
    if identity.citizen_key is not None:
        return identity.citizen_key
    if identity.citizen_id is not None:
        # Intake hashes the reference alone when a contact carries one (engine.pseudonym).
        reference = Citizen.model_construct(id=identity.citizen_id, phone=None, email=None)
        return citizen_key(secret, reference, source=identity.source or "")
    citizen = Citizen(phone=identity.phone, email=identity.email)
    # The source namespaces only source-system references, which this citizen has none of.
    return citizen_key(secret, citizen, source="")


@dataclass(frozen=True, slots=True)
class ContactSeen:
    """A record of the citizen's contact: the topic it was read on and the key intake gave it.

    The key is empty for a record that spells the citizen's identifier but is
    no contact event intake could read (a dead letter): it is counted, and
    gives no key.
    """

    topic: str
    citizen_key: str


def seen(
    identity: Identity, secret: bytes, topic: str, source: str, citizen: Citizen
) -> ContactSeen | None:
    """Tell whether a contact event names the citizen; if so, where, and under which key.

    The key is the one intake derived for the contact: a reference-based key
    the phone number alone cannot derive is found here as long as one of the
    citizen's contact events is still on a topic, even after their survey
    closed and the vault forgot them.
    """
    key = citizen_key(secret, citizen, source=source)
    if identity.names(citizen, source) or key == identity.citizen_key:
        return ContactSeen(topic, key)
    return None


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """What to write so that the records left can no longer identify the citizen."""

    citizen_keys: frozenset[str]
    vault_tombstones: tuple[str, ...]
    call_offs: tuple[SurveySkipped, ...]
    opt_outs: tuple[OptOut, ...]
    surveys: frozenset[str] = field(default_factory=frozenset)
    comment_tombstones: tuple[str, ...] = ()
    contacts_seen: Mapping[str, int] = field(default_factory=dict)

    def mentions(self, value: bytes) -> bool:
        """Tell whether a record names one of the citizen's keys or surveys.

        Keys and survey ids are long and unique, so a literal search is exact
        enough to count the records of a time-retained topic that stay.
        """
        return any(name.encode() in value for name in (*self.citizen_keys, *self.surveys))

    @property
    def is_empty(self) -> bool:
        """Tell whether there is nothing to write (a repeated request, or an unknown citizen)."""
        return not (
            self.vault_tombstones or self.call_offs or self.opt_outs or self.comment_tombstones
        )


def plan_erasure(
    identity: Identity,
    key: str,
    *,
    vault: Mapping[str, ContactDetails],
    survey_events: Iterable[SurveyEvent],
    comments: Mapping[str, CommentReceived] | None = None,
    contacts: Iterable[ContactSeen] = (),
    now: datetime,
) -> ErasurePlan:
    """Plan the erasure from the contacts seen, the vault, the surveys and the comments topic.

    ``key`` is :func:`derived_key` of ``identity``; ``vault`` maps survey id
    to the latest contact details (tombstoned entries left out);
    ``survey_events`` is the surveys topic in order; ``comments`` maps each
    key of the comments topic to its latest comment (tombstoned keys left
    out); ``contacts`` are the citizen's contact events still on a topic
    (:func:`seen`). The tombstones name the keys as found, not as
    recomputed, so a comment is removed whatever key it was written under.
    """
    # The identifier finds the keys actually used (a reference-based key among them):
    # on the contact events that carried it, and on the vault while a survey is open.
    # Each of those keys finds the person's entries with other numbers or addresses.
    sightings = list(contacts)
    keys = frozenset(
        {
            key,
            *(sighting.citizen_key for sighting in sightings if sighting.citizen_key),
            *(details.citizen_key for details in vault.values() if identity.matches(details)),
        }
    )
    contacts_seen: dict[str, int] = {}
    for sighting in sightings:
        contacts_seen[sighting.topic] = contacts_seen.get(sighting.topic, 0) + 1
    live = {
        survey_id: details
        for survey_id, details in vault.items()
        if identity.matches(details) or details.citizen_key in keys
    }
    scheduled: dict[str, SurveyScheduled] = {}
    finished: set[str] = set()
    surveys: set[str] = set(live)
    for event in survey_events:
        if event.citizen_key not in keys:
            continue
        surveys.add(event.survey_id)
        if isinstance(event, SurveyScheduled):
            scheduled[event.survey_id] = event
        elif getattr(event, "type", "") in _FINAL_EVENTS:
            finished.add(event.survey_id)
    open_surveys = sorted(survey_id for survey_id in live if survey_id not in finished)
    call_offs = tuple(
        SurveySkipped(
            survey_id=survey_id,
            citizen_key=scheduled[survey_id].citizen_key,
            contact_id=scheduled[survey_id].contact_id,
            contact_source=scheduled[survey_id].contact_source,
            touchpoint_id=scheduled[survey_id].touchpoint_id,
            occurred_at=now,
            reason=SkipReason.OPTED_OUT,
            detail=CALL_OFF_DETAIL,
        )
        for survey_id in open_surveys
        if survey_id in scheduled
    )
    opt_outs = tuple(
        OptOut(
            answer_id=f"{ANSWER_ID_PREFIX}{survey_id}"[:128],
            survey_id=survey_id,
            citizen_key=live[survey_id].citizen_key,
            # The schema knows SMS replies and links; the request is the citizen's own,
            # and "link" is the channel that carries no phone number.
            via=AnswerVia.LINK,
            received_at=now,
        )
        for survey_id in open_surveys
    )
    return ErasurePlan(
        citizen_keys=keys,
        vault_tombstones=tuple(sorted(live)),
        call_offs=call_offs,
        opt_outs=opt_outs,
        surveys=frozenset(surveys),
        comment_tombstones=tuple(
            sorted(
                comment_id
                for comment_id, comment in (comments or {}).items()
                if comment.survey_id in surveys
            )
        ),
        contacts_seen=contacts_seen,
    )
