"""``palaute worker`` with a fault injected: chosen stages' handlers raise on chosen records.

Usage: ``python faulty_worker.py STAGE=MARKER[,STAGE=MARKER…] worker --config …``

``STAGE`` is a stage's name or label (``intake``, ``intake-decide``,
``scheduler`` …). Only the handler is replaced, for a record whose value
holds the stage's marker, by one that raises: the worker, its stages, the
runtime and its per-record containment are the real ones, so a test sees
what a bug in that stage's handler would do. A stage's part of a shared
reader (its forwarder) is matched by its label.
"""

from __future__ import annotations

import sys
from typing import Any

from palaute.cli import main
from streams.runtime import checkpoint
from streams.runtime.fanout import FanOut


class InjectedFaultError(RuntimeError):
    """The error a broken handler raises."""


class _Broken:
    """A stage whose handler raises, under the name and label of the real one."""

    def __init__(self, stage: Any) -> None:
        self.name = stage.name
        self.label = stage.label

    def handle(self, *_args: Any) -> Any:
        raise InjectedFaultError


class _BrokenPart:
    """A shared reader's part whose handler raises on a marked record."""

    def __init__(self, part: Any, marker: bytes) -> None:
        self.label = part.label
        self._part = part
        self._marker = marker

    def handle(self, record: Any, now: Any) -> Any:
        if self._marker in (record.value or b""):
            raise InjectedFaultError
        return self._part.handle(record, now)


def _marker(faults: dict[str, bytes], names: tuple[str, ...], record: Any) -> bool:
    value = record.value or b""
    return any(name in faults and faults[name] in value for name in names)


def inject(faults: dict[str, bytes]) -> None:
    """Make the stages named in ``faults`` fail on every record that holds their marker."""
    handle = checkpoint.Checkpoint.handle

    def checkpoint_handle(self: checkpoint.Checkpoint, record: Any, now: Any) -> None:
        if isinstance(self.stage, FanOut):
            parts = self.stage.parts
            self.stage.parts = [
                _BrokenPart(part, faults[part.label]) if part.label in faults else part
                for part in parts
            ]
            try:
                handle(self, record, now)
            finally:
                self.stage.parts = parts
            return
        if not _marker(faults, (self.stage.name, self.stage.label), record):
            handle(self, record, now)
            return
        real = self.stage
        self.stage = _Broken(real)
        try:
            handle(self, record, now)
        finally:
            self.stage = real

    checkpoint.Checkpoint.handle = checkpoint_handle  # type: ignore[method-assign]


if __name__ == "__main__":
    spec, *argv = sys.argv[1:]
    pairs = (part.split("=", 1) for part in spec.split(","))
    inject({stage: marker.encode() for stage, marker in pairs})
    sys.exit(main(argv))
