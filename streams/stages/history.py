"""The history stage: daily and hourly counts per touchpoint and group, as a pure stage.

:class:`CountHistory` reads its own input topic, ``<app>-history-by-key``
(:func:`history_feed_topic`), keyed ``touchpoint:<id>`` and partitioned as
the metrics stage counts touchpoints, so all of one touchpoint's events
reach it in one partition:

* the metrics stage hands on every **Rating** and **SurveySent** it counts
  (``feeds_history``, see :mod:`streams.stages.metrics`), replays included;
* ``palaute metrics rebuild`` feeds the ratings and sends of the last weeks
  again (:mod:`palaute.commands.history_rebuild`): what the stage has
  counted already changes nothing, what it missed is counted, and a rating
  now counted in other groups (the groups were redefined) moves to them.

Each change is applied to the buckets of :mod:`engine.history` in the table
``history-counts`` and the changed buckets are produced to the history
topic *in the same checkpoint* (acknowledged before the table is written),
so the topic never lags what the table holds, across any crash. A later
revision of a survey's rating takes back the earlier one, remembered in
``history-answers`` (survey id → :class:`~engine.history.Counted`); sends
are remembered in ``history-sent`` (survey id → time and touchpoint).

Both are forgotten when no revision or replay can come any more
(:data:`~engine.history.ANSWERS_KEPT` of event time), and buckets older than
they are kept (:func:`~engine.history.kept_after`) are deleted from the
table and tombstoned on the topic; this is done as records of a partition
are handled, on event time, so a rebuild and the live stage agree.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import orjson
from pydantic import ValidationError

from engine.breakdowns import NOTHING_LISTED
from engine.history import (
    ANSWERS_KEPT,
    BucketKey,
    Counted,
    Counts,
    kept_after,
    rating_changes,
    sent_changes,
    start_of,
)
from engine.ledger import owner_key
from engine.silence import Signal
from schemas.history import Period
from schemas.metrics import Dimension
from schemas.responses import Rating
from schemas.surveys import SurveySent
from streams.runtime.model import NOTHING, Output, Produce, Rejection, table_key
from streams.stages.metrics_rules import signal_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from zoneinfo import ZoneInfo

    from engine.history import Change
    from schemas.base import Scale
    from schemas.config_console import BreakdownsConfig
    from streams.runtime.model import Record, ScanView, StateView

LABEL = "history"
#: The output role, which the runtime maps onto the history topic.
HISTORY = "history"
COUNTS_TABLE = "history-counts"
ANSWERS_TABLE = "history-answers"
SENT_TABLE = "history-sent"


#: Why a record of the input is set aside.
UNREADABLE = "unreadable_history_input"
MISPLACED = "misplaced_history_input"


def history_feed_topic(app_id: str) -> str:
    """Name the stage's input: the metrics stage and ``palaute metrics rebuild`` write to it."""
    return f"{app_id}-history-by-key"


#: Expired entries of a partition are looked for once per this many of its records.
PRUNE_EVERY = 500


@dataclass(frozen=True, slots=True)
class Changed:
    """An observation: buckets of one touchpoint changed and were published."""

    touchpoint_id: str
    buckets: int


@dataclass
class Memory:
    """The remembered answers and sends of this worker's partitions, and what expires when."""

    answers: dict[str, Counted] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)
    #: Per partition: heaps of (epoch seconds, name) of answers, sends and buckets.
    answer_times: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    sent_times: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    #: Per partition and period: heaps of (start in epoch seconds, key) of the buckets.
    bucket_times: dict[tuple[int, Period], list[tuple[float, str]]] = field(default_factory=dict)
    #: Per partition: the latest event time seen, the clock of expiry.
    latest: dict[int, float] = field(default_factory=dict)
    handled: dict[int, int] = field(default_factory=dict)

    def saw(self, partition: int, at: datetime) -> None:
        """Move the partition's event clock forward."""
        seconds = at.timestamp()
        if seconds > self.latest.get(partition, float("-inf")):
            self.latest[partition] = seconds


def _record(key: str, bucket: Counts) -> bytes:
    """Write a bucket as HistoryCounts JSON, as ``bucket.record(key).model_dump_json()`` does.

    Directly, as this runs for every bucket of every rating: the model's own
    validation and serialisation cost several times the rest of the work.
    """
    parts = BucketKey.parse(key)
    return orjson.dumps(
        {
            "type": "HistoryCounts",
            "touchpoint_id": parts.touchpoint_id,
            "dimension": parts.dimension,
            "value": parts.value,
            "scale": parts.scale.value,
            "period": parts.period.value,
            "start": parts.start,
            "scores": {str(score): n for score, n in sorted(bucket.scores.items())},
            "sent": bucket.sent,
        }
    )


class CountHistory:
    """The history stage: counts per day and hour, published as they change."""

    name = "metrics-history"
    label = LABEL

    def __init__(
        self,
        *,
        partition_of: Callable[[str], int],
        time_zone: ZoneInfo,
        scale_of: Callable[[str], Scale],
        breakdowns: BreakdownsConfig = NOTHING_LISTED,
    ) -> None:
        self._partition_of = partition_of
        self._breakdowns = breakdowns
        self._zone = time_zone
        self._scale_of = scale_of
        self.memory: Memory | None = None

    def forget(self, *, moved: bool) -> None:
        """Drop the mirror: the tables are the truth again."""
        del moved
        self.memory = None

    def handle(self, view: StateView, record: Record, now: datetime) -> Output:
        """Count a rating or a send in its buckets and publish them; ignore the rest."""
        del now
        state = cast("ScanView", view)
        value = record.value or b""
        signal = signal_of(value)
        try:
            if signal is Signal.ANSWERS:
                rating = Rating.model_validate_json(value)
                if self._partition(rating.touchpoint_id) == record.partition:
                    return self._rating(state, rating, record.partition)
            elif signal is Signal.DELIVERIES:
                sent = SurveySent.model_validate_json(value)
                if self._partition(sent.touchpoint_id) == record.partition:
                    return self._sent(state, sent, record.partition)
            else:
                return Output(rejection=Rejection(UNREADABLE, "not a Rating or SurveySent"))
        except ValidationError:
            return Output(rejection=Rejection(UNREADABLE, "not a valid Rating or SurveySent"))
        # Written by another partitioner: counting it here would split a touchpoint's
        # buckets between partitions (and their table entries between workers).
        return Output(rejection=Rejection(MISPLACED, "not in its touchpoint's partition"))

    def loaded(self, state: ScanView) -> Memory:
        """Give the mirror, rebuilding it from the tables if it was forgotten."""
        if self.memory is not None:
            return self.memory
        memory = Memory()
        for survey_id, raw in state.scan(ANSWERS_TABLE):
            counted = Counted.loads(raw)
            partition = self._partition(counted.touchpoint_id)
            memory.answers[survey_id] = counted
            at = counted.answered_at.timestamp()
            memory.answer_times.setdefault(partition, []).append((at, survey_id))
            memory.saw(partition, counted.answered_at)
        for survey_id, raw in state.scan(SENT_TABLE):
            seconds, _, touchpoint_id = raw.partition("|")
            partition = self._partition(touchpoint_id)
            memory.sent[survey_id] = float(seconds)
            memory.sent_times.setdefault(partition, []).append((float(seconds), survey_id))
            memory.saw(partition, datetime.fromtimestamp(float(seconds), UTC))
        for key, _raw in state.scan(COUNTS_TABLE):
            parts = BucketKey.parse(key)
            begins = start_of(parts.period, parts.start, self._zone).timestamp()
            partition = self._partition(parts.touchpoint_id)
            memory.bucket_times.setdefault((partition, parts.period), []).append((begins, key))
        for heaps in (memory.answer_times, memory.sent_times, memory.bucket_times):
            for heap in heaps.values():
                heapq.heapify(heap)
        self.memory = memory
        return memory

    def _partition(self, touchpoint_id: str) -> int:
        return self._partition_of(owner_key(Dimension.TOUCHPOINT, touchpoint_id))

    def _rating(self, state: ScanView, rating: Rating, partition: int) -> Output:
        memory = self.loaded(state)
        changed = rating_changes(
            memory.answers.get(rating.survey_id), rating, self._zone, self._breakdowns
        )
        if changed is None:
            return self._maybe_prune(state, memory, partition, {}, [])
        counted, changes = changed
        memory.answers[rating.survey_id] = counted
        at = counted.answered_at.timestamp()
        heapq.heappush(memory.answer_times.setdefault(partition, []), (at, rating.survey_id))
        memory.saw(partition, counted.answered_at)
        writes: dict[str, str | None] = {
            table_key(ANSWERS_TABLE, rating.survey_id): counted.dumps()
        }
        produce = self._apply(state, memory, partition, changes, writes)
        observation = Changed(rating.touchpoint_id, len(produce))
        return self._maybe_prune(state, memory, partition, writes, produce, observation)

    def _sent(self, state: ScanView, sent: SurveySent, partition: int) -> Output:
        memory = self.loaded(state)
        if sent.survey_id in memory.sent:
            return self._maybe_prune(state, memory, partition, {}, [])
        seconds = sent.occurred_at.timestamp()
        memory.sent[sent.survey_id] = seconds
        heapq.heappush(memory.sent_times.setdefault(partition, []), (seconds, sent.survey_id))
        memory.saw(partition, sent.occurred_at)
        writes: dict[str, str | None] = {
            table_key(SENT_TABLE, sent.survey_id): f"{seconds}|{sent.touchpoint_id}"
        }
        changes = sent_changes(
            sent.touchpoint_id,
            sent.channel.value,
            self._scale_of(sent.touchpoint_id),
            sent.occurred_at,
            self._zone,
        )
        produce = self._apply(state, memory, partition, changes, writes)
        observation = Changed(sent.touchpoint_id, len(produce))
        return self._maybe_prune(state, memory, partition, writes, produce, observation)

    def _apply(
        self,
        state: ScanView,
        memory: Memory,
        partition: int,
        changes: list[Change],
        writes: dict[str, str | None],
    ) -> list[Produce]:
        """Apply changes to their buckets; give the records of the buckets that changed."""
        buckets: dict[str, Counts] = {}
        for key, score, delta in changes:
            bucket = buckets.get(key)
            if bucket is None:
                stored = state.get(table_key(COUNTS_TABLE, key))
                if stored is None:
                    parts = BucketKey.parse(key)
                    begins = start_of(parts.period, parts.start, self._zone).timestamp()
                    heap = memory.bucket_times.setdefault((partition, parts.period), [])
                    heapq.heappush(heap, (begins, key))
                bucket = buckets[key] = Counts() if stored is None else Counts.loads(stored)
            bucket.apply(score, delta)
        produce: list[Produce] = []
        for key, bucket in buckets.items():
            if bucket.is_empty():
                writes[table_key(COUNTS_TABLE, key)] = None
                produce.append(Produce(HISTORY, key.encode(), None))
            else:
                writes[table_key(COUNTS_TABLE, key)] = bucket.dumps()
                produce.append(Produce(HISTORY, key.encode(), _record(key, bucket)))
        return produce

    def _maybe_prune(  # noqa: PLR0917 - the record's output so far, each part needed
        self,
        state: ScanView,
        memory: Memory,
        partition: int,
        writes: dict[str, str | None],
        produce: list[Produce],
        observation: Changed | None = None,
    ) -> Output:
        """Every :data:`PRUNE_EVERY` records of a partition, forget what expired in it."""
        handled = memory.handled[partition] = memory.handled.get(partition, 0) + 1
        if handled % PRUNE_EVERY == 0 and partition in memory.latest:
            self._prune(state, memory, partition, writes, produce)
        observations = () if observation is None else (observation,)
        if not writes and not produce:
            return NOTHING
        return Output(produce=tuple(produce), state=writes, observations=observations)

    def _prune(
        self,
        state: ScanView,
        memory: Memory,
        partition: int,
        writes: dict[str, str | None],
        produce: list[Produce],
    ) -> None:
        latest = datetime.fromtimestamp(memory.latest[partition], UTC)
        horizon = (latest - ANSWERS_KEPT).timestamp()
        for heap, remembered, table in (
            (memory.answer_times.get(partition, []), memory.answers, ANSWERS_TABLE),
            (memory.sent_times.get(partition, []), memory.sent, SENT_TABLE),
        ):
            while heap and heap[0][0] < horizon:
                at, survey_id = heapq.heappop(heap)
                held = remembered.get(survey_id)
                when = held.answered_at.timestamp() if isinstance(held, Counted) else held
                if when == at:  # else a later revision moved it; its own entry comes later
                    del remembered[survey_id]
                    writes[table_key(table, survey_id)] = None
        for period in Period:
            buckets = memory.bucket_times.get((partition, period), [])
            until = kept_after(period, latest).timestamp()
            while buckets and buckets[0][0] < until:
                _begins, key = heapq.heappop(buckets)
                if state.get(table_key(COUNTS_TABLE, key)) is not None:
                    writes[table_key(COUNTS_TABLE, key)] = None
                    produce.append(Produce(HISTORY, key.encode(), None))
