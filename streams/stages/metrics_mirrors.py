"""What the metrics stages keep parsed in memory, mirrored from their tables.

Parsing a table entry for every record would cost more than the rest of the
stage's work, so :class:`Ledgers`, :class:`Rollups` and :class:`Activity`
keep the entries of the partitions this worker holds parsed, and rebuild
themselves from the tables (a :class:`~streams.runtime.model.ScanView`)
whenever they were told to forget: after a restart, a rebalance, a failed
batch or a handler that raised. Every change they make to what is stored is
written into the record's ``writes`` (``<table>/<key>`` → value, None
deletes), which the runtime stores once the batch is acknowledged.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from engine.ledger import Ledger, Part, count_rollups
from engine.silence import Signal, buckets_of, expired
from schemas.responses import Rating
from streams.runtime.model import table_key
from streams.stages.metrics_rules import PRUNE_EVERY, TOUCHPOINT_PREFIX, Counts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, MutableMapping
    from datetime import timedelta

    from engine.silence import ActivityConfig, SignalCounts
    from streams.runtime.model import Deferred, ScanView

    Writes = MutableMapping[str, str | Deferred | None]

LEDGER_TABLE = "metrics-ledger"
ROLLUP_TABLE = "metrics-rollup"
DETECTOR_TABLE = "detector-state"
ACTIVITY_TABLE = "detector-activity"


def ledger_entry(owner: str, kind: str, survey_id: str) -> str:
    """Give the ledger table's key of a touchpoint's rating (``r``) or send (``s``)."""
    return table_key(LEDGER_TABLE, f"{owner}|{kind}|{survey_id}")


class Ledgers:
    """The ledgers of the partitions this worker owns, and what is not yet published.

    A touchpoint's ledger is stored entry by entry in the ledger table. A
    roll-up (channel, service) is counted in parts, one per partition of the
    internal topic: the part of partition *p* holds the ratings of the
    touchpoints whose key is in *p*, so each rating is routed and handled
    once, not once per key, and a roll-up that takes most ratings (a channel)
    is no hot partition. Parts are not stored: each touchpoint entry holds
    its Rating, which names its channel and service, so they are rebuilt
    with the touchpoint ledgers. A publish tick sends changed parts to the
    combining stage (:mod:`streams.stages.rollups`).
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
        """Drop the ledgers: the table is the truth again.

        The keys not yet published stay marked; reloading marks every key anyway.
        """
        self.by_owner = None
        self.parts = {}

    def loaded(self, state: ScanView) -> dict[str, Ledger]:
        """Give the ledgers, rebuilding them from the table if they were forgotten."""
        return self.by_owner if self.by_owner is not None else self.load(state.scan(LEDGER_TABLE))

    def load(self, entries: Iterable[tuple[str, str]]) -> dict[str, Ledger]:
        """Rebuild every ledger and part from the table's entries.

        Entries of roll-up keys, stored before roll-ups were counted in parts,
        are left out: their ratings are in the touchpoint entries too.
        """
        by_owner: dict[str, Ledger] = {}
        self.parts = {}
        for entry, value in entries:
            owner, kind, survey_id = entry.rsplit("|", 2)
            if not owner.startswith(TOUCHPOINT_PREFIX):
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

    def count(  # noqa: PLR0917 - one record's coordinates, each needed
        self,
        state: ScanView,
        writes: Writes,
        owner: str,
        value: bytes,
        rating: Rating | None,
        sent: tuple[str, datetime] | None,
        partition: int,
    ) -> bool:
        """Count a rating (as it came, and parsed) or a send in its touchpoint's ledger.

        Gives whether the ledger changed: a revision already counted and a
        send already known change nothing. What changed is written to the
        table, a rating as it came (it was validated as a Rating, so it loads
        back as the same one, without serialising it again).
        """
        ledger = self.loaded(state).setdefault(owner, Ledger(owner))
        if rating is not None:
            if not ledger.add_rating(rating):
                return False
            writes[ledger_entry(owner, "r", rating.survey_id)] = value.decode()
            self.count_parts(rating, partition)
        elif sent is not None:
            if not ledger.add_sent(*sent):
                return False
            writes[ledger_entry(owner, "s", sent[0])] = sent[1].isoformat()
        self.dirty.add(owner)
        changes = self.changes[owner] = self.changes.get(owner, 0) + 1
        if changes % PRUNE_EVERY == 0:
            pruned = ledger.prune()
            for survey_id in pruned.ratings:
                writes[ledger_entry(owner, "r", survey_id)] = None
            for survey_id in pruned.sent:
                writes[ledger_entry(owner, "s", survey_id)] = None
        return True


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
        """Drop the mirror: the table is the truth again."""
        self.by_owner = None

    def loaded(self, state: ScanView) -> dict[str, dict[str, Part]]:
        """Give the parts by roll-up, rebuilding them from the table if they were forgotten."""
        if self.by_owner is None:
            by_owner: dict[str, dict[str, Part]] = {}
            for key, value in state.scan(ROLLUP_TABLE):
                by_owner.setdefault(key.rpartition("|")[0], {})[key] = Part.loads(value)
            self.by_owner = by_owner
            self.dirty |= set(by_owner)
        return self.by_owner


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
        self.by_touchpoint: dict[str, dict[Signal, Counts]] | None = None
        self.partition_of: dict[str, int] = {}

    def forget(self) -> None:
        """Drop the mirror: the tables are the truth again."""
        self.by_touchpoint = None
        self.partition_of = {}

    def loaded(self, state: ScanView) -> dict[str, dict[Signal, Counts]]:
        """Give the mirror, rebuilding it from the tables' entries if needed."""
        if self.by_touchpoint is not None:
            return self.by_touchpoint
        by_touchpoint: dict[str, dict[Signal, Counts]] = {}
        for key, value in state.scan(ACTIVITY_TABLE):
            touchpoint, signal, tier, *bucket = key.split("|")
            counts = by_touchpoint.setdefault(touchpoint, {}).setdefault(Signal(signal), Counts())
            if tier == "first":
                first_at, partition = value.split("|")
                counts.first_at = float(first_at)
                self.partition_of[touchpoint] = int(partition)
            else:
                counts.hourly[int(bucket[0])] = int(value)
        for touchpoint, value in state.scan(DETECTOR_TABLE):
            raw = json.loads(value)
            if raw.get("partition") is None:
                continue  # written before answers were counted
            self.partition_of[touchpoint] = raw["partition"]
            counts = by_touchpoint.setdefault(touchpoint, {}).setdefault(Signal.ANSWERS, Counts())
            counts.first_at = raw["answers_first"]
            counts.hourly = {int(hour): count for hour, count in raw["answers"].items()}
        self.by_touchpoint = by_touchpoint
        return by_touchpoint

    def count(  # noqa: PLR0917 - one event's coordinates, each needed
        self,
        state: ScanView,
        writes: Writes,
        touchpoint: str,
        signal: Signal,
        at: datetime,
        partition: int,
        now: datetime,
    ) -> Counts:
        """Count one event in the mirror; write what changed unless it is an answer.

        Returns the signal's counts, for the caller to store an answer's with
        the detector entry.
        """
        signals = self.loaded(state).setdefault(touchpoint, {})
        counts = signals.setdefault(signal, Counts())
        prefix = f"{touchpoint}|{signal.value}"
        seconds = at.timestamp()
        self.partition_of[touchpoint] = partition
        if counts.first_at is None or seconds < counts.first_at:
            counts.first_at = seconds
            if signal is not Signal.ANSWERS:
                writes[table_key(ACTIVITY_TABLE, f"{prefix}|first")] = f"{seconds}|{partition}"
        buckets = buckets_of(at, now, self.config)
        if buckets.hour is not None:
            counts.hourly[buckets.hour] = counts.hourly.get(buckets.hour, 0) + 1
            if signal is not Signal.ANSWERS:
                key = table_key(ACTIVITY_TABLE, f"{prefix}|h|{buckets.hour}")
                writes[key] = str(counts.hourly[buckets.hour])
        if buckets.recent is not None:
            counts.recent[buckets.recent] = counts.recent.get(buckets.recent, 0) + 1
        return counts

    def prune(
        self, state: ScanView, writes: Writes, touchpoint: str, now: datetime
    ) -> dict[Signal, SignalCounts]:
        """Forget buckets no verdict needs any more; give the touchpoint's counts.

        The answers' hourly buckets are pruned in the mirror only: the caller
        stores them with the detector entry.
        """
        signals = self.loaded(state).get(touchpoint, {})
        for signal, counts in signals.items():
            old = expired(counts.view(), now, self.config)
            for hour in old.hours:
                del counts.hourly[hour]
                if signal is not Signal.ANSWERS:
                    key = f"{touchpoint}|{signal.value}|h|{hour}"
                    writes[table_key(ACTIVITY_TABLE, key)] = None
            for begins in old.recent:
                del counts.recent[begins]
        return {signal: counts.view() for signal, counts in signals.items()}
