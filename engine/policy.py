"""Whether to survey a contact, and how: the eligibility and sampling policy.

:func:`decide` is a pure function of the contact, the citizen's history, the
touchpoint's and policy's configuration and ``now``. Re-run on the same input
it gives the same answer, survey id included, so a replay after a crash makes
the same decision and a test can use it as the oracle of the whole pipeline.

The rules, in the order they are applied (the first that matches gives the
skip reason; the cheap ones come first, and the phone number is parsed only
for a contact that passed every other rule):

1. ``duplicate`` — the event (CloudEvents ``source`` + ``id``), or the contact
   id of the same source, was decided before (nothing to publish).
2. ``opted-out`` — the citizen opted out (in the history, or per the contact).
3. ``non-disclosure`` — turvakielto: such a citizen is never contacted.
4. ``sensitive-touchpoint`` — the touchpoint is configured as never surveyed.
5. ``under-age`` — younger than ``min_age`` (unknown age: ``survey_unknown_age``).
6. ``too-old`` — the contact ended more than ``max_contact_age`` before ``now``.
7. ``no-consent`` — no consent for any channel the touchpoint uses.
8. ``superseded`` — a newer contact of the citizen already waits for its send time.
9. ``episode`` — a contact of the same episode (service, or touchpoint) within
   ``episode_window`` was surveyed.
10. ``not-sampled`` — outside the touchpoint's sampling rate (a hash of the
    source and contact id decides, so a replay decides the same).
11. ``frequency-cap`` — ``frequency_cap`` surveys within ``frequency_cap_window``
    around this send time already.
12. ``no-channel`` — consent, but no mobile number or address to match it.

A scheduled survey whose contact is older than the new one and whose send time
is still ahead is superseded: the new decision lists it for cancellation and
it no longer counts towards the cap or the episode. A survey with a send time
at or before ``now`` counts as sent unless the caller removed it from the
history (:meth:`CitizenHistory.without_survey`, e.g. after a permanent failure).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from engine.ids import derived_id, fingerprint
from engine.sendtime import survey_times
from schemas.base import SurveyChannel
from schemas.contacts import is_mobile_number
from schemas.surveys import SkipReason, SurveyScheduled, SurveySkipped
from schemas.vault import ContactDetails

if TYPE_CHECKING:
    from engine.sendtime import HolidayCalendar
    from schemas.base import Language, Scale
    from schemas.config import PolicyConfig, TouchpointConfig
    from schemas.contacts import Citizen, ContactCompleted, TouchpointChannel

_SAMPLING_SPACE = 2**64
#: Version of :meth:`CitizenHistory.to_json`'s format; bump it on an incompatible change.
#: Version 1 remembered bare contact ids; it is still read (see :class:`CitizenHistory`).
_HISTORY_FORMAT = 2
_OLD_HISTORY_FORMATS = (1,)


def survey_id_for(source: str, contact_id: str) -> str:
    """Derive the survey id from the contact, identically in every process and replay.

    A contact id is unique only inside the system that issued it (the event's
    ``source``): the same id from two systems is two contacts, and, for two
    citizens, two surveys whose answers must never meet. The id is written in
    letters only (:mod:`engine.ids`), so it can never hold an identity code.
    """
    return f"sv-{derived_id('palaute-survey', source, contact_id)}"


def sampling_point(source: str, contact_id: str) -> float:
    """Place a contact on [0, 1); it is sampled when the point is below the rate.

    SHA-256, not ``hash()``: Python salts ``hash()`` per process, and a
    replay on another worker must sample the same contacts. The source is
    hashed too, so two systems' contacts with one id are sampled independently.
    """
    digest = hashlib.sha256(b"palaute-sampling\x00")
    for part in (source, contact_id):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    return int.from_bytes(digest.digest()[:8], "big") / _SAMPLING_SPACE


def is_sampled(source: str, contact_id: str, rate: float) -> bool:
    """Tell whether the contact falls inside the sampling rate."""
    return sampling_point(source, contact_id) < rate


def event_fingerprint(source: str, event_id: str) -> str:
    """Give what the history remembers of an event's identity: CloudEvents' ``source`` + ``id``.

    A digest, so a history stays small whatever the lengths of the two
    (a source may have 512 characters and an id 256).
    """
    return fingerprint("palaute-event", source, event_id)


def contact_fingerprint(source: str, contact_id: str) -> str:
    """Give what the history remembers of a contact: its id, namespaced by its source."""
    return fingerprint("palaute-contact", source, contact_id)


@dataclass(frozen=True, slots=True)
class ContactIdentity:
    """How a contact is recognised: its event's identity and its source-namespaced contact id.

    The history remembers both as fingerprints (computed once, here):
    ``event_print`` of the event's ``source`` + ``id`` (CloudEvents says a
    producer repeating an event repeats these two) and ``contact_print`` of
    ``source`` + contact id (the survey id derives from them, so a second
    decision for them would be a second survey of one id).
    """

    source: str
    event_id: str
    contact_id: str
    event_print: str = field(init=False, repr=False, compare=False)
    contact_print: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_print", event_fingerprint(self.source, self.event_id))
        object.__setattr__(self, "contact_print", contact_fingerprint(self.source, self.contact_id))

    @classmethod
    def of(cls, contact: ContactCompleted) -> ContactIdentity:
        """Take the identity of a contact event."""
        return cls(source=contact.source, event_id=contact.id, contact_id=contact.data.contact.id)


@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """A survey of this citizen that was scheduled (and possibly sent).

    ``source`` is the source of the contact, which namespaces ``contact_id``;
    None in a record kept before sources were remembered.
    """

    survey_id: str
    contact_id: str
    touchpoint_id: str
    service: str
    contact_ended_at: datetime
    send_at: datetime
    sent: bool = False
    source: str | None = None

    def pending(self, now: datetime) -> bool:
        """Tell whether the survey still waits for its send time."""
        return not self.sent and self.send_at > now

    def episode_key(self, policy: PolicyConfig) -> str:
        """Give what makes two contacts one episode under the policy's scope."""
        return self.service if policy.episode_scope == "service" else self.touchpoint_id

    def is_of(self, identity: ContactIdentity) -> bool:
        """Tell whether this survey was scheduled for that contact."""
        return self.contact_id == identity.contact_id and self.source in (None, identity.source)


@dataclass(frozen=True, slots=True)
class CitizenHistory:
    """What the policy remembers of one citizen; small, and rebuilt from the surveys topic.

    ``event_prints`` and ``contact_prints`` remember each decided contact by
    both its identities (:class:`ContactIdentity`), in the same order, most
    recent last, bounded by ``PolicyConfig.remembered_contacts``; a repeat
    older than that is still caught by ``too-old``.

    ``legacy_contact_ids`` are the bare contact ids of a history of format 1,
    which knew no sources: each matches its contact id from any source. The
    price, until they age out, is that another system's contact with the same
    id is taken for a repeat; the alternative, a contact decided before the
    upgrade decided again under a new survey id, would survey a citizen twice.
    """

    surveys: tuple[SurveyRecord, ...] = ()
    opted_out: bool = False
    event_prints: tuple[str, ...] = ()
    contact_prints: tuple[str, ...] = ()
    legacy_contact_ids: tuple[str, ...] = ()

    def has_decided(self, identity: ContactIdentity) -> bool:
        """Tell whether this event, or this source's contact id, already got a decision."""
        return (
            identity.event_print in self.event_prints
            or identity.contact_print in self.contact_prints
            or identity.contact_id in self.legacy_contact_ids
            or any(record.is_of(identity) for record in self.surveys)
        )

    def with_decided(
        self, identity: ContactIdentity, keep: int, surveys: tuple[SurveyRecord, ...]
    ) -> CitizenHistory:
        """Remember a decided contact, keeping the ``keep`` most recent (old ones go first).

        ``surveys`` are the surveys still worth remembering (one copy, not two).
        """
        events = (*self.event_prints, identity.event_print)[-keep:]
        room = keep - len(events)
        return replace(
            self,
            surveys=surveys,
            event_prints=events,
            contact_prints=(*self.contact_prints, identity.contact_print)[-keep:],
            legacy_contact_ids=self.legacy_contact_ids[-room:] if room > 0 else (),
        )

    def with_repeat(self, identity: ContactIdentity, keep: int) -> CitizenHistory:
        """Remember the event of a repeated contact too, so a third event with its id is a repeat.

        A contact sent again under a new event id is a duplicate by its contact
        id; that event's identity is remembered as well, or a later event
        repeating it with another contact id would be decided as new.
        """
        if identity.event_print in self.event_prints:
            return self
        return replace(self, event_prints=(*self.event_prints, identity.event_print)[-keep:])

    def with_opt_out(self) -> CitizenHistory:
        """Remember that the citizen opted out (from an OptOut event)."""
        return replace(self, opted_out=True)

    def with_opt_in(self) -> CitizenHistory:
        """Forget an opt-out: the citizen asked to be surveyed again (from an OptIn event)."""
        return replace(self, opted_out=False)

    def with_sent(self, survey_id: str) -> CitizenHistory:
        """Mark a survey as sent (from a SurveySent event)."""
        return replace(
            self,
            surveys=tuple(
                replace(record, sent=True) if record.survey_id == survey_id else record
                for record in self.surveys
            ),
        )

    def without_survey(self, survey_id: str) -> CitizenHistory:
        """Forget a survey that never reached the citizen, so it no longer counts."""
        return replace(self, surveys=tuple(r for r in self.surveys if r.survey_id != survey_id))

    def to_json(self) -> str:
        """Serialise for a changelog-backed table; :meth:`from_json` reads it back exactly."""
        return json.dumps(
            {
                "v": _HISTORY_FORMAT,
                "opted_out": self.opted_out,
                "events": list(self.event_prints),
                "contacts": list(self.contact_prints),
                "legacy_contacts": list(self.legacy_contact_ids),
                "surveys": [
                    {
                        "survey_id": record.survey_id,
                        "source": record.source,
                        "contact_id": record.contact_id,
                        "touchpoint_id": record.touchpoint_id,
                        "service": record.service,
                        "contact_ended_at": record.contact_ended_at.isoformat(),
                        "send_at": record.send_at.isoformat(),
                        "sent": record.sent,
                    }
                    for record in self.surveys
                ],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CitizenHistory:
        """Read what :meth:`to_json` wrote, in this format or format 1.

        An unknown format version is a ValueError.
        """
        data = json.loads(text)
        version = data.get("v") if isinstance(data, dict) else None
        if version != _HISTORY_FORMAT and version not in _OLD_HISTORY_FORMATS:
            raise ValueError("not a citizen history of a known format")
        if version == _HISTORY_FORMAT:
            prints = {
                "event_prints": tuple(data["events"]),
                "contact_prints": tuple(data["contacts"]),
                "legacy_contact_ids": tuple(data["legacy_contacts"]),
            }
        else:  # format 1: bare contact ids, from before sources namespaced them
            prints = {"legacy_contact_ids": tuple(data["decided_contacts"])}
        return cls(
            surveys=tuple(
                SurveyRecord(
                    survey_id=record["survey_id"],
                    contact_id=record["contact_id"],
                    touchpoint_id=record["touchpoint_id"],
                    service=record["service"],
                    contact_ended_at=datetime.fromisoformat(record["contact_ended_at"]),
                    send_at=datetime.fromisoformat(record["send_at"]),
                    sent=bool(record["sent"]),
                    source=record.get("source"),
                )
                for record in data["surveys"]
            ),
            opted_out=bool(data["opted_out"]),
            **prints,
        )


@dataclass(frozen=True, slots=True)
class Schedule:
    """Ask: the survey's fields, the surveys it supersedes, and the new history."""

    survey_id: str
    citizen_key: str
    contact_id: str
    touchpoint_id: str
    channel: SurveyChannel
    language: Language
    scale: Scale
    contact_ended_at: datetime
    send_at: datetime
    reminder_at: datetime | None
    expires_at: datetime
    service: str
    touchpoint_channel: TouchpointChannel
    history: CitizenHistory
    superseded: tuple[SurveyRecord, ...] = field(default=())
    contact_source: str | None = None
    #: The contact's operational context, carried to the Rating for the breakdowns.
    team: str | None = None
    case_type: str | None = None
    queue_wait_seconds: int | None = None

    def contact_details(self, citizen: Citizen, stored_at: datetime) -> ContactDetails:
        """Give the vault record for this survey: the chosen channel's detail only.

        The dispatcher needs nothing else, and what is not stored cannot leak.
        """
        return ContactDetails(
            survey_id=self.survey_id,
            citizen_key=self.citizen_key,
            phone=citizen.phone if self.channel is SurveyChannel.SMS else None,
            email=citizen.email if self.channel is SurveyChannel.EMAIL else None,
            language=self.language,
            stored_at=stored_at,
        )

    def scheduled_event(self, occurred_at: datetime) -> SurveyScheduled:
        """Give the SurveyScheduled event to publish."""
        return SurveyScheduled(
            survey_id=self.survey_id,
            citizen_key=self.citizen_key,
            contact_id=self.contact_id,
            contact_source=self.contact_source,
            touchpoint_id=self.touchpoint_id,
            occurred_at=occurred_at,
            channel=self.channel,
            language=self.language,
            scale=self.scale,
            contact_ended_at=self.contact_ended_at,
            send_at=self.send_at,
            reminder_at=self.reminder_at,
            expires_at=self.expires_at,
            service=self.service,
            touchpoint_channel=self.touchpoint_channel,
            team=self.team,
            case_type=self.case_type,
            queue_wait_seconds=self.queue_wait_seconds,
        )

    def superseded_events(self, occurred_at: datetime) -> tuple[SurveySkipped, ...]:
        """Give one SurveySkipped (superseded) per scheduled survey this one replaces."""
        return tuple(
            SurveySkipped(
                survey_id=record.survey_id,
                citizen_key=self.citizen_key,
                contact_id=record.contact_id,
                contact_source=record.source,
                touchpoint_id=record.touchpoint_id,
                occurred_at=occurred_at,
                reason=SkipReason.SUPERSEDED,
                detail=f"superseded by survey {self.survey_id}",
            )
            for record in self.superseded
        )


@dataclass(frozen=True, slots=True)
class Skip:
    """Do not ask, and why; ``detail`` never carries a phone number or an address."""

    survey_id: str
    citizen_key: str
    contact_id: str
    touchpoint_id: str
    reason: SkipReason
    detail: str
    history: CitizenHistory
    contact_source: str | None = None

    def skipped_event(self, occurred_at: datetime) -> SurveySkipped | None:
        """Give the SurveySkipped event to publish; none for a duplicate.

        A repeated contact has the survey id of the first decision, which may be
        a scheduled survey: publishing a skip for it would cancel that survey.
        """
        if self.reason is SkipReason.DUPLICATE:
            return None
        return SurveySkipped(
            survey_id=self.survey_id,
            citizen_key=self.citizen_key,
            contact_id=self.contact_id,
            contact_source=self.contact_source,
            touchpoint_id=self.touchpoint_id,
            occurred_at=occurred_at,
            reason=self.reason,
            detail=self.detail,
        )


Decision = Schedule | Skip


def age_for_policy(citizen: Citizen, now: datetime, policy: PolicyConfig) -> int | None:
    """Give the citizen's age for the age limit, or None when unknown.

    From a birth year alone the age is this year minus the birth year, less
    one: the younger of the two possible ages. Someone born in 2007 counts as
    17 for all of 2025, so no possible minor is asked; the price is that
    people who turned 18 earlier in the year wait until January.
    """
    if citizen.age is not None:
        return citizen.age
    if citizen.birth_year is not None:
        return now.astimezone(policy.zone).year - citizen.birth_year - 1
    return None


def _eligibility_skip(  # noqa: PLR0911 - one return per rule reads best as a rule table
    contact: ContactCompleted,
    history: CitizenHistory,
    touchpoint: TouchpointConfig,
    policy: PolicyConfig,
    now: datetime,
) -> tuple[SkipReason, str] | None:
    """Apply the rules that depend on the contact alone (2-7)."""
    citizen = contact.data.citizen
    if history.opted_out or citizen.consent.opted_out:
        return SkipReason.OPTED_OUT, "the citizen opted out of feedback requests"
    if policy.respect_non_disclosure and citizen.non_disclosure:
        return SkipReason.NON_DISCLOSURE, "non-disclosure for safety (turvakielto)"
    if policy.skip_sensitive_touchpoints and touchpoint.sensitive:
        return SkipReason.SENSITIVE_TOUCHPOINT, "the touchpoint is marked sensitive"
    age = age_for_policy(citizen, now, policy)
    if policy.min_age > 0:
        if age is None and not policy.survey_unknown_age:
            return SkipReason.UNDER_AGE, "age unknown and the policy asks only known adults"
        if age is not None and age < policy.min_age:
            return SkipReason.UNDER_AGE, f"younger than the minimum age {policy.min_age}"
    age_of_contact = now - contact.data.contact.ended_at
    if age_of_contact > policy.max_contact_age:
        hours = int(age_of_contact.total_seconds() // 3600)
        return SkipReason.TOO_OLD, f"the contact ended {hours} h ago, more than the maximum age"
    consent = citizen.consent
    consented = {SurveyChannel.SMS: consent.sms, SurveyChannel.EMAIL: consent.email}
    if not any(consented[channel] for channel in touchpoint.channel_preference):
        channels = ", ".join(channel.value for channel in touchpoint.channel_preference)
        return SkipReason.NO_CONSENT, f"no consent for the touchpoint's channels ({channels})"
    return None


def choose_channel(citizen: Citizen, touchpoint: TouchpointConfig) -> SurveyChannel | None:
    """Take the first preferred channel with both consent and a way to reach the citizen.

    SMS needs a mobile number: a landline never receives the text.
    """
    for channel in touchpoint.channel_preference:
        if channel is SurveyChannel.SMS:
            if (
                citizen.consent.sms
                and citizen.phone is not None
                and is_mobile_number(citizen.phone)
            ):
                return channel
        elif citizen.consent.email and citizen.email is not None:
            return channel
    return None


def _is_newer(record: SurveyRecord, ended_at: datetime, identity: ContactIdentity) -> bool:
    """Order contacts by end time, then by id and source, so that ties still decide the same way."""
    return (record.contact_ended_at, record.contact_id, record.source or "") > (
        ended_at,
        identity.contact_id,
        identity.source,
    )


def _retained(
    surveys: tuple[SurveyRecord, ...], policy: PolicyConfig, now: datetime
) -> tuple[SurveyRecord, ...]:
    horizon = now - max(policy.frequency_cap_window, policy.episode_window, timedelta(0))
    return tuple(
        record
        for record in surveys
        if record.pending(now) or max(record.send_at, record.contact_ended_at) >= horizon
    )


def decide(  # noqa: PLR0911 - one return per rule reads best as a rule table
    contact: ContactCompleted,
    history: CitizenHistory,
    touchpoint: TouchpointConfig,
    policy: PolicyConfig,
    now: datetime,
    *,
    citizen_key: str,
    is_holiday: HolidayCalendar,
) -> Decision:
    """Decide whether, when and how to survey one contact (see the module for the rules)."""
    identity = ContactIdentity.of(contact)
    contact_id = identity.contact_id
    ended_at = contact.data.contact.ended_at
    touchpoint_id = contact.data.touchpoint.id
    survey_id = survey_id_for(identity.source, contact_id)

    def skip(reason: SkipReason, detail: str, new_history: CitizenHistory) -> Skip:
        return Skip(
            survey_id=survey_id,
            citizen_key=citizen_key,
            contact_id=contact_id,
            touchpoint_id=touchpoint_id,
            reason=reason,
            detail=detail,
            history=new_history,
            contact_source=identity.source,
        )

    if history.has_decided(identity):
        repeat = history.with_repeat(identity, policy.remembered_contacts)
        return skip(SkipReason.DUPLICATE, "this contact was decided before", repeat)

    surveys = _retained(history.surveys, policy, now)
    decided = history.with_decided(identity, policy.remembered_contacts, surveys)

    ineligible = _eligibility_skip(contact, history, touchpoint, policy, now)
    if ineligible is not None:
        return skip(*ineligible, decided)

    superseded: tuple[SurveyRecord, ...] = ()
    if policy.supersede_pending:
        pending = [record for record in surveys if record.pending(now)]
        if any(_is_newer(record, ended_at, identity) for record in pending):
            return skip(
                SkipReason.SUPERSEDED,
                "a newer contact of the citizen is already scheduled",
                decided,
            )
        superseded = tuple(pending)
    standing = tuple(record for record in surveys if record not in superseded)

    episode = (
        contact.data.touchpoint.service if policy.episode_scope == "service" else touchpoint_id
    )
    if policy.episode_window > timedelta(0) and any(
        record.episode_key(policy) == episode
        and abs(ended_at - record.contact_ended_at) < policy.episode_window
        for record in standing
    ):
        return skip(
            SkipReason.EPISODE,
            f"a contact of the same {policy.episode_scope} was surveyed within the episode window",
            decided,
        )

    if not is_sampled(identity.source, contact_id, touchpoint.sampling_rate):
        return skip(
            SkipReason.NOT_SAMPLED,
            f"outside the sampling rate {touchpoint.sampling_rate:g}",
            decided,
        )

    times = survey_times(ended_at, touchpoint, policy, now, is_holiday=is_holiday)
    window = policy.frequency_cap_window
    recent = sum(1 for record in standing if abs(record.send_at - times.send_at) < window)
    if recent >= policy.frequency_cap:
        return skip(
            SkipReason.FREQUENCY_CAP,
            f"{recent} survey(s) within {window.days} days already",
            decided,
        )

    citizen = contact.data.citizen
    channel = choose_channel(citizen, touchpoint)
    if channel is None:
        return skip(
            SkipReason.NO_CHANNEL,
            "no mobile number or address for a consented channel",
            decided,
        )

    record = SurveyRecord(
        survey_id=survey_id,
        contact_id=contact_id,
        touchpoint_id=touchpoint_id,
        service=contact.data.touchpoint.service,
        contact_ended_at=ended_at,
        send_at=times.send_at,
        source=identity.source,
    )
    return Schedule(
        survey_id=survey_id,
        citizen_key=citizen_key,
        contact_id=contact_id,
        touchpoint_id=touchpoint_id,
        channel=channel,
        language=touchpoint.language_for(citizen.language),
        scale=touchpoint.scale,
        contact_ended_at=ended_at,
        send_at=times.send_at,
        reminder_at=times.reminder_at,
        expires_at=times.expires_at,
        history=replace(decided, surveys=(*standing, record)),
        superseded=superseded,
        contact_source=identity.source,
        service=contact.data.touchpoint.service,
        touchpoint_channel=contact.data.touchpoint.channel,
        team=contact.data.contact.context.team,
        case_type=contact.data.contact.context.case_type,
        queue_wait_seconds=contact.data.contact.context.queue_wait_seconds,
    )
