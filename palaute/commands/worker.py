"""``palaute worker --config FILE``: run the stream stages as one worker process.

Before faust starts, the worker creates every topic it reads or writes that
does not exist yet, with its documented partitions and configs, so that its
consumer finds them all when it first joins (:mod:`streams.topics_setup`).
It exits with status 2, naming the topics and the commands that create them,
when it may not create them, and with 3 when Kafka does not answer.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError

from schemas.config import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse

    import faust

    from schemas.config import Settings

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


#: Exit codes: topics missing that the worker may not create; Kafka not reachable.
EXIT_TOPICS_MISSING = 2
EXIT_NO_BROKER = 3


@dataclass(frozen=True)
class StartProblem:
    """Why the worker did not start, for its standard error, and its exit code."""

    message: str
    exit_code: int


def prepare_topics(app: faust.App, settings: Settings) -> StartProblem | None:
    """Create every topic the worker touches before its consumer joins the group.

    Done before faust starts, so the consumer's first subscription finds
    every input topic (see :mod:`streams.topics_setup`). Runs on a loop of
    its own in a thread, leaving the main thread's loop to faust.
    """
    from streams import topics_setup  # noqa: PLC0415 - as create_app

    plans = topics_setup.worker_topics(app, settings)

    def in_thread() -> topics_setup.SetupReport:
        return asyncio.run(topics_setup.ensure_topics(settings.kafka, plans))

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="palaute-topic-setup") as pool:
            report = pool.submit(in_thread).result()
    except topics_setup.TopicSetupError as error:
        return StartProblem(str(error), EXIT_TOPICS_MISSING)
    except (TimeoutError, KafkaError) as error:
        servers = ", ".join(settings.kafka.bootstrap_servers)
        return StartProblem(
            f"cannot start the worker: Kafka at {servers} did not answer or did not make "
            f"the topics ready in {topics_setup.SETUP_TIMEOUT_SECONDS:.0f} s "
            f"({type(error).__name__})",
            EXIT_NO_BROKER,
        )
    for line in topics_setup.describe(report):
        print(line, file=sys.stderr)
    return None


def load_catalogue(app: faust.App, settings: Settings) -> StartProblem | None:
    """Read the catalogue topic before faust starts, as :func:`prepare_topics` runs."""
    from connectors.catalogue import CatalogueUnavailableError  # noqa: PLC0415 - as create_app
    from streams import catalogue  # noqa: PLC0415 - as create_app

    def in_thread() -> None:
        asyncio.run(catalogue.load(catalogue.follower_of(app), settings))

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="palaute-catalogue") as pool:
            pool.submit(in_thread).result()
    except (TimeoutError, KafkaError, CatalogueUnavailableError) as error:
        servers = ", ".join(settings.kafka.bootstrap_servers)
        return StartProblem(
            f"cannot start the worker: the catalogue topic at {servers} could not be read "
            f"({type(error).__name__})",
            EXIT_NO_BROKER,
        )
    print(f"catalogue version {settings.catalogue.version} in force", file=sys.stderr)
    return None


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
    problem = prepare_topics(app, settings) or load_catalogue(app, settings)
    if problem is not None:
        print(problem.message, file=sys.stderr)
        return problem.exit_code
    worker = _worker_class()(app, loglevel=args.loglevel)
    # faust's start-up spinner turns every logger to DEBUG below --loglevel info, and the
    # worker then spends a few per cent of its time on records it throws away.
    worker.spinner = None
    tune_garbage_collector()
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 1
