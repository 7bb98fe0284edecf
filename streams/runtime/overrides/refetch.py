"""A guard against stream records that faust fetched and never handed to an agent.

Around a rebalance faust 0.15 can take a batch of records from aiokafka and
then drop it (the partition was paused again, the flow stopped, the
generation changed) after aiokafka has moved its fetch position past it.
Nothing was acknowledged, so a restart reads the records again, but the
running worker never does: its agents sit idle, with records waiting at
the broker, and the contacts in them are never decided. The fault suite's
rebalance test (three workers, one killed, one added) met this in about
half of its runs.

Every few seconds the guard looks at each stream partition this worker
owns: one whose records aiokafka has fetched to the end, none of them
waiting to be handed over and no record waiting for an agent anywhere,
while faust has committed short of the end, has lost records on the way
(faust commits only what agents acknowledged; see
:class:`streams.app.StopSafeConsumer` for the commit that skipped one).
When two looks in a row find a partition in the same such state, the
guard seeks it back to its committed offset, so the records are fetched
and processed again. Every stage is idempotent, so reading a record twice is harmless;
never reading it is what this prevents. Each seek is logged and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from connectors import telemetry
from streams.diagnostics import fetch_position, kafka_client

if TYPE_CHECKING:
    from collections.abc import Mapping

    import faust
    from faust.types import TP

log = logging.getLogger(__name__)

#: Seconds between two looks at the stream partitions.
CHECK_INTERVAL_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class PartitionView:
    """One stream partition as faust and aiokafka see it, at one look.

    ``highwater`` and ``position`` are aiokafka's (the end of the log at the
    last fetch, and the next offset it will fetch); ``read`` is the offset of
    the last record faust handed to an agent (None: none since the last
    seek); ``committed`` the next offset to process as last committed (None:
    never); ``fetched_waiting`` whether aiokafka holds fetched records of it
    that faust has not taken yet.
    """

    highwater: int | None
    position: int | None
    read: int | None
    committed: int | None
    fetched_waiting: bool

    @property
    def lost(self) -> bool:
        """Whether records were fetched to the end and some were never processed.

        Judged while no record is waiting for an agent (see :func:`observe`):
        a partition fetched to its end and committed short of it then holds
        records that were dropped before an agent got them, or that an agent
        got and faust dropped from its queue unacknowledged.
        """
        if self.highwater is None or self.position is None or self.highwater <= 0:
            return False
        if self.fetched_waiting or self.position < self.highwater:
            return False  # still being fetched or handed over
        return self.committed is None or self.committed < self.highwater


def partitions_to_refetch(
    now: Mapping[TP, PartitionView], before: Mapping[TP, PartitionView]
) -> list[TP]:
    """Name the partitions that looked lost at both looks, unchanged in between."""
    return sorted(tp for tp, view in now.items() if view.lost and before.get(tp) == view)


def observe(app: Any) -> dict[TP, PartitionView]:
    """Look at every stream partition assigned to this worker (reads faust's and aiokafka's state).

    Reads private state of the pinned faust-streaming and aiokafka versions;
    an empty mapping when any of it is not there, so the guard does nothing.
    Empty too while any record handed to an agent is unacknowledged: under
    load the fetch loop may hold a fetched batch for a while, waiting for a
    full agent queue, and that is no loss. Lost records leave the agents idle.
    """
    try:
        consumer = app.consumer
        kafka = kafka_client(app)
        fetched = set(kafka._fetcher._records)  # noqa: SLF001
        read = consumer._read_offset  # noqa: SLF001
        committed = consumer._committed_offset  # noqa: SLF001
        if consumer._unacked_messages:  # noqa: SLF001
            return {}  # agents at work: a batch may be on its way to them
        changelogs = app.tables.changelog_topics
        views: dict[TP, PartitionView] = {}
        for tp in consumer.assignment():
            if tp.topic in changelogs:
                continue
            views[tp] = PartitionView(
                highwater=kafka.highwater(tp),
                position=fetch_position(kafka, tp),
                read=read.get(tp),
                committed=committed.get(tp),
                fetched_waiting=tp in fetched,
            )
    except Exception:  # noqa: BLE001 - without the state there is nothing to judge
        return {}
    return views


async def _group_offset(app: Any, tp: TP) -> int:
    """Ask the broker for the group's committed offset of ``tp`` (0 when there is none).

    faust knows none for a partition it has not committed since it was
    assigned; reading such a partition from its start would repeat all of
    it (harmless, every stage is idempotent, but slow on a long topic).
    """
    try:
        thread = app.consumer._thread  # noqa: SLF001 - see observe()
        offset = await thread.call_thread(kafka_client(app).committed, tp)
    except Exception:  # noqa: BLE001 - then from the start
        return 0
    return offset if isinstance(offset, int) and offset > 0 else 0


def register(app: faust.App) -> None:
    """Add the guard's timer to the worker."""
    before: dict[TP, PartitionView] = {}

    async def refetch_lost() -> None:
        app_state: Any = app
        if app_state.rebalancing or app_state.in_recovery or app.should_stop:
            before.clear()
            return
        now = observe(app)
        for tp in partitions_to_refetch(now, before):
            view = now[tp]
            log.warning(
                "%s[%d]: records up to %s were fetched but never processed (last read %s, "
                "committed %s); reading them again from the committed offset",
                tp.topic, tp.partition, view.highwater, view.read, view.committed,
            )  # fmt: skip
            telemetry.count_refetch(tp.topic)
            # Offset 0 also clears faust's read offset; past the log's start aiokafka
            # resets to the earliest record (auto_offset_reset).
            await app.consumer.seek(tp, view.committed or await _group_offset(app, tp))
            now.pop(tp)
        before.clear()
        before.update(now)

    # Called, not applied as a decorator: faust's timer decorator is untyped.
    app.timer(CHECK_INTERVAL_SECONDS, name="palaute-refetch-lost")(refetch_lost)
