"""The erasure plan: which records of a citizen are deleted, called off and opted out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.erasure import (
    ANSWER_ID_PREFIX,
    BadIdentity,
    Identity,
    derived_key,
    identity_of,
    plan_erasure,
)
from engine.pseudonym import citizen_key
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import Citizen
from schemas.responses import CommentReceived
from schemas.surveys import SkipReason, SurveyEvent, SurveyExpired, SurveyScheduled
from schemas.topics import comment_key
from schemas.vault import ContactDetails

SECRET = b"unit-test-pseudonymisation-key-0123456789"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PHONE = "+358401234567"
OTHER_PHONE = "+358409876543"


def _details(
    survey_id: str, key: str, *, phone: str | None = PHONE, email: str | None = None
) -> ContactDetails:
    return ContactDetails(
        survey_id=survey_id,
        citizen_key=key,
        phone=phone,
        email=email,
        language=Language.FI,
        stored_at=NOW - timedelta(minutes=5),
    )


def _scheduled(survey_id: str, key: str) -> SurveyScheduled:
    return SurveyScheduled(
        survey_id=survey_id,
        citizen_key=key,
        contact_id=f"contact-{survey_id}",
        touchpoint_id="phone-service",
        occurred_at=NOW - timedelta(minutes=5),
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=NOW - timedelta(minutes=6),
        send_at=NOW,
        expires_at=NOW + timedelta(days=2),
    )


def _closed(scheduled: SurveyScheduled) -> SurveyExpired:
    common = scheduled.model_dump(include=set(SurveyEvent.model_fields) - {"type"})
    return SurveyExpired(**common, was_sent=True)


def _key(phone: str | None = PHONE, email: str | None = None) -> str:
    return citizen_key(SECRET, Citizen(phone=phone, email=email), source="")


@pytest.mark.parametrize(
    ("phone", "email", "expected"),
    [
        ("+358 40 123 4567", None, Identity(phone=PHONE)),
        (None, "Matti.Meikalainen@Example.FI", Identity(email="Matti.Meikalainen@example.fi")),
    ],
)
def test_identifiers_are_normalised_as_intake_stores_them(
    phone: str | None, email: str | None, expected: Identity
) -> None:
    """A number typed with spaces must still find the E.164 form the vault holds."""
    assert identity_of(phone=phone, email=email) == expected


@pytest.mark.parametrize(
    ("phone", "email"),
    [("999", None), (None, "not-an-address"), (None, None), (PHONE, "a@example.fi")],
)
def test_bad_identifiers_are_refused_without_quoting_them(
    phone: str | None, email: str | None
) -> None:
    """An operator's typo must get a clear refusal, and the reason must not leak the input."""
    result = identity_of(phone=phone, email=email)
    assert isinstance(result, BadIdentity)
    for given in (phone, email):
        assert given is None or given not in result.reason


def test_derived_key_is_the_key_intake_gives_a_citizen_without_a_reference() -> None:
    """Erasure must find the records intake keyed, or it erases nothing."""
    identity = identity_of(phone=PHONE)
    assert isinstance(identity, Identity)
    assert derived_key(SECRET, identity) == _key()
    by_mail = identity_of(email="Asiakas@Example.fi")
    assert isinstance(by_mail, Identity)
    assert derived_key(SECRET, by_mail) == _key(None, "asiakas@example.fi")


def test_plan_tombstones_the_citizens_vault_entries_and_calls_off_their_open_surveys() -> None:
    """Every live copy of the number goes, and no survey is sent to it afterwards."""
    key = _key()
    reference_key = "ab" * 32  # a key derived from a source-system reference
    other = _key(OTHER_PHONE)
    vault = {
        "s-1": _details("s-1", key),
        "s-2": _details("s-2", reference_key),  # same phone, reference-based key
        "s-3": _details("s-3", other, phone=OTHER_PHONE),
        "s-4": _details("s-4", reference_key, phone=None, email="uusi@example.fi"),
    }
    events: list[SurveyEvent] = [
        _scheduled("s-1", key),
        _scheduled("s-2", reference_key),
        _scheduled("s-3", other),
        _scheduled("s-4", reference_key),
        _scheduled("s-0", key),
        _closed(_scheduled("s-0", key)),
    ]
    comments = _comments(("c-1", "s-0"), ("c-2", "s-3"), ("c-3", "s-2"), ("c-4", "s-2"))
    identity = Identity(phone=PHONE)
    plan = plan_erasure(
        identity, key, vault=vault, survey_events=events, comments=comments, now=NOW
    )
    assert plan.citizen_keys == {key, reference_key}
    # The reference key ties s-4 (another address, same person) to the request too.
    assert plan.vault_tombstones == ("s-1", "s-2", "s-4")
    assert [skip.survey_id for skip in plan.call_offs] == ["s-1", "s-2", "s-4"]
    assert all(skip.reason is SkipReason.OPTED_OUT for skip in plan.call_offs)
    assert [(o.survey_id, o.citizen_key) for o in plan.opt_outs] == [
        ("s-1", key),
        ("s-2", reference_key),
        ("s-4", reference_key),
    ]
    assert all(o.answer_id == ANSWER_ID_PREFIX + o.survey_id for o in plan.opt_outs)
    assert plan.surveys == {"s-0", "s-1", "s-2", "s-4"}
    # Every comment on their surveys, the closed s-0 and both of s-2's; not s-3's.
    assert plan.comment_tombstones == ("s-0|c-1", "s-2|c-3", "s-2|c-4")
    for event in (*plan.call_offs, *plan.opt_outs):
        assert PHONE not in event.model_dump_json()


def _comments(*ids: tuple[str, str]) -> dict[str, CommentReceived]:
    """Give the comments topic as compaction leaves it: latest comment per key."""
    return {
        comment_key(survey_id, answer_id): CommentReceived(
            answer_id=answer_id, survey_id=survey_id, text="Kiitos [phone]", received_at=NOW
        )
        for answer_id, survey_id in ids
    }


def test_comments_on_a_closed_survey_are_tombstoned_even_with_nothing_else_left() -> None:
    """A comment outlives the contact details; the surveys topic still ties it to the person."""
    key = _key()
    scheduled = _scheduled("s-1", key)
    other = _scheduled("s-2", _key(OTHER_PHONE))
    plan = plan_erasure(
        Identity(phone=PHONE),
        key,
        vault={},
        survey_events=[scheduled, _closed(scheduled), other],
        comments=_comments(("c-1", "s-1"), ("c-2", "s-2")),
        now=NOW,
    )
    assert plan.vault_tombstones == ()
    assert plan.call_offs == ()
    assert plan.comment_tombstones == ("s-1|c-1",)
    assert not plan.is_empty


def test_a_comment_is_tombstoned_under_the_key_it_was_found_with() -> None:
    """A key written otherwise than comment_key gives it must still be the one tombstoned."""
    key = _key()
    comment = CommentReceived(answer_id="c-1", survey_id="s-1", text="Hyvä", received_at=NOW)
    plan = plan_erasure(
        Identity(phone=PHONE),
        key,
        vault={},
        survey_events=[_scheduled("s-1", key)],
        comments={"legacy-key": comment},
        now=NOW,
    )
    assert plan.comment_tombstones == ("legacy-key",)


def test_a_repeated_request_plans_nothing() -> None:
    """The command is idempotent: once the vault holds tombstones, nothing is left to write."""
    key = _key()
    events: list[SurveyEvent] = [_scheduled("s-1", key)]
    comments = _comments(("c-1", "s-1"))
    first = plan_erasure(
        Identity(phone=PHONE),
        key,
        vault={"s-1": _details("s-1", key)},
        survey_events=events,
        comments=comments,
        now=NOW,
    )
    assert not first.is_empty
    assert first.comment_tombstones == ("s-1|c-1",)
    events.extend(first.call_offs)
    for tombstoned in first.comment_tombstones:  # compaction's view: tombstoned keys are gone
        del comments[tombstoned]
    second = plan_erasure(
        Identity(phone=PHONE), key, vault={}, survey_events=events, comments=comments, now=NOW
    )
    assert second.is_empty
    assert second.surveys == {"s-1"}


def test_a_finished_survey_gets_only_its_tombstone() -> None:
    """A survey already closed needs no call-off; its late vault record still goes."""
    key = _key()
    scheduled = _scheduled("s-1", key)
    closed = _closed(scheduled)
    plan = plan_erasure(
        Identity(phone=PHONE),
        key,
        vault={"s-1": _details("s-1", key)},
        survey_events=[scheduled, closed],
        now=NOW,
    )
    assert plan.vault_tombstones == ("s-1",)
    assert plan.call_offs == ()
    assert plan.opt_outs == ()


def test_email_matching_ignores_case_as_the_citizen_key_does() -> None:
    """Mailboxes are case-insensitive in practice; a capital letter must not hide an entry."""
    key = _key(None, "asiakas@example.fi")
    vault = {"s-9": _details("s-9", "cd" * 32, phone=None, email="ASIAKAS@example.fi")}
    plan = plan_erasure(
        Identity(email="asiakas@example.fi"), key, vault=vault, survey_events=[], now=NOW
    )
    assert plan.vault_tombstones == ("s-9",)
    # Without its SurveyScheduled the survey cannot be called off, but it is opted out.
    assert plan.call_offs == ()
    assert [o.survey_id for o in plan.opt_outs] == ["s-9"]
