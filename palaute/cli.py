"""The ``palaute`` command line.

Each subcommand lives in its own module under :mod:`palaute.commands` and
registers itself here, so the entry point stays a table of contents and a new
command never has to touch another command's code.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING

from palaute import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

# Modules under palaute.commands, each exposing ``register(subparsers)``.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "kafka",
    "events",
    "schemas",
    "config",
    "catalogue",
    "worker",
    "web",
    "twilio_sim",
    "metrics",
    "bench",
    "privacy",
    "digest",
)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every command module, in a stable order."""
    parser = argparse.ArgumentParser(
        prog="palaute",
        description="Palaute: contact events in, one-tap micro-surveys out, "
        "rolling scores and alerts for operations teams.",
    )
    parser.add_argument("--version", action="version", version=f"palaute {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        import_module(f"palaute.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and turn its result into the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`palaute events sample … | head`): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
