"""Events produced by a Kafka client nobody here wrote decode into our models.

kcat (librdkafka) stands in for a front-office system: if our contracts only
round-trip through our own code, a mistake in both directions would go unseen.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from schemas.decoding import decode_contact
from schemas.samples import contact_completed

if TYPE_CHECKING:
    from ops.kafka import TopicFactory
    from schemas.contacts import ContactCompleted

pytestmark = pytest.mark.integration


def _events(count: int) -> list[ContactCompleted]:
    now = datetime.now(UTC).replace(microsecond=0)
    base = contact_completed(now)
    events = []
    for index in range(count):
        data = base.data.model_copy(
            update={
                "contact": base.data.contact.model_copy(
                    update={
                        "id": f"c-kcat-{index}",
                        "ended_at": now - timedelta(minutes=index + 1),
                    }
                ),
                "citizen": base.data.citizen.model_copy(update={"id": f"cust-{index}"}),
            }
        )
        events.append(base.model_copy(update={"id": f"evt-kcat-{index}", "data": data}))
    return events


async def test_kcat_produced_contacts_read_back_field_for_field(
    kafka_bootstrap: str,
    unique_topic: TopicFactory,
    unique_group: str,
) -> None:
    """A front office using any client must get exactly the event it sent through the gate."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: apt-get install kcat (.ci/run does this)"
    topic = unique_topic("contacts")
    events = _events(25)
    # One event per line, keyed "citizen-id<TAB>json"; structured-mode CloudEvents header.
    lines = b"".join(
        e.data.citizen.id.encode() + b"\t" + orjson.dumps(e.model_dump(mode="json")) + b"\n"
        for e in events
        if e.data.citizen.id
    )
    process = await asyncio.create_subprocess_exec(
        kcat,
        "-P",
        "-b",
        kafka_bootstrap,
        "-t",
        topic,
        "-K",
        "\t",
        "-H",
        "content-type=application/cloudevents+json; charset=UTF-8",
        stdin=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(process.communicate(lines), timeout=180)
    assert process.returncode == 0

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(180):
            while len(received) < len(events):
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    received.extend(
                        (r.key, r.value, dict(r.headers)) for r in records if r.value is not None
                    )
    finally:
        await consumer.stop()

    decoded = [decode_contact(value) for _, value, _ in received]
    assert decoded == events
    assert [key for key, _, _ in received] == [
        e.data.citizen.id.encode() for e in events if e.data.citizen.id
    ]
    assert all(
        headers["content-type"].startswith(b"application/cloudevents+json")
        for *_, headers in received
    )
