"""The recovery override: the agents' queues are emptied before stream partitions resume.

Tripwire: tests/unit/test_library_tripwires.py (``OrderedRecovery``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery


class OrderedRecovery(Recovery):
    """faust's table recovery, handing the stream partitions back in a safe order.

    After a rebalance (and at start) faust 0.15 resumes the stream partitions,
    then seeks them to their committed offsets, and only then resumes the
    app's flow control, which empties every agent's queue. Records fetched
    while the seek was under way were put in those queues and then dropped,
    yet the consumer had noted them as read, so when the seek made it fetch
    them again it skipped them as already seen. None of them was acked, so
    nothing was committed past them and a restart would read them again;
    but until then the live worker never processed that partition's
    records: a busy worker (more likely on a loaded machine) kept figures
    short for as long as it ran. Here the queues are emptied before the
    partitions are resumed, and nothing empties them afterwards; otherwise
    faust's order is kept (seeking partitions while paused left a restarted
    worker idle in the fault suite).
    """

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Tell the tables that recovery is over, then hand the stream partitions back."""
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        completions = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if completions:
            await asyncio.wait(completions)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._hand_back_stream_partitions()
        self.completed.set()
        await self._start_streams()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _resume_streams(self, generation_id: int = 0) -> None:
        # The path without tables to recover: the same order.
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._hand_back_stream_partitions()
        self.completed.set()
        await self._start_streams()
        self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _hand_back_stream_partitions(self) -> None:
        consumer = self.app.consumer
        # Empty the agents' queues before any stream record can be fetched, not after:
        # a record fetched during the seek below is then processed, not dropped...
        self.app.flow_control.resume()
        assignment = consumer.assignment()
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        if assignment:
            # ...and one fetched again after it is skipped as read, which it was.
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        consumer.resume_flow()

    async def _seek_offsets(
        self, consumer: Any, tps: set[Any], offsets: Counter[Any], title: str
    ) -> None:
        """Seek changelog partitions, reading from the start where faust has no valid offset.

        faust 0.15 can hand a standby partition an offset that is not a
        non-negative integer when a rebalance interrupts a recovery, and
        aiokafka's ``seek`` then raises, which crashed the whole worker (the
        rebalance fault test caught it). Reading such a changelog from its
        start is always correct for a table, only slower.
        """
        sane: Counter[Any] = Counter()
        for tp in tps:
            offset = offsets[tp]
            if not isinstance(offset, int) or offset < -1:
                self.log.warning(
                    "%s changelog %r had offset %r: reading it from the start", title, tp, offset
                )
                offset = -1
            sane[tp] = offset
        await super()._seek_offsets(consumer, tps, sane, title)

    async def _start_streams(self) -> None:
        app: Any = self.app  # the fetcher is not part of faust's AppT interface
        await app._fetcher.maybe_start()  # noqa: SLF001 - as faust's own recovery does
        self.tables.on_actives_ready()


class PalauteTableManager(TableManager):
    """faust's table manager with :class:`OrderedRecovery`."""

    @property
    def recovery(self) -> Recovery:
        """Build the recovery service once, as faust does, with the safe hand-back order."""
        if self._recovery is None:
            self._recovery = OrderedRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
