"""The consumer override: no commit once a stop began, and none past a record never handed over.

Tripwire: tests/unit/test_library_tripwires.py (``StopSafeConsumer``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.diagnostics import kafka_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping


class StopSafeConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer that commits nothing once the app began to stop.

    When a worker stops, faust suspends the flow of records and then acks
    what the agents are given or were in the middle of: a record taken from
    a queue after the suspension is skipped *and acked*, and an agent
    cancelled between two sends of one record has it acked when its stream
    closes. faust then commits those offsets, so the records were never (or
    only partly) processed, and a restarted worker starts after them.
    :class:`PalauteApp` commits what was acked before the stop began; after
    that nothing is committed, and the records in between are processed
    again on restart, which every stage takes (replays are harmless).

    It also keeps faust from committing past records that no agent was
    given, in the two ways the rebalance fault test found:

    * faust's ``getmany`` ends a fetched batch early when the flow stops or
      the generation changes, and skips records of a partition it no longer
      counts as active, after aiokafka has moved its position past them. The
      next record of that partition then looks like a gap in the log (as a
      compacted topic has) and faust commits across it. Here a batch cut
      short seeks each partition back to its first record not handed over.
    * a partition the group never committed has no committed offset, and
      faust then commits from whatever acked record comes first, even if the
      records before it were fetched and dropped. Here such a partition is
      sought to the start of its log at every assignment (where aiokafka's
      ``earliest`` reset would begin) and that start stands for the
      committed offset until the first commit.
    """

    _batch: tuple[Mapping[Any, list[Any]], int] | None = None
    _log_starts: dict[Any, int] | None = None

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:  # noqa: FBT001, FBT002 - faust's signature
        """Commit acked offsets, unless the app is stopping."""
        if getattr(self.app, "commits_frozen", False):
            return False
        return await super().commit(topics, start_new_transaction=start_new_transaction)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109 - faust's signature
        """Keep the batch faust is about to hand over, and the generation it belongs to."""
        records, active = await super()._wait_next_records(timeout)
        self._batch = None if not records else (records, self.app.consumer_generation_id)
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109 - faust's signature
        """Hand over a fetched batch; fetch again what faust left of it (see the class)."""
        handed: dict[Any, int] = {}
        async for tp, message in super().getmany(timeout):
            handed[tp] = message.offset
            yield tp, message
        batch, self._batch = self._batch, None
        if batch is None or self.should_stop:
            return
        records, generation = batch
        if generation != self.app.consumer_generation_id or not self.flow_active:
            # A rebalance (the flow stops when one begins) or a stop came between:
            # the rebalance seeks every partition it assigns (perform_seek).
            return
        assignment = self.assignment()
        for tp, fetched in records.items():
            last = handed.get(tp)
            left = [record.offset for record in fetched if last is None or record.offset > last]
            if left and tp in assignment:
                await self.seek(tp, left[0])

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and partitions never committed to their log's start."""
        await super().perform_seek()
        changelogs = self.app.tables.changelog_topics
        uncommitted = [
            tp
            for tp in self.assignment()
            if tp.topic not in changelogs and self._committed_offset[tp] is None
        ]
        starts: dict[Any, int] = {}
        if uncommitted:
            kafka = kafka_client(self.app)
            found = await self._thread.call_thread(
                kafka.beginning_offsets,
                [faust_aiokafka.ensure_aiokafka_TP(tp) for tp in uncommitted],
            )
            for tp in uncommitted:
                start = found.get(faust_aiokafka.ensure_aiokafka_TP(tp))
                if isinstance(start, int) and start >= 0:
                    starts[tp] = start
                    await self.seek(tp, start)
        self._log_starts = starts

    def _new_offset(self, tp: Any) -> int | None:
        """Give the offset to commit for ``tp``, never past a record that was not acked.

        faust 0.15 keeps the committed offset as the next one to process, yet
        its check for an unacked record at the head of a partition lets
        exactly that record through (it asks for a gap of more than one), so
        a record dropped from an agent's queue at a rebalance while the ones
        after it were processed was committed as done. Here the acked offsets
        (with faust's gaps, the offsets a compacted topic does not have) must
        start at the committed offset, or nothing is committed.
        """
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if committed is None and self._log_starts:
            committed = self._log_starts.get(tp)
        if acked and committed is not None:
            first = min(acked)
            gaps = self._gap[tp]
            head_gap = gaps.overlap(committed, first) if gaps else set()
            covered = {offset for gap in head_gap for offset in range(gap.begin, gap.end)}
            if first > committed and not set(range(committed, first)) <= covered:
                return None
        result: int | None = super()._new_offset(tp)
        return result
