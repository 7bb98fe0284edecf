"""``palaute web``: the HTTP service (pages, Twilio webhooks, event ingress, /healthz, /metrics).

``palaute web --config FILE`` serves until Ctrl-C or SIGTERM and then stops
cleanly: the listener first, then the producer, which flushes what it holds.
``palaute web new-key SYSTEM`` makes an API key for a source system and prints
it once, with the configuration lines that store only its hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiokafka.errors import KafkaError

from connectors.web import create_web_app
from connectors.web.ingress import PATH, hash_key, kafka_producer
from schemas.config import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse

    from schemas.config import Settings

#: 32 random bytes: 256 bits, so a plain SHA-256 of the key is safe to store.
KEY_BYTES = 32


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``web`` and ``web new-key``."""
    parser = subparsers.add_parser(
        "web",
        help="run the web service: one-tap pages, Twilio webhooks, event ingress, /metrics",
        description="Serve the citizens' one-tap pages (/r/..., /u/...), the Twilio webhooks "
        f"(POST /twilio/inbound, POST /twilio/status), POST {PATH} (ContactCompleted events, "
        "one or a batch, with a source system's API key), GET /healthz and GET /metrics "
        "until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    parser.add_argument("--host", help="address to bind (default: [web] bind_host)")
    parser.add_argument("--port", type=int, help="port (default: [web] bind_port; 0 = any free)")
    parser.set_defaults(handler=_run, web_parser=parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    new_key = actions.add_parser(
        "new-key",
        help="make an API key for a source system",
        description="Print a fresh random API key (shown once: hand it to the source system) "
        "and the [ingress.sources] lines, with the key's SHA-256 only, for the configuration.",
    )
    new_key.add_argument("system", metavar="SYSTEM", help="source system name, e.g. crm-helsinki")
    new_key.add_argument(
        "--event-source",
        default="/CHANGE-ME",
        help="the CloudEvents source the system sends (default: a placeholder to edit)",
    )
    new_key.set_defaults(handler=_new_key)


def _new_key(args: argparse.Namespace) -> int:
    key = secrets.token_urlsafe(KEY_BYTES)
    print(f"API key for {args.system} (shown once; store it in the sending system):")
    print(f"  {key}")
    print()
    print("Add to the configuration:")
    print(f'[ingress.sources."{args.system}"]')
    print(f'key_sha256 = "{hash_key(key)}"')
    print(f'event_sources = ["{args.event_source}"]')
    print("revoked = false")
    return 0


async def _serve(settings: Settings, host: str, port: int) -> int:
    try:
        producer = kafka_producer(settings.kafka)
    except ValueError as error:
        print(f"palaute web: {error}", file=sys.stderr)
        return 1
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        servers = ", ".join(settings.kafka.bootstrap_servers)
        print(f"palaute web: cannot reach Kafka at {servers}: {error}", file=sys.stderr)
        return 1
    runner = web.AppRunner(create_web_app(settings, producer=producer), access_log=None)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            print(f"palaute web: cannot listen on {host}:{port}: {error}", file=sys.stderr)
            return 1
        addresses = ", ".join(f"http://{a[0]}:{a[1]}" for a in _bound(runner))
        print(f"Palaute web service at {addresses}; Ctrl-C stops it.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        print("Palaute web service stopping.", flush=True)
    finally:
        await runner.cleanup()
        await producer.stop()
    return 0


def _bound(runner: web.AppRunner) -> list[tuple[str, int]]:
    return [
        (str(address[0]), int(address[1]))
        for address in runner.addresses
        if isinstance(address, tuple) and len(address) >= 2  # noqa: PLR2004 - (host, port, ...)
    ]


def _run(args: argparse.Namespace) -> int:
    if args.config is None:
        args.web_parser.error("--config FILE is required")
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    host = args.host or settings.web.bind_host
    port = settings.web.bind_port if args.port is None else args.port
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(settings, host, port))
    return 0
