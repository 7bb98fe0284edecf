"""``palaute bench <name>``: measurements whose figures the docs quote.

Subcommands live in one table, so a new benchmark is a new row and a new
module under :mod:`palaute.bench`, never a change to another benchmark.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


def _alerts_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("out/bench-alerts.json"),
        help="where to write the figures as JSON (default: out/bench-alerts.json)",
    )
    parser.add_argument("--quick", action="store_true", help="a small run, for smoke tests")
    parser.add_argument("--seed", type=int, default=None, help="simulation seed")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: 2)")


def _alerts(args: argparse.Namespace) -> int:
    from palaute.bench import alerts  # noqa: PLC0415 - keep the command line quick to start

    plan = alerts.QUICK if args.quick else alerts.FULL
    if args.seed is not None:
        plan = replace(plan, seed=args.seed)
    if args.workers is not None:
        plan = replace(plan, workers=max(1, args.workers))
    summary = alerts.run(plan)
    print(alerts.render(summary))
    alerts.write_json(summary, args.json)
    failures = alerts.acceptance(summary)
    print()
    print(f"changes of {plan.drop} points; seed {plan.seed}; figures in {args.json}")
    if failures:
        print("acceptance targets not met: " + "; ".join(failures))
    else:
        print("acceptance targets met")
    return 0


def _console_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("out/bench-console.json"),
        help="where to write the figures as JSON (default: out/bench-console.json)",
    )
    parser.add_argument("--quick", action="store_true", help="a small run, for smoke tests")
    parser.add_argument("--touchpoints", type=int, default=None, help="touchpoints (default: 500)")
    parser.add_argument("--requests", type=int, default=None, help="requests of each kind")


def _console(args: argparse.Namespace) -> int:
    from palaute.bench import console  # noqa: PLC0415 - keep the command line quick to start

    plan = console.QUICK if args.quick else console.FULL
    if args.touchpoints is not None:
        plan = replace(plan, touchpoints=max(1, args.touchpoints))
    if args.requests is not None:
        plan = replace(plan, requests=max(1, args.requests))
    summary = console.run(plan, lambda line: print(line, file=sys.stderr, flush=True))
    print(console.render(summary))
    console.write_json(summary, args.json)
    print(f"figures in {args.json}")
    return 0


def _intake_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("out/bench-intake.json"),
        help="where to write the figures as JSON (default: out/bench-intake.json)",
    )
    parser.add_argument("--quick", action="store_true", help="500 events, for smoke tests")
    parser.add_argument("--events", type=int, default=None, help="events (default: 200000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="also run N worker processes in one group, on topics of their own (default: 1, off)",
    )
    parser.add_argument(
        "--bootstrap",
        default=None,
        help="host:port of a running broker (default: start one of its own on free ports)",
    )


def _intake(args: argparse.Namespace) -> int:
    from palaute.bench import intake  # noqa: PLC0415 - keep the command line quick to start

    plan = intake.QUICK if args.quick else intake.FULL
    if args.events is not None:
        plan = replace(plan, events=max(1, args.events))
    if args.workers is not None:
        plan = replace(plan, workers=max(1, args.workers))
    summary = intake.run(plan, bootstrap=args.bootstrap)
    print(intake.render(summary))
    intake.write_json(summary, args.json)
    print(f"figures in {args.json}")
    return 0


def _common_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(
        "--json",
        type=Path,
        default=Path(f"out/bench-{name}.json"),
        help=f"where to write the figures as JSON (default: out/bench-{name}.json)",
    )
    parser.add_argument("--quick", action="store_true", help="a small run, for smoke tests")
    parser.add_argument(
        "--bootstrap",
        default=None,
        help="host:port of a running broker (default: start one of its own on free ports)",
    )


def _report(module: Any, summary: dict[str, Any], path: Path) -> int:
    print(module.render(summary))
    module.write_json(summary, path)
    misses = module.acceptance(summary)
    print()
    print(f"figures in {path}")
    print("targets not met: " + "; ".join(misses) if misses else "targets met")
    return 0


def _scheduler_arguments(parser: argparse.ArgumentParser) -> None:
    _common_arguments(parser, "scheduler")
    parser.add_argument("--pending", type=int, default=None, help="surveys (default: 1000000)")
    parser.add_argument(
        "--due-at-once", type=int, default=None, help="surveys falling due together (10000)"
    )


def _scheduler(args: argparse.Namespace) -> int:
    from palaute.bench import scheduler  # noqa: PLC0415 - keep the command line quick to start

    plan = scheduler.QUICK if args.quick else scheduler.FULL
    if args.pending is not None:
        plan = replace(plan, pending=max(2, args.pending))
    if args.due_at_once is not None:
        plan = replace(plan, due_at_once=max(1, min(args.due_at_once, plan.pending - 1)))
    return _report(scheduler, scheduler.run(plan, bootstrap=args.bootstrap), args.json)


def _dispatch_arguments(parser: argparse.ArgumentParser) -> None:
    _common_arguments(parser, "dispatch")
    parser.add_argument("--messages", type=int, default=None, help="surveys (default: 1000)")
    parser.add_argument(
        "--limit", type=float, default=None, help="[dispatch] sms_per_second (default: 100)"
    )


def _dispatch(args: argparse.Namespace) -> int:
    from palaute.bench import dispatch  # noqa: PLC0415 - keep the command line quick to start

    plan = dispatch.QUICK if args.quick else dispatch.FULL
    if args.messages is not None:
        plan = replace(plan, messages=max(1, args.messages))
    if args.limit is not None:
        plan = replace(plan, limit_per_second=args.limit)
    return _report(dispatch, dispatch.run(plan, bootstrap=args.bootstrap), args.json)


def _latency_arguments(parser: argparse.ArgumentParser) -> None:
    _common_arguments(parser, "latency")
    parser.add_argument(
        "--seconds", type=float, default=None, help="seconds of ratings per rate (default: 60)"
    )
    parser.add_argument(
        "--rates",
        type=_rates,
        default=None,
        help="comma-separated ratings per second, one run each (default: 500,2000)",
    )
    parser.add_argument(
        "--emit-interval",
        type=float,
        default=None,
        help="the worker's [metrics] emit_interval in seconds (default: its own default)",
    )


def _rates(text: str) -> tuple[int, ...]:
    """Read ``--rates``: positive whole numbers, comma-separated."""
    try:
        rates = tuple(int(part) for part in text.split(","))
    except ValueError:
        message = f"not whole numbers separated by commas: {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"every rate must be above 0: {text!r}")
    return rates


def _latency(args: argparse.Namespace) -> int:
    from palaute.bench import latency  # noqa: PLC0415 - keep the command line quick to start

    plan = latency.QUICK if args.quick else latency.FULL
    if args.seconds is not None:
        plan = replace(plan, seconds=max(1.0, args.seconds))
    if args.emit_interval is not None:
        plan = replace(plan, emit_interval_s=args.emit_interval)
    if args.rates is not None:
        plan = replace(plan, rates=args.rates)
    return _report(latency, latency.run(plan, bootstrap=args.bootstrap), args.json)


#: name -> (help, add arguments, handler)
BENCHMARKS: dict[
    str,
    tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
] = {
    "alerts": (
        "detection delay and false alarms of the drop detector against common rules",
        _alerts_arguments,
        _alerts,
    ),
    "intake": (
        "intake throughput: aiokafka alone, Kafka's Java consumer, and palaute worker",
        _intake_arguments,
        _intake,
    ),
    "latency": (
        "ratings to metrics and to alerts at fixed rates, against aiokafka's round trip",
        _latency_arguments,
        _latency,
    ),
    "scheduler": (
        "a million pending surveys: worker memory, recovery after a restart, dispatch lag",
        _scheduler_arguments,
        _scheduler,
    ),
    "dispatch": (
        "dispatch against the Twilio simulator: achieved rate and the busiest second",
        _dispatch_arguments,
        _dispatch,
    ),
    "console": (
        (
            "the operations console with 500 touchpoints and 13 months of history: page and "
            "live-update latencies"
        ),
        _console_arguments,
        _console,
    ),
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``bench`` and one subcommand per benchmark."""
    bench = subparsers.add_parser("bench", help="run a benchmark and print its table")
    names = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (summary, add_arguments, handler) in BENCHMARKS.items():
        parser = names.add_parser(name, help=summary, description=summary)
        add_arguments(parser)
        parser.set_defaults(handler=handler)


def main() -> int:
    """Run without the rest of the command line (``python -m palaute.commands.bench``)."""
    from palaute.cli import main as cli_main  # noqa: PLC0415 - avoid an import cycle

    return cli_main(["bench", *sys.argv[1:]])
