"""A citizen's request to be forgotten: what to delete, call off and record.

The request names a phone number or an email address. What can still tie
the citizen to Palaute's records is found in two ways:

* the citizen key derived from that identifier (the key of a citizen whose
  contacts carried no source-system reference), and
* the vault: every contact-details record still live there holds the
  citizen key actually used, which may be a reference-based key that the
  phone number alone cannot derive.

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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    """The normalised identifier of the citizen who asked to be forgotten."""

    phone: str | None = None
    email: str | None = None

    def matches(self, details: ContactDetails) -> bool:
        """Tell whether contact details belong to this identifier."""
        if self.phone is not None and details.phone == self.phone:
            return True
        return (
            self.email is not None
            and details.email is not None
            and details.email.lower() == self.email.lower()
        )


@dataclass(frozen=True, slots=True)
class BadIdentity:
    """Why the identifier given cannot be used (never quoting it)."""

    reason: str


def identity_of(*, phone: str | None = None, email: str | None = None) -> Identity | BadIdentity:
    """Normalise exactly one identifier as intake does (E.164; email-validator).

    The contact schema is the judge, so an address or number that intake
    would store in another form is matched in the form intake stored.
    """
    if (phone is None) == (email is None):
        return BadIdentity("give exactly one of a phone number or an email address")
    try:
        citizen = Citizen(phone=phone, email=email)
    except ValueError:  # pydantic's ValidationError; its message would quote the input
        what = "phone number (E.164, e.g. +358401234567)" if phone else "email address"
        return BadIdentity(f"not a valid {what}")
    return Identity(phone=citizen.phone, email=citizen.email)


def derived_key(secret: bytes, identity: Identity) -> str:
    """Give the citizen key intake derives from this identifier alone."""
    citizen = Citizen(phone=identity.phone, email=identity.email)
    # The source namespaces only source-system references, which this citizen has none of.
    return citizen_key(secret, citizen, source="")


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """What to write so that the records left can no longer identify the citizen."""

    citizen_keys: frozenset[str]
    vault_tombstones: tuple[str, ...]
    call_offs: tuple[SurveySkipped, ...]
    opt_outs: tuple[OptOut, ...]
    surveys: frozenset[str] = field(default_factory=frozenset)
    comment_tombstones: tuple[str, ...] = ()

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
    now: datetime,
) -> ErasurePlan:
    """Plan the erasure from the vault's live entries, the surveys and the comments topic.

    ``key`` is :func:`derived_key` of ``identity``; ``vault`` maps survey id
    to the latest contact details (tombstoned entries left out);
    ``survey_events`` is the surveys topic in order; ``comments`` maps each
    key of the comments topic to its latest comment (tombstoned keys left
    out). The tombstones name the keys as found, not as recomputed, so a
    comment is removed whatever key it was written under.
    """
    # The identifier finds the keys actually used (a reference-based key among them),
    # and each of those keys finds the person's entries with other numbers or addresses.
    keys = frozenset(
        {key, *(details.citizen_key for details in vault.values() if identity.matches(details))}
    )
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
    )
