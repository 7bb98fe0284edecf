"""Erasure finds a citizen by every identifier their contacts carried, after the survey closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.erasure import (
    BadIdentity,
    ContactSeen,
    Identity,
    derived_key,
    identity_of,
    plan_erasure,
    seen,
)
from engine.pseudonym import citizen_key
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import Citizen
from schemas.responses import CommentReceived
from schemas.surveys import SurveyEvent, SurveyExpired, SurveyScheduled
from schemas.topics import comment_key

SECRET = b"unit-test-pseudonymisation-key-0123456789"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PHONE = "+358401234567"
SOURCE = "/crm/helsinki"
#: The citizen as the CRM sends them: its own reference, and a phone number.
CITIZEN = Citizen(id="cust-9", phone=PHONE, email="Maija@Example.fi")
REFERENCE_KEY = citizen_key(SECRET, CITIZEN, source=SOURCE)


def _closed_survey(survey_id: str, key: str) -> list[SurveyEvent]:
    scheduled = SurveyScheduled(
        survey_id=survey_id,
        citizen_key=key,
        contact_id="contact-1",
        touchpoint_id="walk-in",
        occurred_at=NOW - timedelta(days=3),
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=NOW - timedelta(days=3),
        send_at=NOW - timedelta(days=3),
        expires_at=NOW - timedelta(days=1),
    )
    common = scheduled.model_dump(include=set(SurveyEvent.model_fields) - {"type"})
    return [scheduled, SurveyExpired(**common, was_sent=True)]


def _comment(survey_id: str) -> dict[str, CommentReceived]:
    comment = CommentReceived(
        answer_id="a-1", survey_id=survey_id, text="Maija kiittää", received_at=NOW
    )
    return {comment_key(survey_id, "a-1"): comment}


@pytest.mark.parametrize(
    "identity",
    [
        Identity(phone=PHONE),
        Identity(email="maija@example.fi"),
        Identity(citizen_id="cust-9", source=SOURCE),
        Identity(citizen_key=REFERENCE_KEY),
    ],
    ids=["phone", "email", "reference", "key"],
)
def test_a_closed_surveys_comment_is_found_through_the_contact_events(identity: Identity) -> None:
    """The vault forgot the number when the survey closed; the contact still ties the key."""
    sighting = seen(identity, SECRET, "palaute.contacts.v1", SOURCE, CITIZEN)
    assert sighting == ContactSeen("palaute.contacts.v1", REFERENCE_KEY)
    plan = plan_erasure(
        identity,
        derived_key(SECRET, identity),
        vault={},
        survey_events=_closed_survey("sv-closed", REFERENCE_KEY),
        comments=_comment("sv-closed"),
        contacts=[sighting],
        now=NOW,
    )
    assert REFERENCE_KEY in plan.citizen_keys
    assert plan.surveys == {"sv-closed"}
    assert plan.comment_tombstones == ("sv-closed|a-1",)
    assert plan.contacts_seen == {"palaute.contacts.v1": 1}
    assert not plan.is_empty


def test_without_the_contact_events_a_phone_number_cannot_reach_a_reference_key() -> None:
    """What went wrong before: the number's own key finds nothing of a reference-keyed survey."""
    plan = plan_erasure(
        Identity(phone=PHONE),
        derived_key(SECRET, Identity(phone=PHONE)),
        vault={},
        survey_events=_closed_survey("sv-closed", REFERENCE_KEY),
        comments=_comment("sv-closed"),
        now=NOW,
    )
    assert plan.comment_tombstones == ()
    # ...while the reference and its source, or the key, reach it with no contact left.
    for identity in (
        Identity(citizen_id="cust-9", source=SOURCE),
        Identity(citizen_key=REFERENCE_KEY),
    ):
        direct = plan_erasure(
            identity,
            derived_key(SECRET, identity),
            vault={},
            survey_events=_closed_survey("sv-closed", REFERENCE_KEY),
            comments=_comment("sv-closed"),
            now=NOW,
        )
        assert direct.comment_tombstones == ("sv-closed|a-1",)


def test_a_reference_of_another_source_is_another_citizen() -> None:
    """Customer cust-9 of the booking system is not the CRM's cust-9."""
    identity = Identity(citizen_id="cust-9", source="/booking")
    assert seen(identity, SECRET, "t", SOURCE, Citizen(id="cust-9", phone="+358409999999")) is None
    assert derived_key(SECRET, identity) != REFERENCE_KEY


def test_the_cheap_test_never_misses_a_contact_the_full_test_would_find() -> None:
    """The prefilter may only let through too much; a national-form number must pass it."""
    identity = Identity(phone=PHONE)
    assert identity.may_name({"phone": "040 123 4567"}, SOURCE)
    assert identity.may_name({"phone": "+358 40 1234567"}, SOURCE)
    assert not identity.may_name({"phone": "+358 40 7654321"}, SOURCE)
    assert not identity.may_name({"email": "maija@example.fi"}, SOURCE)
    assert Identity(email="maija@example.fi").may_name({"email": " Maija@Example.FI"}, SOURCE)
    reference = Identity(citizen_id="cust-9", source=SOURCE)
    assert reference.may_name({"id": "cust-9"}, SOURCE)
    assert not reference.may_name({"id": "cust-9"}, "/booking")


def test_a_record_nobody_could_read_is_recognised_by_the_identifier_it_spells() -> None:
    """A dead letter keeps the sender's bytes; the report must count it among what stays."""
    assert Identity(phone=PHONE).appears_in(b'{"phone": "0401234567", broken')
    assert Identity(email="maija@example.fi").appears_in(b"MAIJA@EXAMPLE.FI")
    assert Identity(citizen_id="cust-9", source=SOURCE).appears_in(b'{"id":"CUST-9"')
    assert not Identity(phone=PHONE).appears_in(b'{"phone": "0407654321"}')


def test_a_record_without_a_key_adds_no_key_and_is_still_counted() -> None:
    """An empty key would make every record look like the citizen's."""
    plan = plan_erasure(
        Identity(phone=PHONE),
        derived_key(SECRET, Identity(phone=PHONE)),
        vault={},
        survey_events=[],
        contacts=[ContactSeen("palaute.deadletter.v1", "")],
        now=NOW,
    )
    assert "" not in plan.citizen_keys
    assert plan.contacts_seen == {"palaute.deadletter.v1": 1}
    assert not plan.mentions(b"a record of somebody else")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"citizen_id": "cust-9", "source": SOURCE}, Identity(citizen_id="cust-9", source=SOURCE)),
        ({"key": REFERENCE_KEY}, Identity(citizen_key=REFERENCE_KEY)),
    ],
)
def test_a_reference_or_a_key_is_an_identifier(given: dict[str, str], expected: Identity) -> None:
    """A citizen known to the front office only by its own reference can still be forgotten."""
    assert identity_of(**given) == expected


@pytest.mark.parametrize(
    "given",
    [
        {"citizen_id": "cust-9"},  # a reference is unique only inside its source
        {"source": SOURCE},
        {"citizen_id": "cust 9", "source": SOURCE},
        {"citizen_id": "cust-9", "source": "/crm with space"},
        {"key": "NOT-A-KEY"},
        {"key": REFERENCE_KEY, "phone": PHONE},
        {"citizen_id": "cust-9", "source": SOURCE, "email": "a@example.fi"},
    ],
)
def test_incomplete_or_doubled_identifiers_are_refused(given: dict[str, str]) -> None:
    """An operator's mistake must be refused before anything is read, and never quoted."""
    result = identity_of(**given)
    assert isinstance(result, BadIdentity)
    for value in given.values():
        assert value not in result.reason


def test_the_key_of_a_reference_is_the_key_intake_gives_it() -> None:
    """Erasure must derive the very key intake gave the contact, or it finds nothing."""
    identity = identity_of(citizen_id="cust-9", source=SOURCE)
    assert isinstance(identity, Identity)
    assert derived_key(SECRET, identity) == REFERENCE_KEY
