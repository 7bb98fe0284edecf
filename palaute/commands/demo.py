"""``palaute demo``: the main job, run locally on an embedded default.

For now the demo shows the foundation working end to end on a real broker:
it starts the local Kafka broker (fetching its jars on first use), writes a
batch of contact-completed events the way a front-office system would, reads
them back through the same validation gate the intake uses, and reports what
it saw. A broker the demo started is stopped again unless ``--keep-kafka``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from ops.kafka import BrokerState, LocalKafka, LocalKafkaError, load_settings
from schemas.base import Language
from schemas.decoding import Rejected, decode_contact
from schemas.samples import contact_completed
from schemas.topics import CONTACTS

if TYPE_CHECKING:
    import argparse

    from schemas.contacts import ContactCompleted

_TOUCHPOINTS = (
    ("phone-service-helsinki", "Puhelinpalvelu", "Helsinki", Language.FI),
    ("service-point-vaasa", "Asiointipiste Vaasa", "Vaasa", Language.SV),
    ("online-service", "Verkkoasiointi", None, Language.EN),
)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="run Palaute locally on an embedded default",
        description="Start a local Kafka broker and send contact-completed events "
        "through it, reading them back through the intake's validation gate.",
    )
    demo.add_argument("--events", type=int, default=30, help="how many events (default 30)")
    demo.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    demo.add_argument(
        "--keep-kafka",
        action="store_true",
        help="leave the broker running afterwards (stop it with `palaute kafka down`)",
    )
    demo.set_defaults(handler=_run)


def _events(count: int, now: datetime) -> list[ContactCompleted]:
    """Contacts across a few touchpoints and languages, each with its own ids."""
    base = contact_completed(now)
    events = []
    for index in range(count):
        touchpoint_id, name, location, language = _TOUCHPOINTS[index % len(_TOUCHPOINTS)]
        data = base.data.model_copy(
            update={
                "contact": base.data.contact.model_copy(
                    update={
                        "id": f"c-demo-{uuid.uuid4().hex[:12]}",
                        "ended_at": now - timedelta(minutes=index + 1),
                    }
                ),
                "citizen": base.data.citizen.model_copy(
                    update={"id": f"cust-{index:04d}", "language": language}
                ),
                "touchpoint": base.data.touchpoint.model_copy(
                    update={"id": touchpoint_id, "name": name, "location": location}
                ),
            }
        )
        events.append(base.model_copy(update={"id": f"evt-demo-{uuid.uuid4().hex}", "data": data}))
    return events


async def _round_trip(bootstrap: str, events: list[ContactCompleted]) -> tuple[int, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    first_offsets: dict[int, int] = {}
    try:
        for event in events:
            key = (event.data.citizen.id or event.id).encode()
            metadata = await producer.send_and_wait(CONTACTS, event.model_dump_json().encode(), key)
            first_offsets.setdefault(metadata.partition, metadata.offset)
    finally:
        await producer.stop()
    print(f"  produced {len(events)} events to {CONTACTS}", flush=True)

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    valid = invalid = 0
    try:
        partitions = [TopicPartition(CONTACTS, p) for p in first_offsets]
        consumer.assign(partitions)
        for partition in partitions:
            consumer.seek(partition, first_offsets[partition.partition])
        async with asyncio.timeout(30):
            while valid + invalid < len(events):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        result = decode_contact(record.value or b"")
                        if isinstance(result, Rejected):
                            invalid += 1
                            print(f"  rejected offset {record.offset}: {result.reason}", flush=True)
                        else:
                            valid += 1
    finally:
        await consumer.stop()
    return valid, invalid


def _run(args: argparse.Namespace) -> int:
    try:
        kafka = LocalKafka(load_settings(port=args.port))
        was_up = kafka.status().state is BrokerState.UP
        status = kafka.up()
    except LocalKafkaError as error:
        print(f"palaute demo: {error}", flush=True)
        return 1
    print(f"Kafka is up at {status.bootstrap_servers} (log: {status.log_path})", flush=True)
    started = time.monotonic()
    try:
        events = _events(args.events, datetime.now(UTC).replace(microsecond=0))
        valid, invalid = asyncio.run(_round_trip(status.bootstrap_servers, events))
        elapsed = time.monotonic() - started
        print(
            f"  read back {valid} valid and {invalid} rejected events in {elapsed:.1f} s",
            flush=True,
        )
    finally:
        if not was_up and not args.keep_kafka:
            kafka.down()
            print(
                "Kafka stopped (it was started by the demo; keep it with --keep-kafka)", flush=True
            )
    return 0 if invalid == 0 and valid == len(events) else 1
