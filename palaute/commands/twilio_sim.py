"""``palaute twilio-sim``: a local Twilio Messages API for the demo and for manual testing.

Point the SMS gateway's base URL at the printed address and use the printed
account SID and auth token; everything else talks to it as to Twilio.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator

DEFAULTS = SimulatorConfig()


def _failure(text: str) -> tuple[str, int]:
    number, _, code = text.partition("=")
    if not number or not code.isdigit():
        raise argparse.ArgumentTypeError("expected NUMBER=CODE, e.g. +358401234567=30003")
    return number, int(code)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``twilio-sim``."""
    parser = subparsers.add_parser(
        "twilio-sim",
        help="run a local simulator of Twilio's Messages API",
        description="Serve Twilio's 2010-04-01 Messages API on 127.0.0.1 with its error codes, "
        "signed status callbacks and inbound webhooks. Admin endpoints: GET /_sim/messages, "
        "GET /_sim/requests, POST|DELETE /_sim/faults, POST /_sim/inbound, "
        "POST /_sim/unsubscribed. Ctrl-C stops it.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free)")
    parser.add_argument("--account-sid", default=DEFAULTS.account_sid, help="accepted account SID")
    parser.add_argument("--auth-token", default=DEFAULTS.auth_token, help="accepted auth token")
    parser.add_argument("--sms-number", default=DEFAULTS.sms_number, help="the account's number")
    parser.add_argument("--inbound-url", help="webhook that receives simulated inbound SMS")
    parser.add_argument(
        "--rate-limit", type=float, help="message creations per second before 20429"
    )
    parser.add_argument(
        "--callback-delay",
        type=float,
        default=0.5,
        help="seconds between status callbacks (default 0.5)",
    )
    parser.add_argument(
        "--unsubscribed",
        action="append",
        default=[],
        metavar="NUMBER",
        help="a number that has replied STOP (21610); repeatable",
    )
    parser.add_argument(
        "--undeliverable",
        action="append",
        type=_failure,
        default=[],
        metavar="NUMBER=CODE",
        help="a number whose messages end undelivered with a 30xxx code; repeatable",
    )
    parser.set_defaults(handler=_run)


async def _serve(args: argparse.Namespace) -> None:
    config = SimulatorConfig(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        sms_number=args.sms_number,
        inbound_url=args.inbound_url,
        rate_limit_per_second=args.rate_limit,
        callback_delay=args.callback_delay,
        delivery_failures=dict(args.undeliverable),
        unsubscribed=set(args.unsubscribed),
    )
    simulator = TwilioSimulator(config)
    url = await simulator.start(args.host, args.port)
    print(f"Twilio simulator at {url} (account {config.account_sid}); Ctrl-C stops it.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


def _run(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        print("Twilio simulator stopped.")
    return 0
