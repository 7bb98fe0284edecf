"""``palaute demo``: the main job, run locally on an embedded default.

It starts the local Kafka broker (fetching its jars on first use) and one
Palaute worker, lets a synthetic front office send contact-completed events,
and shows live how the intake decides each contact once: scheduled by SMS or
email, or skipped with the policy's reason, and broken records dead-lettered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ops.kafka import LocalKafkaError

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="run Palaute locally on an embedded default",
        description="Start a local Kafka broker and a Palaute worker, feed them a synthetic "
        "front office and show every decision live. Ctrl-C stops everything it started.",
    )
    demo.add_argument("--events", type=int, default=300, help="contact events (default 300)")
    demo.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    demo.add_argument(
        "--timeout", type=float, default=180.0, help="give up after this many seconds"
    )
    demo.add_argument(
        "--keep-kafka",
        action="store_true",
        help="leave the broker running afterwards (stop it with `palaute kafka down`)",
    )
    demo.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from palaute.demo.run import run_demo  # noqa: PLC0415 - keeps `palaute --help` fast

    if args.events < 1:
        print("palaute demo: --events must be at least 1")
        return 2
    try:
        return run_demo(
            events=args.events, port=args.port, keep_kafka=args.keep_kafka, timeout=args.timeout
        )
    except LocalKafkaError as error:
        print(f"palaute demo: {error}")
        return 1
