"""What the metrics stage forwards and counts for silence detection, by record type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.silence import ActivityConfig, Signal
from schemas.base import Scale
from schemas.surveys import SkipReason, SurveySent, SurveySkipped
from streams.metrics import SILENCE_TICK, Activity, _Detector, _forwarded_touchpoint, _signal_of

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


def test_activity_counts_come_back_from_the_tables_after_a_restart() -> None:
    """Baselines take weeks to learn; a restart or a rebalance must not forget them."""
    config = ActivityConfig(window=timedelta(hours=1), weeks=2, time_zone="UTC")
    table: dict[str, str] = {}
    detectors: dict[str, str] = {}
    live = Activity(config)
    stored = _Detector.load(None, "tp-1", Scale.CSAT_5)
    for minutes in range(0, 600, 10):
        at = AT + timedelta(minutes=minutes)
        live.count(table, detectors, "tp-1", Signal.CONTACTS, at, 3, at)
        answers = live.count(table, detectors, "tp-1", Signal.ANSWERS, at, 3, at)
        stored.keep_answers(answers, 3)
    detectors["tp-1"] = stored.dump()
    assert not any("|answers|" in key for key in table)  # answers travel with the detector

    restarted = Activity(config)
    mirror = restarted.loaded(table, detectors)
    assert restarted.partition_of == {"tp-1": 3}
    before = live.loaded(table, detectors)["tp-1"]
    for signal in (Signal.CONTACTS, Signal.ANSWERS):
        assert mirror["tp-1"][signal].hourly == before[signal].hourly
        assert mirror["tp-1"][signal].first_at == before[signal].first_at
        assert mirror["tp-1"][signal].recent == {}  # in memory only: the grace covers it


def test_pruning_removes_old_buckets_from_the_table() -> None:
    """State stays bounded: weeks-old buckets leave the changelog too."""
    config = ActivityConfig(window=timedelta(hours=1), weeks=1, time_zone="UTC")
    table: dict[str, str] = {}
    activity = Activity(config)
    activity.count(table, {}, "tp-1", Signal.DELIVERIES, AT, 0, AT)
    later = AT + timedelta(weeks=5)
    counts = activity.prune(table, {}, "tp-1", later)
    assert counts[Signal.DELIVERIES].hourly == {}
    assert list(table) == ["tp-1|deliveries|first"]
