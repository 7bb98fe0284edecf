"""What the metrics stage forwards and counts for silence detection, by record type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.silence import Signal
from schemas.surveys import SkipReason, SurveySent, SurveySkipped
from streams.metrics import SILENCE_TICK, _forwarded_touchpoint, _signal_of

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COMMON = {
    "survey_id": "s-1",
    "citizen_key": "c" * 64,
    "contact_id": "k-1",
    "touchpoint_id": "tp-1",
    "occurred_at": AT,
}


def test_a_decision_counts_as_a_contact_of_its_touchpoint() -> None:
    """A front-office integration that stops shows first as decisions that stop."""
    value = SurveySkipped(**COMMON, reason=SkipReason.NOT_SAMPLED).model_dump_json().encode()
    assert _signal_of(value) is Signal.CONTACTS
    assert _forwarded_touchpoint(value) == "tp-1"


def test_a_duplicate_contact_is_not_counted_twice() -> None:
    """A contact told twice is one contact: counting both would hide half a collapse."""
    value = SurveySkipped(**COMMON, reason=SkipReason.DUPLICATE).model_dump_json().encode()
    assert _forwarded_touchpoint(value) is None


def test_a_send_counts_as_a_delivery() -> None:
    """Deliveries stop when the SMS route dies, even while contacts keep coming."""
    value = SurveySent(**COMMON, channel="sms").model_dump_json().encode()
    assert _signal_of(value) is Signal.DELIVERIES
    assert _forwarded_touchpoint(value) == "tp-1"


@pytest.mark.parametrize("value", [SILENCE_TICK, b'{"type":"SurveyFailed"}', b"not json"])
def test_ticks_and_other_records_are_no_activity(value: bytes) -> None:
    """A tick or a failure is not traffic; counting it would mask a silence."""
    assert _signal_of(value) is None
    assert _forwarded_touchpoint(value) is None


def test_a_record_that_only_quotes_a_type_name_is_not_forwarded() -> None:
    """An unreadable record must not reach the detector, which trusts what it is given."""
    assert _forwarded_touchpoint(b'{"type":"SurveySent"}') is None
