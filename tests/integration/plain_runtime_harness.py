"""A small idempotent stage on the plain-aiokafka runtime, in the test's process or as a child.

:class:`Tally` keeps, per key, the ids of the records it has counted, and
for each new id produces ``<id>=<count>``: after any crash, rebalance or
stop, each key's outputs must hold the counts 1..n once each (a repeat of
a record repeats its own output, never a new count) and nothing may be
missing. That needs the state to follow the partition to its next owner
through the changelog, and no offset committed before its record is done.

Run as ``python -m tests.integration.plain_runtime_harness BOOTSTRAP SOURCE OUT CHANGELOG GROUP``
for a process a test can kill.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.kafka_plain.runner import StageRunner
from streams.runtime.kafka_plain.store import ChangelogStore
from streams.runtime.model import Output, Produce

if TYPE_CHECKING:
    from datetime import datetime

    from streams.runtime.model import Record, StateView

OUT = "out"


class Tally:
    """Count each record once per key; say each new record's count."""

    name = "tally"
    label = "intake"

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Add the record's id (its value) to its key's ids, unless it is there."""
        del now
        key = (record.key or b"").decode()
        ids: list[str] = json.loads(state.get(key) or "[]")
        mine = (record.value or b"").decode()
        if mine in ids:
            return Output(
                produce=(Produce(OUT, record.key, f"{mine}={ids.index(mine) + 1}".encode()),)
            )
        ids.append(mine)
        return Output(
            produce=(Produce(OUT, record.key, f"{mine}={len(ids)}".encode()),),
            state={key: json.dumps(ids)},
        )


def tally_runner(
    bootstrap: str,
    source: str,
    *,
    out: str,
    changelog: str,
    group: str,
    producer: AIOKafkaProducer,
) -> StageRunner:
    """Make a runner of :class:`Tally` from ``source`` to ``out``, its state in ``changelog``."""

    def consumer(*, group_id: str | None) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )

    return StageRunner(
        Tally(),
        source,
        topics={OUT: out, DEADLETTER: out},
        group_id=group,
        consumer=consumer,
        producer=lambda: producer,
        store=ChangelogStore(changelog),
        batch=50,
    )


def check_tally(
    outputs: list[tuple[bytes | None, bytes | None]], sent: dict[str, list[str]]
) -> None:
    """Every record sent has its output, and each key's counts are 1..n, each for one record."""
    counts: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for key, value in outputs:
        mine, _, count = (value or b"").decode().partition("=")
        counts[(key or b"").decode()][mine].add(int(count))
    for key, ids in sent.items():
        seen = counts[key]
        missing = [mine for mine in ids if mine not in seen]
        assert not missing, f"{key}: no output for {missing[:5]}"
        twice = {mine: found for mine, found in seen.items() if len(found) != 1}
        assert not twice, f"{key}: records counted twice: {twice}"
        assert sorted(found.pop() for found in seen.values()) == list(range(1, len(ids) + 1)), key


async def _main(bootstrap: str, source: str, out: str, changelog: str, group: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    runner = tally_runner(
        bootstrap, source, out=out, changelog=changelog, group=group, producer=producer
    )
    await runner.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("started", flush=True)  # noqa: T201 - the test waits for it
    await stop.wait()
    await runner.stop()
    await producer.stop()


def main(argv: list[str]) -> Any:
    """Run the tally stage until SIGTERM (or a kill)."""
    asyncio.run(_main(*argv))


if __name__ == "__main__":
    main(sys.argv[1:])
