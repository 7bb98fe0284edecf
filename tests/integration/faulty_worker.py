"""``palaute worker`` with a fault injected: chosen stages' handlers raise on chosen records.

Usage: ``python faulty_worker.py STAGE=MARKER[,STAGE=MARKER…] worker --config …``

``STAGE`` is a stage's name or label (``intake``, ``intake-decide``,
``scheduler`` …). Only the handler is replaced, for a record whose value
holds the stage's marker, by one that raises: the worker, its stages, the
runtime and the per-record containment are the real ones, so a test sees
what a bug in that stage's handler would do.
"""

from __future__ import annotations

import sys
from typing import Any

from palaute.cli import main
from streams import containment
from streams.runtime import checkpoint


class InjectedFaultError(RuntimeError):
    """The error a broken handler raises."""


class _Broken:
    """A stage whose handler raises, under the name and label of the real one."""

    def __init__(self, stage: Any) -> None:
        self.name = stage.name
        self.label = stage.label

    def handle(self, *_args: Any) -> Any:
        raise InjectedFaultError


def _marker(faults: dict[str, bytes], names: tuple[str, ...], record: Any) -> bool:
    value = record.value or b""
    return any(name in faults and faults[name] in value for name in names)


def inject(faults: dict[str, bytes]) -> None:
    """Make the stages named in ``faults`` fail on every record that holds their marker."""
    run = containment.Containment.run
    handle = checkpoint.Checkpoint.handle

    async def guarded_run(
        self: containment.Containment, record: Any, handler: Any, *args: Any
    ) -> Any:
        if _marker(faults, (self.stage.value,), record):

            async def broken(*_args: Any) -> None:
                raise InjectedFaultError

            return await run(self, record, broken)
        return await run(self, record, handler, *args)

    def checkpoint_handle(self: checkpoint.Checkpoint, record: Any, now: Any) -> None:
        if not _marker(faults, (self.stage.name, self.stage.label), record):
            handle(self, record, now)
            return
        real = self.stage
        self.stage = _Broken(real)
        try:
            handle(self, record, now)
        finally:
            self.stage = real

    containment.Containment.run = guarded_run  # type: ignore[method-assign]
    checkpoint.Checkpoint.handle = checkpoint_handle  # type: ignore[method-assign]


if __name__ == "__main__":
    spec, *argv = sys.argv[1:]
    pairs = (part.split("=", 1) for part in spec.split(","))
    inject({stage: marker.encode() for stage, marker in pairs})
    sys.exit(main(argv))
