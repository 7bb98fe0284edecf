"""What the metrics stage forwards and counts for silence detection, by record type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.silence import ActivityConfig, Signal
from schemas.base import Scale
from schemas.surveys import SkipReason, SurveySent, SurveySkipped
from streams.stages.metrics_mirrors import ACTIVITY_TABLE, DETECTOR_TABLE, Activity
from streams.stages.metrics_rules import (
    SILENCE_TICK,
    DetectorEntry,
    forwarded_touchpoint,
    signal_of,
)

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
    assert signal_of(value) is Signal.CONTACTS
    assert forwarded_touchpoint(value) == "tp-1"


def test_a_duplicate_contact_is_not_counted_twice() -> None:
    """A contact told twice is one contact: counting both would hide half a collapse."""
    value = SurveySkipped(**COMMON, reason=SkipReason.DUPLICATE).model_dump_json().encode()
    assert forwarded_touchpoint(value) is None


def test_a_send_counts_as_a_delivery() -> None:
    """Deliveries stop when the SMS route dies, even while contacts keep coming."""
    value = SurveySent(**COMMON, channel="sms").model_dump_json().encode()
    assert signal_of(value) is Signal.DELIVERIES
    assert forwarded_touchpoint(value) == "tp-1"


@pytest.mark.parametrize("value", [SILENCE_TICK, b'{"type":"SurveyFailed"}', b"not json"])
def test_ticks_and_other_records_are_no_activity(value: bytes) -> None:
    """A tick or a failure is not traffic; counting it would mask a silence."""
    assert signal_of(value) is None
    assert forwarded_touchpoint(value) is None


def test_a_record_that_only_quotes_a_type_name_is_not_forwarded() -> None:
    """An unreadable record must not reach the detector, which trusts what it is given."""
    assert forwarded_touchpoint(b'{"type":"SurveySent"}') is None


class Store(dict[str, str]):
    """A stage's tables in memory, keyed ``<table>/<key>``, as the runtimes give them."""

    def scan(self, table: str) -> list[tuple[str, str]]:
        """Give one table's entries."""
        prefix = f"{table}/"
        return [
            (key[len(prefix) :], value) for key, value in self.items() if key.startswith(prefix)
        ]

    def apply(self, writes: dict[str, Any]) -> None:
        """Store what a record asked for (None deletes)."""
        for key, value in writes.items():
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value if isinstance(value, str) else value.dump()


def test_activity_counts_come_back_from_the_tables_after_a_restart() -> None:
    """Baselines take weeks to learn; a restart or a rebalance must not forget them."""
    config = ActivityConfig(window=timedelta(hours=1), weeks=2, time_zone="UTC")
    store = Store()
    live = Activity(config)
    stored = DetectorEntry.load(None, "tp-1", Scale.CSAT_5)
    for minutes in range(0, 600, 10):
        at = AT + timedelta(minutes=minutes)
        writes: dict[str, Any] = {}
        live.count(store, writes, "tp-1", Signal.CONTACTS, at, 3, at)
        answers = live.count(store, writes, "tp-1", Signal.ANSWERS, at, 3, at)
        stored.keep_answers(answers, 3)
        store.apply(writes)
    store[f"{DETECTOR_TABLE}/tp-1"] = stored.dump()
    # Answers travel with the detector entry.
    assert not any("|answers|" in key for key, _value in store.scan(ACTIVITY_TABLE))

    restarted = Activity(config)
    mirror = restarted.loaded(store)
    assert restarted.partition_of == {"tp-1": 3}
    before = live.loaded(store)["tp-1"]
    for signal in (Signal.CONTACTS, Signal.ANSWERS):
        assert mirror["tp-1"][signal].hourly == before[signal].hourly
        assert mirror["tp-1"][signal].first_at == before[signal].first_at
        assert mirror["tp-1"][signal].recent == {}  # in memory only: the grace covers it


def test_pruning_removes_old_buckets_from_the_table() -> None:
    """State stays bounded: weeks-old buckets leave the changelog too."""
    config = ActivityConfig(window=timedelta(hours=1), weeks=1, time_zone="UTC")
    store = Store()
    activity = Activity(config)
    writes: dict[str, Any] = {}
    activity.count(store, writes, "tp-1", Signal.DELIVERIES, AT, 0, AT)
    store.apply(writes)
    later = AT + timedelta(weeks=5)
    writes = {}
    counts = activity.prune(store, writes, "tp-1", later)
    store.apply(writes)
    assert counts[Signal.DELIVERIES].hourly == {}
    assert [key for key, _value in store.scan(ACTIVITY_TABLE)] == ["tp-1|deliveries|first"]
