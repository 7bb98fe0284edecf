"""The history's part of ``palaute metrics rebuild``: recount every day and hour.

The ratings topic holds 400 days, so every bucket's answers are recounted
from it (:func:`engine.history.recount`, the live stage's own rules). The
surveys topic holds 35 days: a day older than its first SurveySent keeps the
surveys sent that the history topic already holds for it (the larger of the
two, as the oldest day read may be only partly on the topic).

The live stage keeps counting on top of what its own table holds, so the
rebuild must not overwrite a bucket the stage may still change. It splits
the history at a *cutoff*, a local midnight a little less than
:data:`~engine.history.ANSWERS_KEPT` before the latest event:

* buckets that begin before the cutoff are written to the history topic
  directly (no rating or send of theirs can still arrive), and keys the
  recount no longer has are tombstoned;
* ratings and sends from the cutoff on are fed to the stage again, through
  its input topic, in each touchpoint's partition. The stage remembers what
  it counted in those weeks, so what it has counted changes nothing, what it
  missed is counted, and a rating now counted in other groups moves to them.

With ``--to-topic`` (a comparison), every recounted bucket is written to
``<topic>.history`` instead, and the stage is left alone.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from engine.history import (
    ANSWERS_KEPT,
    BucketKey,
    Counts,
    day_of,
    kept_after,
    recount,
    start_of,
)
from engine.ledger import owner_key
from schemas.history import HistoryCounts
from schemas.metrics import Dimension
from streams.partitioning import key_partition
from streams.stages.history import history_feed_topic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from palaute.commands.metrics import Sent
    from schemas.base import Scale
    from schemas.config import Settings
    from schemas.responses import Rating

    Read = Callable[[Settings, str, Callable[[bytes | None, bytes | None], None]], Awaitable[int]]

#: The cutoff is this much closer to the latest event than the stage's memory reaches.
MARGIN = timedelta(days=2)


async def rebuild_history(
    settings: Settings,
    ratings: list[Rating],
    sends: list[Sent],
    read: Read,
    *,
    dry_run: bool,
    to_topic: str | None,
) -> str:
    """Recount the history and write or feed it; give the summary line."""
    zone = settings.policy.zone
    names = settings.topics
    existing: dict[str, HistoryCounts | None] = {}

    def keep(key: bytes | None, value: bytes | None) -> None:
        if key is not None:
            existing[key.decode()] = (
                HistoryCounts.model_validate_json(value) if value is not None else None
            )

    await read(settings, names.history, keep)
    times = [r.answered_at for r in ratings] + [s.sent_at for s in sends]
    if not times:
        return "history: nothing to recount"
    latest = max(times)

    def scale_of(touchpoint_id: str) -> Scale:
        return settings.catalogue.touchpoint(touchpoint_id)[0].scale

    sent = [(s.touchpoint_id, s.survey_id, s.channel.value, s.sent_at) for s in sends]
    buckets = recount(ratings, sent, zone, scale_of, now=latest, breakdowns=settings.breakdowns)
    covered_from = min((s.sent_at for s in sends), default=latest)
    _keep_old_sends(buckets, existing, covered_from, settings, latest)
    if dry_run:
        return f"history: recounted {len(buckets)} buckets; nothing written (dry run)"
    if to_topic is not None:
        target = f"{to_topic}.history"
        await _write(settings, target, {key: buckets[key] for key in sorted(buckets)})
        return f"history: recounted {len(buckets)} buckets; written to {target}"
    cutoff = start_of_day(latest - ANSWERS_KEPT + MARGIN, settings)
    old = {
        key: bucket
        for key, bucket in buckets.items()
        if _begins(key, settings) < cutoff and not bucket.is_empty()
    }
    gone = {
        key: None
        for key, held in existing.items()
        if held is not None and key not in old and _begins(key, settings) < cutoff
    }
    await _write(settings, names.history, {**old, **gone})
    fed = await _seed(settings, ratings, sends, cutoff)
    return (
        f"history: recounted {len(buckets)} buckets; {len(old)} before {cutoff:%Y-%m-%d} "
        f"written to {names.history} ({len(gone)} removed), {fed} answers and sends of the "
        f"weeks since fed to the history stage"
    )


def start_of_day(at: datetime, settings: Settings) -> datetime:
    """Give the local midnight that begins the day of ``at``."""
    zone = settings.policy.zone
    return datetime.fromisoformat(day_of(at, zone)).replace(tzinfo=zone)


def _begins(key: str, settings: Settings) -> datetime:
    parts = BucketKey.parse(key)
    return start_of(parts.period, parts.start, settings.policy.zone)


def _keep_old_sends(
    buckets: dict[str, Counts],
    existing: dict[str, HistoryCounts | None],
    covered_from: datetime,
    settings: Settings,
    latest: datetime,
) -> None:
    """Keep the sends the history holds for buckets the surveys topic no longer covers."""
    for key, held in existing.items():
        if held is None or not held.sent or _begins(key, settings) >= covered_from:
            continue
        if _begins(key, settings) < kept_after(held.period, latest):
            continue  # no longer kept
        bucket = buckets.setdefault(key, Counts())
        bucket.sent = max(bucket.sent, held.sent)


async def _write(settings: Settings, topic: str, buckets: dict[str, Counts | None]) -> None:
    from connectors.web.ingress import kafka_producer  # noqa: PLC0415 - heavy, used here only

    producer = kafka_producer(settings.kafka)
    await producer.start()
    try:
        for key, bucket in buckets.items():
            value = None if bucket is None else bucket.record(key).model_dump_json().encode()
            await producer.send(topic, key=key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _seed(
    settings: Settings, ratings: list[Rating], sends: list[Sent], cutoff: datetime
) -> int:
    """Feed the ratings and sends from ``cutoff`` on to the history stage's input."""
    from connectors.kafka_client import topic_partitions  # noqa: PLC0415 - heavy, used here only
    from connectors.web.ingress import kafka_producer  # noqa: PLC0415 - as above

    topic = history_feed_topic(settings.streams.app_id + settings.streams.topic_suffix)
    if not await topic_partitions(settings.kafka, topic):
        print(
            f"{topic}: no such topic; start the workers once, then rebuild again",
            file=sys.stderr,
        )
        return 0
    partitions = settings.streams.partitions
    producer = kafka_producer(settings.kafka)
    await producer.start()
    fed = 0
    try:
        events: list[tuple[str, bytes]] = [
            (r.touchpoint_id, r.model_dump_json().encode())
            for r in ratings
            if r.answered_at >= cutoff
        ]
        events += [(s.touchpoint_id, s.value) for s in sends if s.sent_at >= cutoff]
        for touchpoint_id, value in events:
            owner = owner_key(Dimension.TOUCHPOINT, touchpoint_id).encode()
            partition = key_partition(owner, partitions)
            await producer.send(topic, key=owner, value=value, partition=partition)
            fed += 1
        await producer.flush()
    finally:
        await producer.stop()
    return fed
