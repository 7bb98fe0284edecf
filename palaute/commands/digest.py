"""``palaute digest send``: the weekly digest email per team, run from a weekly timer."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.digest import send_digests
from schemas.config import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``digest send``."""
    parser = subparsers.add_parser(
        "digest",
        help="the weekly digest email per team",
        description="Mail each team of [digest.teams] last week's figures of its touchpoints.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    send = actions.add_parser(
        "send",
        help="read the last two weeks of ratings and alerts and mail every team",
        description="Read the ratings and alerts of the two weeks before today (in [policy] "
        "time_zone) and send each team of [digest.teams] its touchpoints' figures in its "
        "language over [smtp]. Run it once a week, e.g. on Monday morning.",
    )
    send.add_argument("--config", type=Path, required=True, metavar="FILE", help="TOML file")
    send.add_argument("--dry-run", action="store_true", help="build the messages, send none")
    send.set_defaults(handler=_send)


def _send(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    if settings.smtp is None or not settings.digest.teams:
        print("the digest needs [smtp] and at least one [digest.teams.<id>]", file=sys.stderr)
        return 1
    outcome = asyncio.run(send_digests(settings, datetime.now(UTC), dry_run=args.dry_run))
    for team, result in outcome.items():
        print(f"{team}: {result}")
    return 0 if all(r == "sent" or args.dry_run for r in outcome.values()) else 2
