"""The producer overrides: a send buffer whose flush drains, and an idempotent producer.

Tripwire: tests/unit/test_library_tripwires.py (``DrainingProducerBuffer``,
``IdempotentProducer``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer

if TYPE_CHECKING:
    from collections.abc import Mapping

#: How long a flush waits for the buffer's sender between checks.
_FLUSH_POLL_SECONDS = 0.1


class DrainingProducerBuffer(ProducerBuffer):
    """faust's send buffer, whose ``flush`` returns once what it held has been handed over.

    Table writes reach the changelog through this buffer (``send_soon``).
    The consumer flushes the producer before it commits offsets, and the app
    flushes it before the producer stops; faust's ``flush`` returns as soon
    as 0.1 s pass without a message sent (a busy broker or a full batch is
    enough), and does not count the message being handed to the client, so
    a commit could go ahead with table writes still here. Were the worker
    stopped then, those writes would be gone while their offsets stay
    committed, and a worker without its local store would never count them.
    """

    #: Messages put into the buffer, and handed to the Kafka client, so far.
    queued: int = 0
    handed_over: int = 0
    in_flight: int = 0

    def put(self, fut: Any) -> None:
        """Add a message; a flush from now on waits for it."""
        self.queued += 1
        super().put(fut)

    async def _send_pending(self, fut: Any) -> None:
        self.in_flight += 1
        try:
            await super()._send_pending(fut)
        finally:
            self.in_flight -= 1
        self.handed_over += 1

    async def flush(self) -> None:
        """Wait until every message buffered before the call is handed to the Kafka client.

        Messages added meanwhile are not waited for (the buffer is first in,
        first out), so a busy agent cannot hold a commit back for long.
        """
        target = self.queued
        while self.handed_over < target:
            if self.should_stop and not self.in_flight:
                # The sending task ends once the buffer stops: send the rest here.
                await self._send_pending(self.pending.get_nowait())
                continue
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), _FLUSH_POLL_SECONDS)


class IdempotentProducer(faust_aiokafka.Producer):
    """faust's aiokafka producer, always idempotent with ``acks=all``.

    Without idempotence a retried produce request after a lost acknowledgement
    writes the record twice; with it the broker drops the repeat. Its buffer
    is a :class:`DrainingProducerBuffer`, so ``flush`` (before every offset
    commit and at a stop) covers the table changelogs too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.app.conf.producer_threaded:
            buffer = DrainingProducerBuffer(loop=self.loop, beacon=self.beacon)
            buffer.app = self.app
            self.buffer = buffer

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    def send_now(self) -> None:
        """End the linger of the batches being filled: their acknowledgement is awaited now.

        Records wait ``producer_linger`` in their batch for company, and
        aiokafka's ``flush`` waits that out. A stage that waits for its own
        records before it goes on (the intake's decision before the history,
        the dispatcher's intent before the provider call) would wait the
        linger for every record it handles: 5 ms a contact capped the intake
        at under 200 decisions a second. Closed batches go at once; records
        sent afterwards start new ones.
        """
        producer = self._producer
        if producer is None:
            return
        accumulator = producer._message_accumulator  # noqa: SLF001 - aiokafka has no public way
        for batches in accumulator._batches.values():  # noqa: SLF001 - as its flush_for_commit does
            for batch in batches:
                batch._builder.close()  # noqa: SLF001 - as above
        waiter = accumulator._waiter_future  # noqa: SLF001 - wakes the sender
        if not waiter.done():
            waiter.set_result(None)

    async def flush(self) -> None:
        """Wait until every buffered record is acknowledged, without waiting out the linger."""
        await self.buffer.flush()
        self.send_now()
        await super().flush()
