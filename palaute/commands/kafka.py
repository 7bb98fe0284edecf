"""``palaute kafka up | down | status``: a real local broker without Docker.

Results go to stdout and problems to stderr, and the exit status is what
scripts test: ``status`` exits 0 when the broker is up and 3 when it is down
(the convention of ``systemctl status`` and LSB init scripts), 1 when our
process runs but does not answer Kafka requests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ops.kafka import (
    HOST,
    KAFKA_VERSION,
    BrokerState,
    LocalKafka,
    LocalKafkaError,
    load_settings,
)

if TYPE_CHECKING:
    from ops.kafka import KafkaSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_ANSWERING = 1
EXIT_DOWN = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``kafka`` and its actions to the ``palaute`` command line."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--port",
        type=int,
        help="broker port on 127.0.0.1 (default 9092, or PALAUTE_KAFKA_PORT)",
    )
    where.add_argument(
        "--controller-port",
        type=int,
        help="KRaft controller port (default: port + 1, or PALAUTE_KAFKA_CONTROLLER_PORT)",
    )
    where.add_argument(
        "--state-dir",
        type=Path,
        help="configuration, data, log and pid file of this broker "
        "(default ~/.cache/palaute/kafka/run-PORT, or PALAUTE_KAFKA_STATE_DIR)",
    )

    kafka = subparsers.add_parser(
        "kafka",
        help="run a local Apache Kafka broker for development and tests",
        description=f"Run a single-node Apache Kafka {KAFKA_VERSION} broker (KRaft) on "
        f"{HOST}. Its jars are fetched from Maven Central with Maven on first use.",
    )
    actions = kafka.add_subparsers(dest="kafka_action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up", parents=[where], help="start the broker (if not running) and wait until it answers"
    )
    up.add_argument(
        "--timeout",
        dest="startup_timeout",
        type=float,
        help="seconds to wait for the broker to answer (default 60)",
    )
    up.set_defaults(handler=run_up)

    down = actions.add_parser("down", parents=[where], help="stop the broker")
    down.add_argument(
        "--wipe",
        action="store_true",
        help="also delete its data and logs, so the next `up` starts an empty broker",
    )
    down.set_defaults(handler=run_down)

    status = actions.add_parser(
        "status", parents=[where], help="say whether the broker is up (exit 0) or down (exit 3)"
    )
    status.set_defaults(handler=run_status)


def run_up(args: argparse.Namespace) -> int:
    """Start the broker, or confirm the one already running."""
    kafka = _local_kafka(args)
    if kafka is None:
        return EXIT_FAILED
    try:
        status = kafka.up()
    except LocalKafkaError as error:
        return _fail("up", error)
    if status.started:
        print(
            f"Kafka is up at {status.bootstrap_servers} (pid {status.pid}), log: {status.log_path}"
        )
    else:
        print(f"Kafka is already up at {status.bootstrap_servers} (pid {status.pid})")
    return EXIT_OK


def run_down(args: argparse.Namespace) -> int:
    """Stop the broker; stopping one that is not running is not an error."""
    kafka = _local_kafka(args)
    if kafka is None:
        return EXIT_FAILED
    try:
        stopped = kafka.down(wipe=args.wipe)
    except LocalKafkaError as error:
        return _fail("down", error)
    if stopped is None:
        print("Kafka is not running")
    else:
        print(f"Kafka stopped (pid {stopped.pid})")
    if args.wipe:
        print(f"removed the broker's data and logs in {kafka.settings.state_dir}")
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    """Report the broker's real state, for people and for scripts."""
    kafka = _local_kafka(args)
    if kafka is None:
        return EXIT_FAILED
    status = kafka.status()
    if status.state is BrokerState.UP:
        print(f"up at {status.bootstrap_servers} (pid {status.pid}), log: {status.log_path}")
        return EXIT_OK
    if status.state is BrokerState.NOT_ANSWERING:
        print(
            f"not answering: Kafka (pid {status.pid}) runs but {status.bootstrap_servers} "
            f"does not answer (starting, or stuck), log: {status.log_path}"
        )
        return EXIT_NOT_ANSWERING
    print("down")
    return EXIT_DOWN


def _local_kafka(args: argparse.Namespace) -> LocalKafka | None:
    try:
        settings: KafkaSettings = load_settings(
            port=args.port,
            controller_port=args.controller_port,
            state_dir=args.state_dir,
            startup_timeout=getattr(args, "startup_timeout", None),
        )
    except LocalKafkaError as error:
        _fail(args.kafka_action, error)
        return None
    return LocalKafka(settings)


def _fail(action: str, error: LocalKafkaError) -> int:
    print(f"palaute kafka {action}: {error}", file=sys.stderr)
    return EXIT_FAILED
