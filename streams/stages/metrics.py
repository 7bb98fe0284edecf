"""The metrics stage as a pure stage: count ratings and sends, detect drops, judge silence.

:class:`CountMetrics` reads the ratings topic and the internal by-key topic
(forwarded sends and decisions, re-routed ratings, and the timers' tick
records). All of one touchpoint's events are counted in one partition, the
one its key ``touchpoint:<id>`` hashes to (``partition_of``):

* a **Rating** on the ratings topic is counted where it lands when that is
  its touchpoint's partition and the ratings topic is co-partitioned with
  the internal topics (``counted_where_it_lands``, a fact of the running
  worker that the wiring gives); otherwise it is routed once to its
  partition of the internal topic. A record that is not a valid Rating is
  rejected with the decoder's reason.
* **counting**: each rating and send goes to its touchpoint's ledger
  (:class:`~streams.stages.metrics_mirrors.Ledgers`), a revision already
  counted or a send already known changes nothing (:func:`count_record`);
  roll-ups are counted in parts, one per partition.
* **detection**: each new rating goes to :func:`engine.detection.step` with
  the touchpoint's :class:`~streams.stages.metrics_rules.DetectorEntry`,
  which remembers the rating ids it took, so a replayed rating is not fed
  twice (:func:`detect`); a touchpoint with a CSAT or KPI target gets a
  second step with its last week's answers after each rating. Alerts are
  produced keyed by touchpoint; the entry is stored once per batch.
* **history**: with ``feeds_history``, each rating and send it counts
  (replays too) is handed on to the history stage's input in the same
  partition (:mod:`streams.stages.history`);
* a **publish tick** on partition *p* publishes the figures of the keys of
  *p* that changed (:func:`figures_records`) and their roll-up parts;
* a **silence tick** on partition *p* judges the silence of the touchpoints
  counted in *p* (:func:`judge_silence`), unless the worker has not yet
  watched for a full window since it started or partitions moved.

Figures and drop and target alerts run on event time (a rating's
``answered_at``), so a replay reproduces the same figures and the same
alerts with the same ids. Parsed state is kept in memory and forgotten
whenever the tables are the truth again (:meth:`CountMetrics.forget`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from engine.detection import step
from engine.ledger import Part, owner_key
from engine.silence import Signal, activity_tick
from engine.target_window import count_answer
from schemas.decoding import Rejected, decode_event
from schemas.metrics import Dimension
from schemas.responses import Rating
from schemas.surveys import SurveySent
from streams.runtime.model import NOTHING, Output, Produce, Rejection, table_key
from streams.stages.metrics_mirrors import DETECTOR_TABLE, Activity, Ledgers
from streams.stages.metrics_rules import (
    PUBLISH_TICK,
    SILENCE_TICK,
    TOUCHPOINT_PREFIX,
    DetectorEntry,
    activity_config,
    detector_configs,
    forwarded_touchpoint,
    occurred_at,
    signal_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date, datetime

    from engine.detection import DetectorConfig, DetectorState
    from engine.target_window import TargetBuckets
    from schemas.alerts import ScoreDropAlert
    from schemas.base import Scale
    from schemas.config import Settings
    from schemas.metrics import TouchpointMetrics
    from streams.runtime.model import Deferred, Record, ScanView, StateView

#: The stage label of its dead letters and counters.
LABEL = "metrics"
#: Output roles, which the runtime maps onto topics.
BY_KEY = "by_key"
METRICS = "metrics"
ALERTS = "alerts"
ROLLUP = "rollup"
#: Every rating and send counted here, for the history stage (:mod:`streams.stages.history`).
HISTORY_FEED = "history_feed"


@dataclass(frozen=True, slots=True)
class Counted:
    """An observation: a rating or a send reached its ledger (new or not)."""

    owner: str


@dataclass(frozen=True, slots=True)
class Published:
    """An observation: the figures of one key and window went out."""

    figures: TouchpointMetrics


@dataclass(frozen=True, slots=True)
class Raised:
    """An observation: the detector produced an alert."""

    alert: ScoreDropAlert


@dataclass
class _Work:
    """What handling one record asks for, gathered as it goes."""

    writes: dict[str, str | Deferred | None] = field(default_factory=dict)
    produce: list[Produce] = field(default_factory=list)
    observations: list[Any] = field(default_factory=list)

    def output(self) -> Output:
        return Output(
            produce=tuple(self.produce), state=self.writes, observations=tuple(self.observations)
        )

    def alerts(self, alerts: list[ScoreDropAlert]) -> None:
        for alert in alerts:
            self.produce.append(
                Produce(ALERTS, alert.touchpoint_id.encode(), alert.model_dump_json().encode())
            )
            self.observations.append(Raised(alert))


def detect(
    entry: DetectorEntry, rating: Rating, config: DetectorConfig
) -> tuple[DetectorState, TargetBuckets, list[ScoreDropAlert]] | None:
    """Feed a rating to its touchpoint's detector: the new state, target buckets and alerts.

    None for a rating the entry has already taken (a replay). A touchpoint
    with a CSAT or KPI target gets a second step, a tick with its last
    week's answers, after each rating.
    """
    if entry.has_seen(rating.rating_id):
        return None
    state, alerts = step(entry.state, rating, rating.answered_at, config)
    target = entry.target
    if config.target.target is not None or config.kpi.target is not None:
        target, tick = count_answer(entry.target, rating)
        state, more = step(state, tick, rating.answered_at, config)
        alerts += more
    return state, target, alerts


def figures_records(owner: str, figures: list[TouchpointMetrics]) -> list[Produce]:
    """Give the metrics records of one key: one per window, keyed ``<owner>:<window>``."""
    return [
        Produce(METRICS, f"{owner}:{f.window}".encode(), f.model_dump_json().encode())
        for f in figures
    ]


class CountMetrics:
    """The metrics stage: ledgers, roll-up parts, drop, target and silence detection."""

    name = "metrics"
    label = LABEL

    def __init__(
        self,
        settings: Settings,
        *,
        ratings_topic: str,
        partition_of: Callable[[str], int],
        counted_where_it_lands: Callable[[], bool] = lambda: True,
        feeds_history: bool = False,
    ) -> None:
        self._settings = settings
        self._feeds_history = feeds_history
        self._ratings_topic = ratings_topic
        self._partition_of = partition_of
        self._here = counted_where_it_lands
        self.ledgers = Ledgers(list(settings.metrics.windows), partition_of)
        self.activity = Activity(activity_config(settings))
        #: Detector entries as stored in the table, parsed (see :meth:`entry`).
        self.detectors: dict[str, DetectorEntry] = {}
        self._default, self._configs = detector_configs(settings)
        self._configs_version = settings.catalogue.version
        self._is_holiday: Callable[[date], bool] = settings.policy.holiday_calendar()
        self._window = settings.alerts.silence_window
        #: Silence is judged from one window after the start or the last move.
        self.judging_from: datetime | None = None

    def forget(self, *, moved: bool) -> None:
        """Drop every mirror: the tables are the truth again; after a move, wait a window."""
        self.ledgers.forget()
        self.activity.forget()
        self.detectors.clear()
        if moved:
            self.judging_from = None

    def has_changes(self, partition: int) -> bool:
        """Tell whether a publish tick on ``partition`` would publish anything.

        True too when the ledgers are to be rebuilt (after a start or a
        move), as rebuilding marks every key changed. The publishing timer
        asks, so that an idle worker writes no ticks.
        """
        ledgers = self.ledgers
        return (
            ledgers.by_owner is None
            or any(self._partition_of(owner) == partition for owner in ledgers.dirty)
            or any(part == partition for _owner, part in ledgers.dirty_parts)
        )

    def config(self, touchpoint_id: str) -> DetectorConfig:
        """Give a touchpoint's detector configuration (with its targets, if it has any).

        Built again from the catalogue version in force when it has changed,
        so a target edited while the worker runs judges the next rating.
        """
        if self._configs_version != self._settings.catalogue.version:
            self._configs_version = self._settings.catalogue.version
            self._default, self._configs = detector_configs(self._settings)
        return self._configs.get(touchpoint_id, self._default)

    def entry(self, state: ScanView, touchpoint_id: str, scale: Scale) -> DetectorEntry:
        """Give a touchpoint's detector entry, parsed once and then kept as it is stored.

        Only an entry that is in the table is kept: a fresh detector takes
        the scale of whatever reaches it first, as it would without the copy.
        """
        kept = self.detectors.get(touchpoint_id)
        if kept is not None:
            return kept
        stored = state.get(table_key(DETECTOR_TABLE, touchpoint_id))
        entry = DetectorEntry.load(stored, touchpoint_id, scale)
        if stored is not None:
            self.detectors[touchpoint_id] = entry
        return entry

    def handle(self, view: StateView, record: Record, now: datetime) -> Output:
        """Count, route, publish or judge, by what the record is."""
        # The runtimes give a stage of several tables its state as a ScanView.
        state = cast("ScanView", view)
        if self.judging_from is None:
            self.judging_from = now + self._window
        value = record.value or b""
        work = _Work()
        if record.topic == self._ratings_topic:
            rating = decode_event(value, expect="Rating")
            if isinstance(rating, Rejected):
                return Output(rejection=Rejection(rating.code, rating.reason))
            if not isinstance(rating, Rating):
                return NOTHING
            owner = owner_key(Dimension.TOUCHPOINT, rating.touchpoint_id)
            partition = self._partition_of(owner)
            if record.partition != partition or not self._here():
                # Written by another partitioner: once, to the touchpoint's partition.
                return Output(produce=(Produce(BY_KEY, owner.encode(), value, partition),))
            self._rating(state, work, owner, value, rating, partition, now)
        elif value == PUBLISH_TICK:
            self._publish(state, work, record.partition)
        elif value == SILENCE_TICK:
            self._silence(state, work, record.partition, now)
        else:
            self._forwarded(state, work, record, value, now)
        return work.output()

    def _forwarded(
        self, state: ScanView, work: _Work, record: Record, value: bytes, now: datetime
    ) -> None:
        owner = (record.key or b"").decode()
        signal = signal_of(value)
        on_touchpoint = owner.startswith(TOUCHPOINT_PREFIX)
        if signal is Signal.ANSWERS:
            # Validated when it was routed; parsed once, for the ledger and the detector.
            rating = Rating.model_validate_json(value)
            if on_touchpoint:
                self._rating(state, work, owner, value, rating, record.partition, now)
            else:
                self.ledgers.count(state, work.writes, owner, value, rating, None, record.partition)
                work.observations.append(Counted(owner))
        elif signal is not None:
            if signal is Signal.DELIVERIES:
                self._feed(work, owner, value, record.partition)
                sent = SurveySent.model_validate_json(value)
                at = (sent.survey_id, sent.occurred_at)
                self.ledgers.count(state, work.writes, owner, value, None, at, record.partition)
                work.observations.append(Counted(owner))
            when = occurred_at(value) if on_touchpoint else None
            if when is not None:
                touchpoint = owner.removeprefix(TOUCHPOINT_PREFIX)
                self.activity.count(
                    state, work.writes, touchpoint, signal, when, record.partition, now
                )

    def _rating(  # noqa: PLR0917 - one rating's coordinates, each needed
        self,
        state: ScanView,
        work: _Work,
        owner: str,
        value: bytes,
        rating: Rating,
        partition: int,
        now: datetime,
    ) -> None:
        """Count a rating in its touchpoint's ledger and feed it to the touchpoint's detector."""
        self._feed(work, owner, value, partition)
        self.ledgers.count(state, work.writes, owner, value, rating, None, partition)
        work.observations.append(Counted(owner))
        entry = self.entry(state, rating.touchpoint_id, rating.scale)
        stepped = detect(entry, rating, self.config(rating.touchpoint_id))
        if stepped is None:
            return
        answers = self.activity.count(
            state, work.writes, rating.touchpoint_id, Signal.ANSWERS, rating.answered_at,
            partition, now,
        )  # fmt: skip
        entry.state, entry.target, alerts = stepped
        entry.keep_answers(answers, partition)
        entry.remember(rating.rating_id)
        self.detectors[rating.touchpoint_id] = entry
        work.alerts(alerts)
        # Serialised once per batch, when the runtime writes the state.
        work.writes[table_key(DETECTOR_TABLE, rating.touchpoint_id)] = entry

    def _feed(self, work: _Work, owner: str, value: bytes, partition: int) -> None:
        """Hand a rating or send on to the history stage, replays too (it recognises them)."""
        if self._feeds_history:
            work.produce.append(Produce(HISTORY_FEED, owner.encode(), value, partition))

    def _publish(self, state: ScanView, work: _Work, partition: int) -> None:
        """Publish the changed keys of one partition, and their changed roll-up parts.

        A partition may have come without a record to count since: what its
        last owner counted and had not published yet is published from here
        (rebuilding the ledgers marks every key changed).
        """
        ledgers = self.ledgers
        by_owner = ledgers.loaded(state)
        for owner in sorted(o for o in ledgers.dirty if self._partition_of(o) == partition):
            ledgers.dirty.discard(owner)
            ledger = by_owner.get(owner)
            if ledger is not None:
                figures = ledger.figures(ledgers.windows)
                work.produce.extend(figures_records(owner, figures))
                work.observations.extend(Published(f) for f in figures)
        for owner, part_partition in sorted(p for p in ledgers.dirty_parts if p[1] == partition):
            ledgers.dirty_parts.discard((owner, part_partition))
            ledger = ledgers.parts.get((owner, part_partition))
            part = None if ledger is None else Part.of(ledger)
            if part is not None:
                work.produce.append(
                    Produce(
                        ROLLUP,
                        f"{owner}|{part_partition}".encode(),
                        part.dumps().encode(),
                        self._partition_of(owner),
                    )
                )

    def _silence(self, state: ScanView, work: _Work, partition: int, now: datetime) -> None:
        """Judge the silence of the touchpoints counted in ``partition``."""
        if self.judging_from is None or now < self.judging_from:
            return  # the worker may still be catching up on what came while it was away
        activity = self.activity
        mirror = activity.loaded(state)
        owned = sorted(tp for tp, part in activity.partition_of.items() if part == partition)
        for touchpoint_id in owned:
            counts = activity.prune(state, work.writes, touchpoint_id, now)
            tick = activity_tick(counts, now, activity.config, self._is_holiday)
            entry = self.entry(state, touchpoint_id, self._scale_of(touchpoint_id))
            new_state, alerts = step(entry.state, tick, now, self.config(touchpoint_id))
            answers = mirror.get(touchpoint_id, {}).get(Signal.ANSWERS)
            pruned = answers is not None and len(answers.hourly) != len(entry.answers)
            if new_state != entry.state or pruned:
                entry.state = new_state
                if answers is not None:
                    entry.keep_answers(answers, partition)
                self.detectors[touchpoint_id] = entry
                work.writes[table_key(DETECTOR_TABLE, touchpoint_id)] = entry
            work.alerts(alerts)

    def _scale_of(self, touchpoint_id: str) -> Scale:
        return self._settings.catalogue.touchpoint(touchpoint_id)[0].scale


class ForwardActivity:
    """The metrics stage's part of the surveys topic: sends and decisions, by touchpoint.

    SurveySent, SurveyScheduled and SurveySkipped (unless a duplicate, see
    :func:`~streams.stages.metrics_rules.forwarded_touchpoint`) go to the
    internal by-key topic under ``touchpoint:<id>``, in the partition where
    the touchpoint is counted.
    """

    label = LABEL

    def __init__(self, partition_of: Callable[[str], int]) -> None:
        self._partition_of = partition_of

    def handle(self, record: Record, now: datetime) -> Output:
        """Forward the record to its touchpoint's partition if the metrics count it."""
        del now
        value = record.value or b""
        touchpoint_id = forwarded_touchpoint(value)
        if touchpoint_id is None:
            return NOTHING
        owner = owner_key(Dimension.TOUCHPOINT, touchpoint_id)
        return Output(produce=(Produce(BY_KEY, owner.encode(), value, self._partition_of(owner)),))
