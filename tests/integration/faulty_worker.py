"""``palaute worker`` with a fault injected: chosen stages' handlers raise on chosen records.

Usage: ``python faulty_worker.py STAGE=MARKER[,STAGE=MARKER…] worker --config …``

Only the handler is replaced, for a record whose value holds the stage's
marker, by one that raises: the worker, its stages and their containment are
the real ones, so a test sees what a bug in that stage's handler would do.
"""

from __future__ import annotations

import sys
from typing import Any

from palaute.cli import main
from streams import containment


class InjectedFaultError(RuntimeError):
    """The error a broken handler raises."""


def inject(faults: dict[str, bytes]) -> None:
    """Make the stage named in ``faults`` fail on every record that holds its marker."""
    original = containment.Containment.run

    async def run(self: containment.Containment, record: Any, handler: Any, *args: Any) -> Any:
        marker = faults.get(self.stage.value)
        if marker is not None and marker in (record.value or b""):

            async def broken(*_args: Any) -> None:
                raise InjectedFaultError

            return await original(self, record, broken)
        return await original(self, record, handler, *args)

    containment.Containment.run = run  # type: ignore[method-assign]


if __name__ == "__main__":
    spec, *argv = sys.argv[1:]
    inject(
        {
            stage: marker.encode()
            for stage, marker in (part.split("=", 1) for part in spec.split(","))
        }
    )
    sys.exit(main(argv))
