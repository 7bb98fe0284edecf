"""The metrics, roll-up and alerting stages' rules, one record at a time, without a runtime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.detection import DetectorConfig, TargetConfig
from engine.ledger import Ledger, Part
from schemas.alerts import AlertAcknowledged, AlertKind, AlertState, ScoreDropAlert
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating
from schemas.samples import SAMPLES
from schemas.surveys import SkipReason, SurveySkipped
from streams.partitioning import key_partition
from streams.runtime.model import Output, Record, stored_value
from streams.stages.alerting import NOT_AN_ALERT, DeliverAlerts, Notify, Seen, notified_key
from streams.stages.metrics import (
    ALERTS,
    BY_KEY,
    METRICS,
    ROLLUP,
    CountMetrics,
    ForwardActivity,
    Raised,
    detect,
)
from streams.stages.metrics_mirrors import DETECTOR_TABLE, LEDGER_TABLE, ROLLUP_TABLE
from streams.stages.metrics_rules import PUBLISH_TICK, SILENCE_TICK, DetectorEntry
from streams.stages.rollups import UNREADABLE_PART, CombineRollups

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "examples" / "palaute.toml")
PARTITIONS = 4
#: A Wednesday, ten in the morning (UTC).
T0 = datetime(2026, 2, 11, 10, 0, tzinfo=UTC)


def _partition_of(owner: str) -> int:
    return key_partition(owner.encode(), PARTITIONS)


def rating(survey: str, score: int, *, revision: int = 1, touchpoint: str = "tp-1") -> Rating:
    """Make a CSAT rating of a phone touchpoint, answered at T0 plus its revision in seconds."""
    return Rating(
        rating_id=f"{survey}.{revision}",
        survey_id=survey,
        revision=revision,
        touchpoint_id=touchpoint,
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=60.0,
        answered_at=T0 + timedelta(seconds=revision),
    )


class Store(dict[str, str]):
    """A stage's tables in memory, keyed ``<table>/<key>``, as the runtimes give them."""

    def scan(self, table: str) -> list[tuple[str, str]]:
        """Give one table's entries."""
        prefix = f"{table}/"
        found = [(key, value) for key, value in self.items() if key.startswith(prefix)]
        return [(key[len(prefix) :], value) for key, value in found]

    def take(self, output: Output) -> Output:
        """Store what a record asked for, as the runtime does once the batch is acknowledged."""
        for key, value in output.state.items():
            stored = stored_value(value)
            if stored is None:
                self.pop(key, None)
            else:
                self[key] = stored
        return output


class Metrics:
    """The metrics stage with its store, fed as the runtime feeds it."""

    def __init__(self) -> None:
        self.stage = CountMetrics(SETTINGS, ratings_topic="ratings", partition_of=_partition_of)
        self.store = Store()
        self.offset = 0

    def feed(self, topic: str, partition: int, key: bytes, value: bytes, now: datetime) -> Output:
        """Handle one record at ``now`` and store what it asked for."""
        self.offset += 1
        record = Record(topic, partition, self.offset, key, value)
        return self.store.take(self.stage.handle(self.store, record, now))

    def rating(self, value: Rating, now: datetime = T0) -> Output:
        """Handle a Rating in its touchpoint's partition of the ratings topic."""
        partition = _partition_of(f"touchpoint:{value.touchpoint_id}")
        body = value.model_dump_json().encode()
        return self.feed("ratings", partition, value.touchpoint_id.encode(), body, now)


def test_a_replayed_rating_is_not_fed_to_the_detector_twice() -> None:
    """The detector's replay memory: a rating it took is recognised by its id."""
    entry = DetectorEntry.fresh("tp-1", Scale.CSAT_5)
    first = rating("s-1", 4)
    stepped = detect(entry, first, DetectorConfig())
    assert stepped is not None
    entry.state, entry.target, _alerts = stepped
    entry.remember(first.rating_id)
    assert detect(entry, first, DetectorConfig()) is None
    assert detect(entry, rating("s-1", 2, revision=2), DetectorConfig()) is not None


def test_a_touchpoint_with_a_target_gets_a_second_step_after_each_rating() -> None:
    """Target breaches are judged after every rating, on the last week's answers."""
    targeted = DetectorConfig(target=TargetConfig(target=0.8))
    entries = {name: DetectorEntry.fresh("tp-1", Scale.CSAT_5) for name in ("plain", "targeted")}
    alerts: dict[str, list[Any]] = {"plain": [], "targeted": []}
    for number in range(40):
        each = rating(f"s-{number}", 1)
        for name, config in (("plain", DetectorConfig()), ("targeted", targeted)):
            entry = entries[name]
            stepped = detect(entry, each, config)
            assert stepped is not None
            entry.state, entry.target, found = stepped
            entry.remember(each.rating_id)
            alerts[name] += found
    assert alerts["plain"] == []
    assert entries["plain"].target == {}
    assert [(a.kind, a.state) for a in alerts["targeted"]] == [
        (AlertKind.TARGET_BREACH, AlertState.FIRING)
    ]


def test_a_replayed_or_older_revision_stores_nothing_and_raises_nothing() -> None:
    """Duplicates are not counted: the ledger and the detector both recognise a replay."""
    metrics = Metrics()
    first = metrics.rating(rating("s-1", 2))
    assert {key.split("/")[0] for key in first.state} == {LEDGER_TABLE, DETECTOR_TABLE}
    assert metrics.rating(rating("s-1", 2)).state == {}
    newer = metrics.rating(rating("s-1", 5, revision=2))
    assert f"{LEDGER_TABLE}/touchpoint:tp-1|r|s-1" in newer.state
    assert metrics.rating(rating("s-1", 2)).state == {}
    ledger = metrics.stage.ledgers.by_owner or {}
    [hour, *_] = ledger["touchpoint:tp-1"].figures([timedelta(hours=1)])
    assert (hour.count, hour.mean) == (1, 5.0)


def test_a_rating_in_another_partition_is_routed_once_to_its_touchpoints_partition() -> None:
    """Another partitioner's rating is counted where its touchpoint is, not where it landed."""
    metrics = Metrics()
    place = _partition_of("touchpoint:tp-1")
    value = rating("s-1", 3).model_dump_json().encode()
    output = metrics.feed("ratings", (place + 1) % PARTITIONS, b"tp-1", value, T0)
    [routed] = output.produce
    assert (routed.topic, routed.key, routed.partition) == (BY_KEY, b"touchpoint:tp-1", place)
    assert output.state == {}
    counted = metrics.feed("by-key", place, b"touchpoint:tp-1", value, T0)
    assert f"{LEDGER_TABLE}/touchpoint:tp-1|r|s-1" in counted.state


def test_a_publish_tick_publishes_the_changed_keys_of_its_partition_once() -> None:
    """Figures go out at most once per tick and key, and only from the key's own partition."""
    metrics = Metrics()
    metrics.rating(rating("s-1", 4))
    place = _partition_of("touchpoint:tp-1")
    elsewhere = metrics.feed("by-key", (place + 1) % PARTITIONS, b"tick", PUBLISH_TICK, T0)
    assert all(p.key != b"touchpoint:tp-1:1h" for p in elsewhere.produce)
    output = metrics.feed("by-key", place, b"tick", PUBLISH_TICK, T0)
    figures = [p.key for p in output.produce if p.topic == METRICS]
    assert b"touchpoint:tp-1:1h" in figures
    parts = [p for p in output.produce if p.topic == ROLLUP]
    assert {p.key for p in parts} == {
        f"channel:phone|{place}".encode(),
        f"service:tax|{place}".encode(),
    }
    again = metrics.feed("by-key", place, b"tick", PUBLISH_TICK, T0)
    assert again.produce == ()


def test_a_rebuilt_stage_counts_on_from_its_tables() -> None:
    """After a rebalance or a failed batch the tables are the truth, and no rating is lost."""
    metrics = Metrics()
    metrics.rating(rating("s-1", 4))
    metrics.stage.forget(moved=True)
    assert metrics.rating(rating("s-1", 4)).state == {}  # still a replay
    metrics.rating(rating("s-2", 2))
    ledger = (metrics.stage.ledgers.by_owner or {})["touchpoint:tp-1"]
    [hour, *_] = ledger.figures([timedelta(hours=1)])
    assert (hour.count, hour.mean) == (2, 3.0)


def _contact(number: int, at: datetime) -> bytes:
    skipped = SurveySkipped(
        survey_id=f"s-{number}",
        citizen_key="c" * 64,
        contact_id=f"k-{number}",
        touchpoint_id="tp-1",
        occurred_at=at,
        reason=SkipReason.NOT_SAMPLED,
    )
    return skipped.model_dump_json().encode()


def test_silence_is_judged_on_a_tick_only_a_window_after_the_start_and_after_a_move() -> None:
    """Contacts that stop raise a silence alert; a worker catching up judges nothing."""
    metrics = Metrics()
    place = _partition_of("touchpoint:tp-1")
    start = T0 - timedelta(weeks=SETTINGS.alerts.silence_weeks + 1)
    at, number = start, 0
    while at < T0 - timedelta(hours=2):
        metrics.feed("by-key", place, b"touchpoint:tp-1", _contact(number, at), at)
        at += timedelta(minutes=2)
        number += 1
    now = T0
    metrics.stage.forget(moved=True)  # partitions moved: wait one window again
    assert metrics.feed("by-key", place, b"tick", SILENCE_TICK, now).produce == ()
    later = now + SETTINGS.alerts.silence_window
    output = metrics.feed("by-key", place, b"tick", SILENCE_TICK, later)
    raised = [o.alert for o in output.observations if isinstance(o, Raised)]
    assert [(a.touchpoint_id, a.kind, a.state) for a in raised] == [
        ("tp-1", AlertKind.SILENCE, AlertState.FIRING)
    ]
    assert [p.topic for p in output.produce] == [ALERTS]
    other = metrics.feed("by-key", (place + 1) % PARTITIONS, b"tick", SILENCE_TICK, later)
    assert other.produce == ()


def _part(count: int) -> bytes:
    ledger = Ledger("channel:phone")
    for number in range(count):
        ledger.add_rating(rating(f"s-{count}-{number}", 4))
    part = Part.of(ledger)
    assert part is not None
    return part.dumps().encode()


def test_a_rollup_is_the_sum_of_the_latest_part_of_each_partition() -> None:
    """A part replaces the one before it from its partition; the parts of others add up."""
    stage = CombineRollups([timedelta(hours=1)], _partition_of)
    store = Store()
    place = _partition_of("channel:phone")
    for key, value in ((b"channel:phone|0", _part(1)), (b"channel:phone|0", _part(2))):
        store.take(stage.handle(store, Record("rollup", place, 0, key, value), T0))
    store.take(stage.handle(store, Record("rollup", place, 1, b"channel:phone|1", _part(3)), T0))
    assert sorted(key for key, _value in store.scan(ROLLUP_TABLE)) == [
        "channel:phone|0",
        "channel:phone|1",
    ]
    output = stage.handle(store, Record("rollup", place, 2, b"tick", PUBLISH_TICK), T0)
    [figures] = output.produce
    assert figures.key == b"channel:phone:1h"
    assert b'"count":5' in (figures.value or b"")
    bad = stage.handle(store, Record("rollup", place, 3, b"channel:phone|2", b"{"), T0)
    assert bad.rejection is not None
    assert bad.rejection.code == UNREADABLE_PART


def test_an_alert_state_is_notified_once_and_its_resolution_once_more() -> None:
    """The de-duplication decides; the notification itself is an effect for the wiring."""
    stage = DeliverAlerts()
    store = Store()

    def deliver(offset: int, value: bytes) -> Output:
        return store.take(stage.handle(store, Record("alerts", 0, offset, b"tp", value), T0))

    firing = ScoreDropAlert.model_validate(SAMPLES["score-drop-alert"](T0).model_dump())
    resolved = firing.model_copy(update={"state": AlertState.RESOLVED, "resolved_at": T0})
    alerts = (firing, firing, resolved)
    outputs = [deliver(n, alert.model_dump_json().encode()) for n, alert in enumerate(alerts)]
    assert [o.effects for o in outputs] == [(Notify(firing),), (), (Notify(resolved),)]
    assert [o.observations for o in outputs] == [
        (Seen(firing, duplicate=False),),
        (Seen(firing, duplicate=True),),
        (Seen(resolved, duplicate=False),),
    ]
    assert set(store) == {notified_key(firing), notified_key(resolved)}
    ack = AlertAcknowledged(
        alert_id=firing.alert_id,
        touchpoint_id=firing.touchpoint_id,
        acknowledged_by="ops",
        acknowledged_at=T0,
    )
    acknowledged = deliver(3, ack.model_dump_json().encode())
    assert (acknowledged.effects, acknowledged.state) == ((), {})
    junk = deliver(4, b'{"type": "ScoreDropAlert"}')
    assert junk.rejection is not None
    assert junk.rejection.code == NOT_AN_ALERT


def test_only_a_partition_with_changes_asks_for_a_publish_tick() -> None:
    """An idle worker writes no ticks; a started one publishes what its tables hold."""
    metrics = Metrics()
    place = _partition_of("touchpoint:tp-1")
    assert metrics.stage.has_changes(place)  # nothing loaded yet: the tables may hold changes
    metrics.feed("by-key", place, b"tick", PUBLISH_TICK, T0)
    assert not any(metrics.stage.has_changes(p) for p in range(PARTITIONS))
    metrics.rating(rating("s-1", 4))
    assert [metrics.stage.has_changes(p) for p in range(PARTITIONS)] == [
        p == place for p in range(PARTITIONS)
    ]
    metrics.feed("by-key", place, b"tick", PUBLISH_TICK, T0)
    assert not metrics.stage.has_changes(place)
    rollups = CombineRollups([timedelta(hours=1)], _partition_of)
    assert rollups.has_changes(0)


def test_sends_and_decisions_are_forwarded_to_their_touchpoints_partition_once() -> None:
    """Silence detection counts contacts where the touchpoint is judged; duplicates not at all."""
    part = ForwardActivity(_partition_of)
    contact = _contact(1, T0)
    [forward] = part.handle(Record("surveys", 0, 0, b"c", contact), T0).produce
    place = _partition_of("touchpoint:tp-1")
    assert (forward.topic, forward.key, forward.partition) == (BY_KEY, b"touchpoint:tp-1", place)
    assert forward.value == contact
    duplicate = contact.replace(b'"not-sampled"', b'"duplicate"')
    assert duplicate != contact
    assert part.handle(Record("surveys", 0, 1, b"c", duplicate), T0).produce == ()
    assert part.handle(Record("surveys", 0, 2, b"c", b'{"type":"SurveyFailed"}'), T0).produce == ()
