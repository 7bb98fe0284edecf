"""``palaute demo``: the whole engine live on this machine, in one command.

It starts the local Kafka broker (fetching its jars on first use), the
topics, ``palaute web`` and ``palaute worker``, the Twilio simulator and an
SMTP server; a synthetic front office sends contact-completed events over
about fifteen touchpoints, simulated citizens answer by SMS and one-tap
email, and after a while one touchpoint's service degrades until the
detector raises an alert. Ctrl-C stops everything it started.
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
        help="run the whole engine locally on an embedded default",
        description="Start a local Kafka broker, the web service, a worker, a Twilio simulator "
        "and an SMTP server; feed them a synthetic front office and simulated citizens, degrade "
        "one touchpoint after a while and show the alert. Ctrl-C stops everything it started. "
        "Exit status 0 when the alert for the degraded touchpoint fired.",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="traffic multiplier: about 12 contacts a second at 1 (default 1)",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--degrade-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="degrade the phone service this long after the start, once it has its baseline "
        "of ratings (default 60)",
    )
    demo.add_argument(
        "--exit-on-alert",
        action="store_true",
        help="stop a few seconds after the alert for the degraded touchpoint",
    )
    demo.add_argument(
        "--events", type=int, default=None, help="stop the front office after this many contacts"
    )
    demo.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    demo.add_argument(
        "--web-port",
        type=int,
        default=8080,
        help="web service port (default 8080; 0 or a taken port: any free one)",
    )
    demo.add_argument(
        "--timeout", type=float, default=None, help="deprecated: the same as --duration"
    )
    demo.add_argument(
        "--keep-kafka",
        action="store_true",
        help="leave the broker and the run's topics afterwards (stop it with `palaute kafka down`)",
    )
    demo.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from palaute.demo.run import DemoOptions, run_demo  # noqa: PLC0415 - keeps `palaute --help` fast

    if args.events is not None and args.events < 1:
        print("palaute demo: --events must be at least 1")
        return 2
    if args.speed <= 0:
        print("palaute demo: --speed must be above 0")
        return 2
    duration = args.duration
    if args.timeout is not None:
        print("palaute demo: --timeout is deprecated; use --duration")
        duration = duration if duration is not None else args.timeout
    options = DemoOptions(
        speed=args.speed,
        duration=duration,
        degrade_after=args.degrade_after,
        events=args.events,
        port=args.port,
        web_port=args.web_port,
        keep_kafka=args.keep_kafka,
        exit_on_alert=args.exit_on_alert,
    )
    try:
        return run_demo(options)
    except LocalKafkaError as error:
        print(f"palaute demo: {error}")
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting up; what was started is stopped
        return 130
