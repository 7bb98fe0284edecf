"""``palaute worker --config FILE``: run the stream stages as one worker process.

Start as many as there are cores to spare, on as many hosts as needed: workers
with the same ``[streams] app_id`` form one Kafka consumer group and share the
partitions. Ctrl-C or SIGTERM stops a worker cleanly: it finishes the record
in hand, flushes what it produced, commits its offsets and leaves the group.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.config import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse

    import faust

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``worker``."""
    parser = subparsers.add_parser(
        "worker",
        help="run the stream stages as one worker of the consumer group",
        description="Run the faust worker: validate and pseudonymise contact events, decide "
        "each one with the survey policy, and publish the decisions. Several workers with the "
        "same [streams] app_id share the work. Ctrl-C or SIGTERM stops it cleanly.",
    )
    parser.add_argument(
        "--config", type=Path, required=True, help="configuration file (TOML); see config example"
    )
    parser.add_argument(
        "--loglevel", choices=LOG_LEVELS, default="info", help="log level (default info)"
    )
    parser.set_defaults(handler=run)


def _worker_class() -> type[faust.Worker]:
    """Give faust's Worker with a SIGUSR1 that logs where every task waits (streams.diagnostics)."""
    import faust  # noqa: PLC0415 - faust is heavy; only the worker imports it

    from streams.diagnostics import consumer_state, task_stacks  # noqa: PLC0415 - as above

    class Worker(faust.Worker):
        async def _cry(self) -> None:
            logging.getLogger("palaute.worker").warning(
                "SIGUSR1: where every task waits\n%s\nconsumer:\n%s",
                task_stacks(asyncio.get_running_loop()),
                consumer_state(self.app),
            )

    return Worker


#: Allocations between two collections of the youngest generation (CPython's default: 700).
GC_YOUNG_THRESHOLD = 20_000


def tune_garbage_collector() -> None:
    """Make the cycle collector cheaper for a worker holding a large, long-lived state.

    A worker allocates and frees a few hundred objects per record (parsed
    events, table writes), nearly all freed by reference counting, and
    keeps hundreds of thousands alive (ledgers, detector state). With
    CPython's defaults the collector runs every 700 allocations and now and
    then walks the whole heap. Objects from start-up (modules, classes,
    settings) are frozen out of every collection, and the young generation
    is collected less often; cyclic garbage waits a little longer, which
    costs a little memory, not correctness.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def run(args: argparse.Namespace) -> int:
    """Load the settings, build the app and run it until stopped."""
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    # Imported here: faust is heavy, and other commands must not pay for it.
    from streams.app import create_app  # noqa: PLC0415 - imports faust

    try:
        app = create_app(settings)
    except ValueError as error:  # e.g. Kafka security settings the worker cannot use
        print(f"cannot start the worker: {error}", file=sys.stderr)
        return 1
    worker = _worker_class()(app, loglevel=args.loglevel)
    # faust's start-up spinner turns every logger to DEBUG below --loglevel info, and the
    # worker then spends a few per cent of its time on records it throws away.
    worker.spinner = None
    tune_garbage_collector()
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 1
