"""What a record's handler reads: the stored state with its batch's earlier writes on top.

Within a batch nothing is stored until the checkpoint commits, yet a later
record must see what an earlier one changed (two answers of one survey,
two contacts of one citizen): :class:`Overlay` gives it that view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from streams.runtime.model import stored_value

if TYPE_CHECKING:
    from collections.abc import Iterable

    from streams.runtime.model import Deferred, Record, ScanView, StateView


class Overlay:
    """The stage's state with this batch's writes on top, so one record sees the last."""

    def __init__(
        self, base: StateView, writes: dict[str, tuple[Record, str | Deferred | None]]
    ) -> None:
        self._base = base
        self._writes = writes

    def get(self, key: str) -> str | None:
        """Give the batch's last write of the key, else the stored value."""
        if key in self._writes:
            return stored_value(self._writes[key][1])
        return self._base.get(key)

    def scan(self, table: str) -> Iterable[tuple[str, str]]:
        """Give a table's stored entries with the batch's writes on top (a ScanView's scan)."""
        # Only a stage whose state is a ScanView scans.
        entries = dict(cast("ScanView", self._base).scan(table))
        prefix = f"{table}/"
        for key, (_record, value) in self._writes.items():
            if key.startswith(prefix):
                stored = stored_value(value)
                if stored is None:
                    entries.pop(key[len(prefix) :], None)
                else:
                    entries[key[len(prefix) :]] = stored
        return entries.items()
