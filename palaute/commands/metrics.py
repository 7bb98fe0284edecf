"""``palaute metrics rebuild``: recompute every figure from the ratings topic.

When a metric's definition changes (a window added, a figure fixed), the
figures already on the metrics topic are stale. The rebuild reads the
ratings topic (and the sends on the surveys topic) from the beginning up to
where they end now, recomputes with the same engine code as the live stage
(:func:`engine.ledger.recompute`), and writes one record per
``dimension:key:window``. The metrics topic is compacted, so the rebuilt
record replaces the old one; the figures are those the live path gives for
the same events, because both run on event time.

It uses plain aiokafka (no consumer group, nothing committed), so it can run
beside the workers.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from schemas.config import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from datetime import datetime

    from schemas.base import SurveyChannel
    from schemas.config import Settings
    from schemas.responses import Rating

PROGRESS_EVERY = 10_000


class Sent(NamedTuple):
    """A SurveySent as the rebuild needs it, and the record as it was read."""

    touchpoint_id: str
    survey_id: str
    channel: SurveyChannel
    sent_at: datetime
    value: bytes


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``metrics rebuild``."""
    parser = subparsers.add_parser(
        "metrics",
        help="rolling metrics: rebuild every figure from the ratings topic",
        description="Work with the rolling metrics of touchpoints, channels and services.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rebuild = actions.add_parser(
        "rebuild",
        help="recompute every figure from the ratings topic and publish it",
        description="Read the ratings topic (and SurveySent on the surveys topic) from the "
        "beginning, recompute every window of every touchpoint, channel and service with the "
        "same code as the live stage, and write the figures to the metrics topic (compacted: "
        "the latest record per key wins).",
    )
    rebuild.add_argument("--config", type=Path, required=True, metavar="FILE", help="TOML file")
    rebuild.add_argument(
        "--to-topic",
        metavar="TOPIC",
        help="write here instead of the metrics topic (e.g. to compare before switching)",
    )
    rebuild.add_argument(
        "--dry-run", action="store_true", help="recompute and summarise, write nothing"
    )
    rebuild.set_defaults(handler=_rebuild)


def _rebuild(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    return asyncio.run(rebuild(settings, to_topic=args.to_topic, dry_run=args.dry_run))


async def rebuild(settings: Settings, *, to_topic: str | None = None, dry_run: bool = False) -> int:
    """Recompute and publish; print progress and a summary. Returns an exit status."""
    # Imported here: other commands must not pay for aiokafka.
    from aiokafka.errors import KafkaError  # noqa: PLC0415 - see above

    from engine.ledger import recompute  # noqa: PLC0415 - see above
    from palaute.commands.history_rebuild import rebuild_history  # noqa: PLC0415 - see above
    from schemas.topics import METRICS, RATINGS, SURVEYS  # noqa: PLC0415 - see above

    suffix = settings.streams.topic_suffix
    started = time.monotonic()
    ratings: list[Rating] = []
    sent: list[Sent] = []
    counts = {"rejected": 0}
    try:
        await _read(settings, RATINGS + suffix, _ratings_into(ratings, counts))
        await _read(settings, SURVEYS + suffix, _sends_into(sent))
    except KafkaError as error:
        print(f"palaute metrics rebuild: Kafka failed: {error}", file=sys.stderr)
        return 1
    figures = recompute(
        ratings, ((s.touchpoint_id, s.survey_id, s.sent_at) for s in sent), settings.metrics.windows
    )
    keys = {key.rsplit(":", 1)[0] for key in figures}
    target = to_topic or METRICS + suffix
    if not dry_run:
        try:
            await _write(settings, target, figures)
        except KafkaError as error:
            print(f"palaute metrics rebuild: Kafka failed: {error}", file=sys.stderr)
            return 1
    took = time.monotonic() - started
    where = "nothing written (dry run)" if dry_run else f"written to {target}"
    print(
        f"rebuilt {len(figures)} figures for {len(keys)} keys from {len(ratings)} ratings "
        f"and {len(sent)} sends ({counts['rejected']} records skipped) in {took:.1f} s; "
        f"{where}",
        flush=True,
    )
    try:
        summary = await rebuild_history(
            settings, ratings, sent, _read, dry_run=dry_run, to_topic=to_topic
        )
    except KafkaError as error:
        print(f"palaute metrics rebuild: Kafka failed: {error}", file=sys.stderr)
        return 1
    print(summary, flush=True)
    return 0


def _ratings_into(
    found: list[Rating], counts: dict[str, int]
) -> Callable[[bytes | None, bytes | None], None]:
    from schemas.decoding import Rejected, decode_event  # noqa: PLC0415 - light, kept local
    from schemas.responses import Rating  # noqa: PLC0415 - light, kept local

    def take(_key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        event = decode_event(value, expect="Rating")
        if isinstance(event, Rating):
            found.append(event)
        elif isinstance(event, Rejected):
            counts["rejected"] += 1

    return take


def _sends_into(found: list[Sent]) -> Callable[[bytes | None, bytes | None], None]:
    from schemas.surveys import SurveySent  # noqa: PLC0415 - light, kept local

    def take(_key: bytes | None, value: bytes | None) -> None:
        # The live stage counts exactly the records it can read as SurveySent.
        if value is None or b'"SurveySent"' not in value:
            return
        try:
            event = SurveySent.model_validate_json(value)
        except ValueError:
            return
        found.append(
            Sent(event.touchpoint_id, event.survey_id, event.channel, event.occurred_at, value)
        )

    return take


async def _read(
    settings: Settings, topic: str, take: Callable[[bytes | None, bytes | None], None]
) -> int:
    """Read a topic from the beginning up to its end offsets as of now; give how many records."""
    from aiokafka import AIOKafkaConsumer  # noqa: PLC0415 - heavy, used here only

    from connectors.kafka_client import client_options, topic_partitions  # noqa: PLC0415 - as above

    partitions = await topic_partitions(settings.kafka, topic)
    if not partitions:
        print(f"{topic}: no such topic; nothing read", file=sys.stderr)
        return 0
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        read = 0
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1_000, max_records=5_000)
            for tp, records in batches.items():
                for record in records:
                    take(record.key, record.value)
                    read += 1
                    if read % PROGRESS_EVERY == 0:
                        print(f"{topic}: {read} records read", file=sys.stderr, flush=True)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        print(f"{topic}: {read} records read", file=sys.stderr, flush=True)
    finally:
        await consumer.stop()
    return read


async def _write(settings: Settings, topic: str, figures: dict[str, Any]) -> None:
    from connectors.web.ingress import kafka_producer  # noqa: PLC0415 - idempotent, acks=all

    producer = kafka_producer(settings.kafka)
    await producer.start()
    try:
        for key, value in sorted(figures.items()):
            await producer.send(topic, key=key.encode(), value=value.model_dump_json().encode())
        await producer.flush()
    finally:
        await producer.stop()
