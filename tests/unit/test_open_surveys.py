"""The web service's index of open surveys, folded from the surveys and vault topics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.web.open_surveys import SurveyIndex, decode_record, phone_hash
from schemas.base import Language, Scale, SurveyChannel
from schemas.surveys import SurveyExpired, SurveyScheduled, SurveySent
from schemas.vault import ContactDetails

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PHONE = "+358401234567"
CITIZEN = "cd" * 32
SECRET = b"index-test-secret-with-32-bytes!"


def _common(survey_id: str) -> dict[str, str]:
    return {
        "survey_id": survey_id,
        "citizen_key": CITIZEN,
        "contact_id": f"c-{survey_id}",
        "touchpoint_id": "tp",
    }


def _open(index: SurveyIndex, survey_id: str, sent: datetime, *, days: int = 3) -> None:
    index.apply(
        ContactDetails(
            survey_id=survey_id,
            citizen_key=CITIZEN,
            phone=PHONE,
            language=Language.SV,
            stored_at=sent,
        )
    )
    index.apply(
        SurveyScheduled(
            **_common(survey_id),
            occurred_at=sent,
            channel=SurveyChannel.SMS,
            language=Language.SV,
            scale=Scale.NPS_11,
            contact_ended_at=sent,
            send_at=sent,
            expires_at=sent + timedelta(days=days),
        )
    )
    index.apply(
        SurveySent(
            **_common(survey_id),
            occurred_at=sent,
            channel=SurveyChannel.SMS,
            provider_message_id=f"SM-{survey_id}",
        )
    )


def test_a_reply_goes_to_the_latest_sent_survey_that_is_still_open() -> None:
    """A citizen answers the question they got last, never a closed one."""
    index = SurveyIndex(secret=SECRET)
    _open(index, "old", T0, days=1)
    _open(index, "new", T0 + timedelta(hours=2))
    found = index.open_for_phone(PHONE, T0 + timedelta(hours=3))
    assert found is not None
    assert (found.survey_id, found.scale, found.language) == ("new", Scale.NPS_11, Language.SV)
    assert index.open_for_phone(PHONE, T0 + timedelta(days=4)) is None
    assert index.open_for_phone("+358409999999", T0) is None


def test_a_closed_survey_is_forgotten_with_its_message_and_number() -> None:
    """Memory stays bounded by the open surveys, and closed ones take no answers."""
    index = SurveyIndex(secret=SECRET)
    _open(index, "s", T0)
    assert index.by_message("SM-s") is not None
    assert index.citizen_of_phone(PHONE) == (CITIZEN, "s")
    index.apply(SurveyExpired(**_common("s"), occurred_at=T0, was_sent=True))
    assert index.get("s") is None
    assert index.by_message("SM-s") is None
    assert index.citizen_of_phone(PHONE) is None


def test_prune_drops_surveys_past_expiry_and_grace_only() -> None:
    """A restart replays 35 days of surveys; only the live ones may stay in memory."""
    index = SurveyIndex(secret=SECRET, grace=timedelta(days=1))
    _open(index, "s", T0, days=1)
    assert index.prune(T0 + timedelta(days=1, hours=23)) == 0
    assert index.prune(T0 + timedelta(days=2)) == 1
    assert index.surveys == {}


def test_numbers_are_kept_as_keyed_hashes_only() -> None:
    """The index must hold no phone number in the clear."""
    index = SurveyIndex(secret=SECRET)
    _open(index, "s", T0)
    assert PHONE not in repr(index)
    assert phone_hash(SECRET, PHONE) != phone_hash(b"another-secret-of-32-bytes-long!", PHONE)


def test_tombstones_and_junk_decode_to_nothing() -> None:
    """A compacted vault holds tombstones; the index must skip them and bad records."""
    assert decode_record(None) is None
    assert decode_record(b"") is None
    assert decode_record(b'{"type": "SurveySent"}') is None
    sent = SurveySent(**_common("s"), occurred_at=T0, channel=SurveyChannel.SMS)
    assert decode_record(sent.model_dump_json().encode()) == sent
