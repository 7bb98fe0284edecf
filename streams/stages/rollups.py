"""Roll-ups as a pure stage: keep each partition's part of a roll-up, publish their sum.

The metrics stage counts a roll-up (``channel:<name>``, ``service:<key>``)
in parts, one per partition of its input, and publishes a changed part to
the internal roll-up topic, keyed ``<roll-up key>|<partition>``, in the
partition of the roll-up key. :class:`CombineRollups` reads that topic,
keeps the latest part of each roll-up from each partition in the table
``metrics-rollup`` (a part replaces the one before it: it is the whole of
what its partition counted), and on a publish tick of partition *p*
publishes the figures of the changed roll-ups of *p*, summed from their
parts (:func:`engine.ledger.combined`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from engine.ledger import Part, combined
from streams.runtime.model import NOTHING, Output, Rejection, table_key
from streams.stages.metrics import Published, figures_records
from streams.stages.metrics_mirrors import ROLLUP_TABLE, Rollups
from streams.stages.metrics_rules import PUBLISH_TICK

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from streams.runtime.model import Record, ScanView, StateView

#: Unreadable parts are set aside under the metrics stage's label.
LABEL = "metrics"
UNREADABLE_PART = "unreadable_rollup_part"


def read_part(value: bytes) -> Part | None:
    """Read a part as the metrics stage wrote it; None when it cannot be read."""
    try:
        return Part.loads(value)
    except (ValueError, KeyError, TypeError):
        return None


class CombineRollups:
    """The roll-up stage: the latest part per roll-up and partition, their sum published."""

    name = "metrics-rollup"
    label = LABEL

    def __init__(self, windows: list[timedelta], partition_of: Callable[[str], int]) -> None:
        self._windows = windows
        self._partition_of = partition_of
        self.rollups = Rollups()

    def forget(self, *, moved: bool) -> None:
        """Drop the mirror of the parts: the table is the truth again."""
        del moved
        self.rollups.forget()

    def has_changes(self, partition: int) -> bool:
        """Tell whether a publish tick on ``partition`` would publish anything."""
        rollups = self.rollups
        return rollups.by_owner is None or any(
            self._partition_of(owner) == partition for owner in rollups.dirty
        )

    def handle(self, view: StateView, record: Record, now: datetime) -> Output:
        """Keep a part, or publish the changed roll-ups of the tick's partition."""
        del now
        # The runtimes give a stage of several tables its state as a ScanView.
        state = cast("ScanView", view)
        value = record.value or b""
        if value == PUBLISH_TICK:
            return self._publish(state, record.partition)
        part = read_part(value)
        if part is None:
            # Written by the metrics stage, so only a worker of another version could
            # send it; the next part from the same partition replaces it anyway.
            return Output(rejection=Rejection(UNREADABLE_PART, "not a roll-up part"))
        key = (record.key or b"").decode()
        owner = key.rpartition("|")[0]
        self.rollups.loaded(state).setdefault(owner, {})[key] = part
        self.rollups.dirty.add(owner)
        return Output(state={table_key(ROLLUP_TABLE, key): value.decode()})

    def _publish(self, state: ScanView, partition: int) -> Output:
        by_owner = self.rollups.loaded(state)
        mine = sorted(o for o in self.rollups.dirty if self._partition_of(o) == partition)
        if not mine:
            return NOTHING
        self.rollups.dirty.difference_update(mine)
        produce = []
        observations = []
        for owner in mine:
            figures = combined(owner, by_owner.get(owner, {}).values()).figures(self._windows)
            produce += figures_records(owner, figures)
            observations += [Published(f) for f in figures]
        return Output(produce=tuple(produce), observations=tuple(observations))
