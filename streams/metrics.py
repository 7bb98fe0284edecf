"""Rolling metrics and detection: ratings, sends and decisions in, figures and alerts out.

Two agents, a handler on the surveys topic's reader and two timers. All of
one touchpoint's events are counted in one partition, the one its key
``touchpoint:<id>`` hashes to (:func:`streams.partitioning.touchpoint_partition`):

1. ``route_sent``, a handler on the surveys topic's one reader
   (``surveys-reader``, see :mod:`streams.shared`), forwards SurveySent,
   SurveyScheduled and SurveySkipped (the decision on a contact, unless it
   is a duplicate) to an internal topic under ``touchpoint:<id>``, in that
   partition. SurveySent names no channel or service, so sends (and
   response rates) are per touchpoint; decisions only feed silence
   detection.
2. Ratings need no such forward: the answers join writes each one to the
   same partition of the ratings topic (keyed by touchpoint id), and the
   ``metrics`` agent reads that topic too, counting a rating where it
   lands. A rating in another partition (another writer's partitioner, or a
   ratings topic whose partition count differs from the internal topics',
   see :func:`streams.partitioning.copartitioned`) is forwarded once to the
   internal topic instead; each forward goes through faust's delivery and
   the producer once more (when every rating took that way, about a tenth
   of the worker's profile at 2,000 ratings a second). A record that is
   not a valid Rating goes to the dead-letter topic.
3. ``metrics`` reads the ratings topic and the internal topic a batch at a
   time (up to ``METRICS_BATCH`` records, waiting at most
   ``METRICS_BATCH_WAIT_S`` for more), parses each record once, and does
   both jobs on it (one agent rather than two halves faust's cost per
   record, which dominates here):

   * counting: a :class:`engine.ledger.Ledger` per touchpoint. The table
     ``metrics-ledger`` holds the latest revision counted per survey
     (``<key>|r|<survey id>`` → Rating JSON, as it came) and each send
     (``<key>|s|<survey id>`` → time); the ledgers are rebuilt from it after
     a restart or rebalance, so the figures are exact across both. A
     roll-up (``channel:<name>``, ``service:<key>``) is counted in parts, one
     per partition, each holding the ratings of that partition's
     touchpoints; parts are rebuilt from the touchpoint entries, so they
     cost no table writes (see :class:`Ledgers`). Changed keys are published
     to the metrics topic by a timer, at most once per ``[metrics]
     emit_interval`` per key and always after the last change; changed
     parts go, on the same timer, to the internal topic
     ``<app id>-metrics-rollup``.
   * detection, on touchpoint keys only: each Rating, in the order the
     touchpoint's ratings arrived, goes to :func:`engine.detection.step`,
     with state per touchpoint in the table ``detector-state``, kept parsed
     in memory (dropped at every rebalance, when the table is the truth
     again, and after a failed batch); alerts go to the alerts topic keyed
     by touchpoint at once, and the entry is written once per batch, before
     faust acknowledges the batch. A touchpoint with an ``[alerts] csat_targets``
     entry or a ``kpi_target`` also gets a tick with its last week's answers
     after each rating, for target and KPI breaches. Progress is reported
     under the agent's own name, ``metrics``: the idle check notes progress
     only for agents that exist, so a second name would go stale while idle
     and make /healthz report a stall.

4. ``metrics-rollup`` reads the parts, keeps the latest of each roll-up
   from each partition in the table ``metrics-rollup`` (``<roll-up
   key>|<partition>`` → part), and the publishing timer publishes a changed
   roll-up's figures from the sum of its parts
   (:func:`engine.ledger.combined`).

Silence detection (:mod:`engine.silence`) counts each touchpoint's answers,
deliveries (SurveySent) and contacts (decisions) in the same agent, by event
time, in hourly buckets: answers in the touchpoint's ``detector-state``
entry, the others in the table ``detector-activity``
(``<touchpoint>|<signal>|first`` → ``<epoch seconds>|<partition>``,
``...|h|<epoch hour>`` → count), mirrored in memory (see :class:`Activity`)
and rebuilt from both tables after a start or rebalance. Silence means that nothing arrives, so
event time cannot drive it: the timer ``detector-silence`` writes a tick
record, every ``[alerts] silence_check_interval`` of wall-clock time, to
each partition of the internal topic this worker actively owns, and
``metrics`` judges that partition's touchpoints when the tick comes
through, so every table write stays in its partition. For one silence
window after its partitions are assigned a worker neither sends ticks nor
judges: it may still be catching up on what arrived while it was away.

Figures and drop and target alerts run on event time (a rating's
``answered_at``), so ``palaute metrics rebuild`` reproduces the live figures
and a replay reproduces the same alerts with the same ids. Replays are
harmless: the ledger ignores a revision it already counted, and the detector
remembers the rating ids it saw recently (a replayed send or decision counts
twice for silence, which only errs on the side of no alert).
"""

from __future__ import annotations

import functools
import json
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import faust
import orjson
from pydantic import ValidationError

from connectors import telemetry
from engine.detection import (
    DetectorConfig,
    DetectorState,
    KpiConfig,
    SilenceConfig,
    TargetConfig,
    new_detector,
    step,
)
from engine.ledger import Ledger, Part, combined, count_rollups, owner_key
from engine.silence import ActivityConfig, Signal, SignalCounts, activity_tick, buckets_of, expired
from engine.target_window import TargetBuckets, count_answer
from schemas.decoding import Rejected, decode_event
from schemas.metrics import Dimension
from schemas.responses import Rating
from schemas.surveys import SkipReason, SurveyScheduled, SurveySent, SurveySkipped
from streams import shared
from streams.containment import Containment
from streams.partitioning import copartitioned, key_partition
from streams.producer import DirectProducer
from streams.runtime.overrides.events import at_event
from streams.stores import table_store_options

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date

    from faust.types import EventT

    from schemas.base import Scale
    from schemas.config import Settings
    from schemas.topics import TopicNames

log = logging.getLogger(__name__)

METRICS_AGENT = "metrics"
ROLLUP_AGENT = "metrics-rollup"
LEDGER_TABLE = "metrics-ledger"
ROLLUP_TABLE = "metrics-rollup"
DETECTOR_TABLE = "detector-state"
ACTIVITY_TABLE = "detector-activity"
SILENCE_TIMER = "detector-silence"
#: The record the silence timer writes to each partition it owns (key ``tick``).
SILENCE_TICK = b'{"type":"DetectorTick"}'
#: Rating ids a detector remembers, to recognise a replayed record.
RECENT_RATINGS = 500
#: Records of the internal topic the metrics agent takes at most at once, and how
#: long it waits for more before it goes on with fewer (this much added latency).
METRICS_BATCH = 1_000
METRICS_BATCH_WAIT_S = 0.02
#: A ledger forgets surveys older than every window after this many changes.
PRUNE_EVERY = 1_000
_TOUCHPOINT_PREFIX = Dimension.TOUCHPOINT.value + ":"


def _entry(owner: str, kind: str, survey_id: str) -> str:
    return f"{owner}|{kind}|{survey_id}"


class Ledgers:
    """The ledgers of the partitions this worker owns, and what is not yet published.

    A touchpoint's ledger is stored entry by entry in the ledger table. A
    roll-up (channel, service) is counted in parts, one per partition of the
    internal topic: the part of partition *p* holds the ratings of the
    touchpoints whose key is in *p*, so each rating is routed and handled
    once, not once per key, and a roll-up that takes most ratings (a channel)
    is no hot partition. Parts are not stored: each touchpoint entry holds
    its Rating, which names its channel and service, so they are rebuilt
    with the touchpoint ledgers. The publishing timer sends changed parts to
    the combining agent (:class:`Rollups`).
    """

    def __init__(self, windows: list[timedelta], partition_of: Callable[[str], int]) -> None:
        self.windows = windows
        self.partition_of = partition_of
        self.by_owner: dict[str, Ledger] | None = None
        self.parts: dict[tuple[str, int], Ledger] = {}
        self.dirty: set[str] = set()
        self.dirty_parts: set[tuple[str, int]] = set()
        self.changes: dict[str, int] = {}

    def forget(self) -> None:
        """Drop the ledgers: partitions moved, so the table is the truth again.

        The keys not yet published stay marked; reloading marks every key anyway.
        """
        self.by_owner = None
        self.parts = {}

    def loaded(self, table: Any) -> dict[str, Ledger]:
        """Give the ledgers, rebuilding them from the table if partitions moved since."""
        return self.by_owner if self.by_owner is not None else self.load(table.items())

    def load(self, entries: Any) -> dict[str, Ledger]:
        """Rebuild every ledger and part from the table's entries (after a start or a rebalance).

        Entries of roll-up keys, stored before roll-ups were counted in parts,
        are left out: their ratings are in the touchpoint entries too.
        """
        by_owner: dict[str, Ledger] = {}
        self.parts = {}
        for entry, value in entries:
            owner, kind, survey_id = str(entry).rsplit("|", 2)
            if not owner.startswith(_TOUCHPOINT_PREFIX):
                continue
            ledger = by_owner.setdefault(owner, Ledger(owner))
            if kind == "r":
                rating = Rating.model_validate_json(value)
                if ledger.add_rating(rating):
                    self.count_parts(rating, self.partition_of(owner))
            else:
                ledger.add_sent(survey_id, datetime.fromisoformat(value))
        self.by_owner = by_owner
        # A crash may have come between a change and its publication: publish all again.
        self.dirty = set(by_owner)
        self.dirty_parts = set(self.parts)
        return by_owner

    def count_parts(self, rating: Rating, partition: int) -> None:
        """Count a rating its touchpoint's ledger took in its roll-ups' parts of ``partition``.

        The part then holds exactly what the touchpoint entries hold, and a
        restart rebuilds the same part.
        """

        def part_of(owner: str) -> Ledger:
            return self.parts.setdefault((owner, partition), Ledger(owner))

        for owner in count_rollups(rating, part_of):
            self.dirty_parts.add((owner, partition))
            changes = self.changes[owner] = self.changes.get(owner, 0) + 1
            if changes % PRUNE_EVERY == 0:
                part_of(owner).prune()


class Rollups:
    """The parts of the roll-ups this worker combines, mirrored from their table.

    The table ``metrics-rollup`` holds the latest part of each roll-up from
    each partition (``<roll-up key>|<partition>`` → part); a roll-up's
    figures are those of all its parts added up. A part replaces the one
    before it: it is the whole of what its partition counted.
    """

    def __init__(self) -> None:
        self.by_owner: dict[str, dict[str, Part]] | None = None
        self.dirty: set[str] = set()

    def forget(self) -> None:
        """Drop the mirror: partitions moved, so the table is the truth again."""
        self.by_owner = None

    def loaded(self, table: Any) -> dict[str, dict[str, Part]]:
        """Give the parts by roll-up, rebuilding them from the table if partitions moved since."""
        if self.by_owner is None:
            by_owner: dict[str, dict[str, Part]] = {}
            for key, value in table.items():
                by_owner.setdefault(str(key).rpartition("|")[0], {})[str(key)] = Part.loads(value)
            self.by_owner = by_owner
            self.dirty |= set(by_owner)
        return self.by_owner


@dataclass
class _Counts:
    """One signal's buckets of one touchpoint, as in the activity table."""

    first_at: float | None = None
    hourly: dict[int, int] = field(default_factory=dict)
    recent: dict[int, int] = field(default_factory=dict)

    def view(self) -> SignalCounts:
        return SignalCounts(self.first_at, self.hourly, self.recent)


class Activity:
    """The activity counts of this worker's touchpoints, mirrored from the tables.

    Hourly counts are stored: answers in the touchpoint's detector entry
    (written after every rating anyway, so counting them costs no extra
    changelog record), deliveries and contacts in the activity table. The
    recent buckets live in memory only: after a start or a rebalance nothing
    is judged for one window, by when the window holds only what this worker
    counted itself.
    """

    def __init__(self, config: ActivityConfig) -> None:
        self.config = config
        self.by_touchpoint: dict[str, dict[Signal, _Counts]] | None = None
        self.partition_of: dict[str, int] = {}

    def forget(self) -> None:
        """Drop the mirror: partitions moved, so the tables are the truth again."""
        self.by_touchpoint = None
        self.partition_of = {}

    def loaded(self, table: Any, detectors: Any) -> dict[str, dict[Signal, _Counts]]:
        """Give the mirror, rebuilding it from the tables' entries if needed."""
        if self.by_touchpoint is not None:
            return self.by_touchpoint
        by_touchpoint: dict[str, dict[Signal, _Counts]] = {}
        for key, value in table.items():
            touchpoint, signal, tier, *bucket = str(key).split("|")
            counts = by_touchpoint.setdefault(touchpoint, {}).setdefault(Signal(signal), _Counts())
            if tier == "first":
                first_at, partition = str(value).split("|")
                counts.first_at = float(first_at)
                self.partition_of[touchpoint] = int(partition)
            else:
                counts.hourly[int(bucket[0])] = int(value)
        for touchpoint, value in detectors.items():
            raw = json.loads(value)
            if raw.get("partition") is None:
                continue  # written before answers were counted
            self.partition_of[str(touchpoint)] = raw["partition"]
            counts = by_touchpoint.setdefault(str(touchpoint), {}).setdefault(
                Signal.ANSWERS, _Counts()
            )
            counts.first_at = raw["answers_first"]
            counts.hourly = {int(hour): count for hour, count in raw["answers"].items()}
        self.by_touchpoint = by_touchpoint
        return by_touchpoint

    def count(  # noqa: PLR0917 - one event's coordinates, each needed
        self,
        table: Any,
        detectors: Any,
        touchpoint: str,
        signal: Signal,
        at: datetime,
        partition: int,
        now: datetime,
    ) -> _Counts:
        """Count one event in the mirror; store what changed unless it is an answer.

        Returns the signal's counts, for the caller to store an answer's with
        the detector entry.
        """
        signals = self.loaded(table, detectors).setdefault(touchpoint, {})
        counts = signals.setdefault(signal, _Counts())
        prefix = f"{touchpoint}|{signal.value}"
        seconds = at.timestamp()
        self.partition_of[touchpoint] = partition
        if counts.first_at is None or seconds < counts.first_at:
            counts.first_at = seconds
            if signal is not Signal.ANSWERS:
                table[f"{prefix}|first"] = f"{seconds}|{partition}"
        buckets = buckets_of(at, now, self.config)
        if buckets.hour is not None:
            counts.hourly[buckets.hour] = counts.hourly.get(buckets.hour, 0) + 1
            if signal is not Signal.ANSWERS:
                table[f"{prefix}|h|{buckets.hour}"] = str(counts.hourly[buckets.hour])
        if buckets.recent is not None:
            counts.recent[buckets.recent] = counts.recent.get(buckets.recent, 0) + 1
        return counts

    def prune(
        self, table: Any, detectors: Any, touchpoint: str, now: datetime
    ) -> dict[Signal, SignalCounts]:
        """Forget buckets no verdict needs any more; give the touchpoint's counts.

        The answers' hourly buckets are pruned in the mirror only: the caller
        stores them with the detector entry.
        """
        signals = self.loaded(table, detectors).get(touchpoint, {})
        for signal, counts in signals.items():
            old = expired(counts.view(), now, self.config)
            for hour in old.hours:
                del counts.hourly[hour]
                if signal is not Signal.ANSWERS:
                    del table[f"{touchpoint}|{signal.value}|h|{hour}"]
            for begins in old.recent:
                del counts.recent[begins]
        return {signal: counts.view() for signal, counts in signals.items()}


def _activity_config(settings: Settings) -> ActivityConfig:
    alerts = settings.alerts
    return ActivityConfig(
        window=alerts.silence_window,
        weeks=alerts.silence_weeks,
        min_weeks=min(2, alerts.silence_weeks),
        time_zone=settings.policy.time_zone,
    )


def detector_configs(settings: Settings) -> tuple[DetectorConfig, dict[str, DetectorConfig]]:
    """Build the detector's configuration: the default, and each touchpoint's with targets."""
    alerts = settings.alerts
    default = DetectorConfig(
        dashboard_url=alerts.dashboard_url,
        kpi=KpiConfig(min_sample=alerts.kpi_min_sample, confidence=alerts.kpi_confidence),
        silence=SilenceConfig(
            probability=alerts.silence_probability, min_expected=alerts.silence_min_expected
        ),
    )
    configs: dict[str, DetectorConfig] = {}
    for touchpoint_id in sorted({*alerts.csat_targets, *settings.touchpoints}):
        touchpoint = settings.touchpoints.get(touchpoint_id)
        kpi_target = None if touchpoint is None else touchpoint.kpi_target
        csat_target = alerts.csat_targets.get(touchpoint_id)
        if kpi_target is None and csat_target is None:
            continue
        configs[touchpoint_id] = replace(
            default,
            target=TargetConfig(target=csat_target),
            kpi=replace(default.kpi, target=kpi_target),
        )
    return default, configs


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:  # noqa: C901, PLR0915 - four agents sharing the wiring read best together
    """Add the metrics and detection agents, their tables and the publishing timer."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    partitions = settings.streams.partitions
    by_key = app.topic(f"{app.conf.id}-metrics-by-key", internal=True, partitions=partitions, **raw)
    # What the metrics agent reads: the internal topic and the ratings topic. Internal,
    # so that faust creates both if missing, with the partitions the tables have.
    counted = app.topic(
        by_key.get_topic_name(), names.ratings, internal=True, partitions=partitions, **raw
    )
    rollup_parts = app.topic(
        f"{app.conf.id}-metrics-rollup", internal=True, partitions=partitions, **raw
    )
    metrics_topic = app.topic(names.metrics, **raw)
    alerts_topic = app.topic(names.alerts, **raw)
    string_table: dict[str, Any] = {
        "default": None,
        "partitions": partitions,
        "schema": faust.Schema(key_type=str, value_type=str),
        "options": table_store_options(),
    }
    ledger_table = app.Table(LEDGER_TABLE, **string_table)
    detector_table = app.Table(DETECTOR_TABLE, **string_table)
    activity_table = app.Table(ACTIVITY_TABLE, **string_table)
    rollup_table = app.Table(ROLLUP_TABLE, **string_table)

    @functools.lru_cache(maxsize=65_536)
    def partition_of(owner: str) -> int:
        return key_partition(owner.encode(), partitions)

    producer = DirectProducer(app)

    ledgers = Ledgers(list(settings.metrics.windows), partition_of)
    rollups = Rollups()
    activity = Activity(_activity_config(settings))
    #: Detector entries as stored in the table, parsed (see ``detector_of``).
    detectors: dict[str, _Detector] = {}
    is_holiday: Callable[[date], bool] = settings.policy.holiday_calendar()
    # Not before one window after the partitions came: the worker may be catching up.
    judging_from = [datetime.now(UTC) + settings.alerts.silence_window]
    for touchpoint_id, touchpoint in settings.touchpoints.items():
        telemetry.set_kpi_target(touchpoint_id, touchpoint.kpi_target)

    def forget(*_args: Any, **_kwargs: Any) -> None:
        ledgers.forget()
        rollups.forget()
        activity.forget()
        detectors.clear()
        judging_from[0] = datetime.now(UTC) + settings.alerts.silence_window

    # Partitions moved: rebuild from the table before the next record. (Typed as Any:
    # mode's stubs describe receivers more narrowly than it calls them.)
    receiver: Any = forget
    app.on_partitions_revoked.connect(receiver)
    app.on_partitions_assigned.connect(receiver)

    guard = Containment(producer, names.deadletter, telemetry.Stage.METRICS)

    async def set_aside(event: EventT[bytes], rejected: Rejected) -> None:
        await guard.reject(event.message, rejected.code, rejected.reason)

    async def take_rating(event: EventT[bytes]) -> _Detector | None:
        """Count a record of the ratings topic where it landed, or route it to where it counts.

        Give the detector entry it changed, as :func:`count_one` does.
        """
        message = event.message
        value = message.value or b""
        rating = decode_event(value, expect="Rating")
        if isinstance(rating, Rejected):
            await set_aside(event, rating)
            return None
        if not isinstance(rating, Rating):
            return None
        owner = owner_key(Dimension.TOUCHPOINT, rating.touchpoint_id)
        partition = partition_of(owner)
        if message.partition == partition and copartitioned(app, names.ratings, partitions):
            return await count_rating(owner, value, rating, partition)
        # Written by a partitioner other than the responses stage's: once, to the
        # touchpoint's partition of the internal topic, which counts its roll-ups' parts too.
        await producer.send(by_key, owner.encode(), value, partition=partition)
        return None

    async def route_sent(event: EventT[bytes]) -> None:
        value = event.message.value or b""
        touchpoint_id = _forwarded_touchpoint(value)
        if touchpoint_id is not None:
            owner = owner_key(Dimension.TOUCHPOINT, touchpoint_id)
            await producer.send(by_key, owner.encode(), value, partition=partition_of(owner))

    shared.read(app, "surveys", names.surveys, route_sent, guard)

    def count_event(owner: str, value: bytes, rating: Rating | None, partition: int) -> None:
        """Count a rating or a send in its touchpoint's ledger and store what changed."""
        ledger = ledgers.loaded(ledger_table).setdefault(owner, Ledger(owner))
        changed = _apply(ledger, owner, value, rating, ledger_table)
        if changed and rating is not None:
            ledgers.count_parts(rating, partition)
        if changed:
            ledgers.dirty.add(owner)
            ledgers.changes[owner] = ledgers.changes.get(owner, 0) + 1
            if ledgers.changes[owner] % PRUNE_EVERY == 0:
                pruned = ledger.prune()
                for survey_id in pruned.ratings:
                    del ledger_table[_entry(owner, "r", survey_id)]
                for survey_id in pruned.sent:
                    del ledger_table[_entry(owner, "s", survey_id)]
        telemetry.count_event(telemetry.Stage.METRICS, telemetry.Outcome.OK)

    async def publish() -> None:
        state: Any = app
        if ledgers.by_owner is None and (state.rebalancing or state.in_recovery):
            return
        # Partitions may have come without a record to count since: what their
        # last owner counted and had not published yet is published from here.
        by_owner = ledgers.loaded(ledger_table)
        owners, ledgers.dirty = ledgers.dirty, set()
        for owner in sorted(owners):
            ledger = by_owner.get(owner)
            if ledger is not None:
                await publish_figures(owner, ledger)
        parts, ledgers.dirty_parts = ledgers.dirty_parts, set()
        for owner, partition in sorted(parts):
            ledger = ledgers.parts.get((owner, partition))
            part = None if ledger is None else Part.of(ledger)
            if part is not None:
                await rollup_parts.send(
                    key=f"{owner}|{partition}".encode(),
                    value=part.dumps().encode(),
                    partition=partition_of(owner),
                )
        if rollups.by_owner is None and (state.rebalancing or state.in_recovery):
            return
        by_rollup = rollups.loaded(rollup_table)
        changed, rollups.dirty = rollups.dirty, set()
        for owner in sorted(changed):
            await publish_figures(owner, combined(owner, by_rollup.get(owner, {}).values()))

    async def publish_figures(owner: str, ledger: Ledger) -> None:
        for figures in ledger.figures(ledgers.windows):
            await metrics_topic.send(
                key=f"{owner}:{figures.window}".encode(), value=figures.model_dump_json().encode()
            )
            telemetry.observe_metrics(figures)

    # Called, not applied as a decorator: faust's timer decorator is untyped.
    app.timer(settings.metrics.emit_interval.total_seconds(), name="metrics-publish")(publish)

    detector_config, configs = detector_configs(settings)

    def scale_of(touchpoint_id: str) -> Scale:
        return settings.touchpoints.get(touchpoint_id, settings.defaults).scale

    async def send_alerts(alerts: list[Any], owner: str) -> None:
        for alert in alerts:
            await alerts_topic.send(
                key=alert.touchpoint_id.encode(), value=alert.model_dump_json().encode()
            )
            log.info("alert %s %s on %s", alert.alert_id, alert.state.value, owner)

    def detector_of(touchpoint_id: str, scale: Scale) -> _Detector:
        """Give a touchpoint's detector entry, parsed once and then kept as it is stored.

        Only an entry that is in the table is kept: a fresh detector takes
        the scale of whatever reaches it first, as it would without the copy.
        """
        stored = detectors.get(touchpoint_id)
        if stored is not None:
            return stored
        entry = detector_table.get(touchpoint_id)
        stored = _Detector.load(entry, touchpoint_id, scale)
        if entry is not None:
            detectors[touchpoint_id] = stored
        return stored

    def store_detector(touchpoint_id: str, stored: _Detector) -> None:
        detector_table[touchpoint_id] = stored.dump()
        detectors[touchpoint_id] = stored

    async def on_rating(rating: Rating, owner: str, partition: int) -> _Detector | None:
        """Feed a rating to its touchpoint's detector; give the entry to store, none for a replay.

        The entry is kept in memory at once, and stored by the caller at the
        end of the batch, before the batch is acknowledged.
        """
        stored = detector_of(rating.touchpoint_id, rating.scale)
        if stored.has_seen(rating.rating_id):
            return None
        answers = activity.count(
            activity_table,
            detector_table,
            rating.touchpoint_id,
            Signal.ANSWERS,
            rating.answered_at,
            partition,
            datetime.now(UTC),
        )
        config = configs.get(rating.touchpoint_id, detector_config)
        state, alerts = step(stored.state, rating, rating.answered_at, config)
        target = stored.target
        if config.target.target is not None or config.kpi.target is not None:
            target, tick = count_answer(stored.target, rating)
            state, more = step(state, tick, rating.answered_at, config)
            alerts += more
        # Alerts first: were the worker stopped after the table write, a replay
        # would find the rating already seen and never send them.
        await send_alerts(alerts, owner)
        # Only now the kept entry changes; the table's follows at the end of the batch.
        stored.keep_answers(answers, partition)
        stored.target = target
        stored.state = state
        stored.remember(rating.rating_id)
        detectors[rating.touchpoint_id] = stored
        return stored

    async def on_silence_tick(partition: int) -> None:
        now = datetime.now(UTC)
        if now < judging_from[0]:
            return
        mirror = activity.loaded(activity_table, detector_table)
        owned = sorted(tp for tp, part in activity.partition_of.items() if part == partition)
        for touchpoint_id in owned:
            counts = activity.prune(activity_table, detector_table, touchpoint_id, now)
            tick = activity_tick(counts, now, activity.config, is_holiday)
            stored = detector_of(touchpoint_id, scale_of(touchpoint_id))
            config = configs.get(touchpoint_id, detector_config)
            state, alerts = step(stored.state, tick, now, config)
            answers = mirror.get(touchpoint_id, {}).get(Signal.ANSWERS)
            pruned = answers is not None and len(answers.hourly) != len(stored.answers)
            if state != stored.state or pruned:
                stored.state = state
                if answers is not None:
                    stored.keep_answers(answers, partition)
                store_detector(touchpoint_id, stored)
            await send_alerts(alerts, f"touchpoint:{touchpoint_id}")

    @app.agent(counted, name=METRICS_AGENT)
    async def count(stream: faust.StreamT[bytes]) -> None:
        # A batch at a time: a touchpoint's detector entry is stored once per
        # batch, not once per rating, before faust acknowledges the batch.
        # faust's StreamT does not declare take_events; its Stream, which agents get, does.
        batches = cast("faust.Stream[bytes]", stream).take_events
        async for events in batches(METRICS_BATCH, within=METRICS_BATCH_WAIT_S):
            unstored: dict[str, tuple[EventT[bytes], _Detector]] = {}
            try:
                for event in events:
                    at_event(event)
                    if event.message.topic == names.ratings:
                        stored = await guard.run(event.message, take_rating, event)
                    else:
                        stored = await guard.run(event.message, count_one, event.message)
                    if stored is not None:
                        unstored[stored.state.touchpoint_id] = (event, stored)
                for touchpoint_id, (event, stored) in unstored.items():
                    at_event(event)
                    detector_table[touchpoint_id] = stored.dump()
            except BaseException:
                # The kept entries may be ahead of the table: a replay must not find
                # its ratings already seen, so the table is the truth again.
                detectors.clear()
                raise
            telemetry.agent_progress(METRICS_AGENT, datetime.now(UTC))

    async def count_one(message: Any) -> _Detector | None:
        """Count one record of the internal topic; give a detector entry it changed."""
        owner = message.key.decode()
        value = message.value or b""
        signal = _signal_of(value)
        on_touchpoint = owner.startswith(_TOUCHPOINT_PREFIX)
        if value == SILENCE_TICK:
            await on_silence_tick(message.partition)
        elif signal is Signal.ANSWERS:
            # Validated when it was routed; parsed once, for the ledger and the detector.
            rating = Rating.model_validate_json(value)
            if on_touchpoint:
                return await count_rating(owner, value, rating, message.partition)
            count_event(owner, value, rating, message.partition)
        elif signal is not None:
            if signal is Signal.DELIVERIES:
                count_event(owner, value, None, message.partition)
            at = _occurred_at(value) if on_touchpoint else None
            if at is not None:
                activity.count(
                    activity_table, detector_table, owner.removeprefix(_TOUCHPOINT_PREFIX),
                    signal, at, message.partition, datetime.now(UTC),
                )  # fmt: skip
        return None

    async def count_rating(
        owner: str, value: bytes, rating: Rating, partition: int
    ) -> _Detector | None:
        """Count a rating in its touchpoint's ledger and feed it to the touchpoint's detector."""
        count_event(owner, value, rating, partition)
        return await on_rating(rating, owner, partition)

    async def combine_one(message: Any) -> None:
        """Keep one partition's part of a roll-up; the next part replaces it."""
        key = (message.key or b"").decode()
        value = message.value or b""
        try:
            part = Part.loads(value)
        except (ValueError, KeyError, TypeError):
            # Written by this stage, so only a worker of another version could
            # send it; the next part from the same partition replaces it anyway.
            await guard.reject(message, "unreadable_rollup_part", "not a roll-up part")
            return
        owner = key.rpartition("|")[0]
        rollup_table[key] = value.decode()
        rollups.loaded(rollup_table).setdefault(owner, {})[key] = part
        rollups.dirty.add(owner)

    @app.agent(rollup_parts, name=ROLLUP_AGENT)
    async def combine(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guard.run(event.message, combine_one, event.message)
            telemetry.agent_progress(ROLLUP_AGENT, datetime.now(UTC))

    async def silence_ticks() -> None:
        """Ask each partition this worker actively owns to judge its touchpoints' silence."""
        if datetime.now(UTC) < judging_from[0]:
            return  # a tick would be ignored: the worker may still be catching up
        topic = by_key.get_topic_name()
        owned = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)
        for partition in owned:
            await by_key.send(key=b"tick", value=SILENCE_TICK, partition=partition)

    app.timer(settings.alerts.silence_check_interval.total_seconds(), name=SILENCE_TIMER)(
        silence_ticks
    )


def _signal_of(value: bytes) -> Signal | None:
    """Tell which activity a forwarded record is, by its type name (cheap, before parsing)."""
    if b'"SurveySent"' in value:
        return Signal.DELIVERIES
    if b'"SurveyScheduled"' in value or b'"SurveySkipped"' in value:
        return Signal.CONTACTS
    if b'"Rating"' in value:
        return Signal.ANSWERS
    return None


def _forwarded_touchpoint(value: bytes) -> str | None:
    """Name the touchpoint of a surveys-topic record the metrics stage counts, else None."""
    signal = _signal_of(value)
    try:
        if signal is Signal.DELIVERIES:
            return SurveySent.model_validate_json(value).touchpoint_id
        if signal is Signal.CONTACTS and b'"SurveyScheduled"' in value:
            return SurveyScheduled.model_validate_json(value).touchpoint_id
        if signal is Signal.CONTACTS:
            skipped = SurveySkipped.model_validate_json(value)
            # A duplicate is the same contact told twice: it was counted the first time.
            return None if skipped.reason is SkipReason.DUPLICATE else skipped.touchpoint_id
    except ValidationError:
        return None  # another event quoting the name; not ours to judge
    return None


def _occurred_at(value: bytes) -> datetime | None:
    """When a forwarded send or decision happened (validated when it was forwarded)."""
    try:
        raw = json.loads(value)
        return datetime.fromisoformat(raw["occurred_at"])
    except (ValueError, KeyError, TypeError):
        return None


def _apply(ledger: Ledger, owner: str, value: bytes, rating: Rating | None, table: Any) -> bool:
    """Count one forwarded record (``rating`` when it is a parsed Rating) and store what changed.

    A rating is stored as it came: it was validated as a Rating, so it loads
    back as the same one, without serialising it again.
    """
    if rating is None:
        sent = SurveySent.model_validate_json(value)
        if not ledger.add_sent(sent.survey_id, sent.occurred_at):
            return False
        table[_entry(owner, "s", sent.survey_id)] = sent.occurred_at.isoformat()
        return True
    if not ledger.add_rating(rating):
        return False
    table[_entry(owner, "r", rating.survey_id)] = value.decode()
    return True


@dataclass
class _Detector:
    """A touchpoint's entry in the detector table."""

    state: DetectorState
    recent: deque[str]
    target: TargetBuckets = field(default_factory=dict)
    #: The touchpoint's partition of the internal topic, and its answers' hourly counts.
    partition: int | None = None
    answers_first: float | None = None
    answers: dict[str, int] = field(default_factory=dict)
    #: The ids in ``recent``, to tell a replay without scanning the list per rating.
    seen: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.seen = set(self.recent)

    def has_seen(self, rating_id: str) -> bool:
        """Tell whether a rating is among the last ones taken: a replayed record."""
        return rating_id in self.seen

    def remember(self, rating_id: str) -> None:
        """Take a rating's id, forgetting the oldest one when the list is full."""
        if len(self.recent) == self.recent.maxlen:
            self.seen.discard(self.recent[0])
        self.recent.append(rating_id)
        self.seen.add(rating_id)

    @classmethod
    def load(cls, stored: str | None, touchpoint_id: str, scale: Scale) -> _Detector:
        if stored is None:
            return cls(new_detector(touchpoint_id, scale), deque(maxlen=RECENT_RATINGS))
        raw = json.loads(stored)
        return cls(
            DetectorState.from_dict(raw["state"]),
            deque(raw["recent"], maxlen=RECENT_RATINGS),
            raw.get("target", {}),
            raw.get("partition"),
            raw.get("answers_first"),
            raw.get("answers", {}),
        )

    def keep_answers(self, counts: _Counts, partition: int) -> None:
        """Take the answers' counts from the mirror, to be stored with the entry."""
        self.partition = partition
        self.answers_first = counts.first_at
        self.answers = {str(hour): count for hour, count in counts.hourly.items()}

    def dump(self) -> str:
        # orjson: written for every touchpoint in every batch, so the encoder's speed shows.
        return orjson.dumps(
            {
                "state": self.state.to_dict(),
                "recent": list(self.recent),
                "target": self.target,
                "partition": self.partition,
                "answers_first": self.answers_first,
                "answers": self.answers,
            },
            option=orjson.OPT_NON_STR_KEYS,
        ).decode()
