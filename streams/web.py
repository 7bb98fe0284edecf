"""The worker's own pages on faust's web server: GET /metrics and GET /healthz.

Prometheus scrapes ``/metrics`` (the process's :mod:`connectors.telemetry`
registry); Kubernetes probes ``/healthz``. Agents have been seen to stall
after days without crashing (faust-streaming issues 523 and 532), so
``/healthz`` answers 503 naming every stalled agent, and the orchestrator
restarts the worker.

**Stalled** means *records waiting and no progress*, not *no records*. An
agent notes its progress (:func:`connectors.telemetry.agent_progress`) after
each record, and a quiet agent receives none, so the idle check below notes
progress for every agent that has nothing to do. An agent has nothing to do
on this worker when every partition of its input topics that the worker owns
has been processed to its end: the offset this worker committed (which
faust commits only after the agents are done with the records before it)
has reached the partition's high watermark, as the broker reports it. The
consumer's fetch position is not enough: records fetched but still in an
agent's buffer, or the one it is stuck on, are past the fetch position but
not done. An agent whose last progress is older than ``[streams]
stalled_after`` is stalled.

An agent that has not finished a single record since the worker started
counts from the worker's first idle check, so one stuck from its first
record is named too. And an agent that makes progress on some partitions
is named when one of its partitions has records waiting and a committed
offset that has not moved for ``stalled_after`` (:class:`PartitionWatch`).

**Failing** means *every record fails*: a stage whose handler raises on a
record sets it aside as a dead letter and goes on, so it makes progress and
has no lag while it handles nothing. ``/healthz`` answers 503 naming a stage
whose handler failed on several records within ``stalled_after`` while it
handled none (:class:`streams.diagnostics.StageFailures`); a record refused
by validation is no failure of the stage. An agent that crashes (faust then
skips its record) counts as a failure of ``agent <name>``.

A worker that is rebalancing or rebuilding its tables from the changelogs
notes progress for every agent: the agents wait for it, and restarting the
worker would only start the rebuilding over. Stages that read the same
topic do so through one agent (:mod:`streams.shared`), so a stalled reader
is named once for all of them; were two agents to read one topic, they
would share its committed offset, and both be named once no new record
arrives.

The same check publishes ``palaute_consumer_lag_records`` for every owned
input partition: the records waiting, as counted above. A partition whose
offsets could not be read keeps its last figure (a broker too slow to answer
is no reason to hide a lag), and the lag of a partition this worker no longer
owns is removed at the next check, rebalancing or not, so that a worker never
reports a backlog that another one now reads.

The server listens on ``[streams] web_host`` and nowhere else (faust's
``web_bind``, which is not faust's ``web_host``).

faust's own table and router pages (``/table``, ``/router``, ``/graph``,
statistics) are turned off: with ``[streams] web_host = "0.0.0.0"`` they
would serve table contents, including contact details held for sending, to
anyone on the network.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from faust.web import Request, Response, View

from connectors import telemetry
from streams.diagnostics import StageFailures, stage_counts
from streams.runtime import kafka_plain

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from faust.types import TP, AppT

    from schemas.config import Settings

log = logging.getLogger(__name__)

#: The longest pause between two idle checks: one offsets request to the broker each.
IDLE_CHECK_MAX_SECONDS: Final = 30.0
#: Idle checks per ``stalled_after``, so that one late check does not make a stall.
IDLE_CHECKS_PER_STALL: Final = 4
#: How long an offsets request may take; past it the partitions count as waiting.
_OFFSETS_TIMEOUT_SECONDS: Final = 20.0

# faust's built-in pages that would expose tables or the cluster's layout.
_BUILT_IN_PAGES_OFF: Final = (
    "web_tables_enabled",
    "web_router_enabled",
    "web_graph_enabled",
    "web_stats_enabled",
)


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """What is known of one input partition: how far it is done, and where it ends.

    ``committed`` is the next offset to process as this worker committed it
    (None or negative when nothing was ever committed); ``earliest`` is the
    log's first offset (records before it were deleted by retention, so they
    cannot be waiting); ``highwater`` is the offset the next record will get.
    """

    committed: int | None
    highwater: int
    earliest: int = 0

    @property
    def waiting(self) -> int:
        """Records in the partition not yet done."""
        done_up_to = max(self.committed or 0, self.earliest)
        return max(self.highwater - done_up_to, 0)


def idle_agents(
    inputs: Mapping[str, Collection[str]], partitions: Mapping[TP, PartitionOffsets | None]
) -> list[str]:
    """Name the agents with nothing to do: no record waits on any input partition owned here.

    ``inputs`` maps each agent to its input topics; ``partitions`` holds the
    partitions this worker owns, None where their offsets are not known
    (which counts as records waiting: idleness is never guessed). An agent
    that owns no partition here has nothing to do here.
    """
    busy = {tp.topic for tp, offsets in partitions.items() if offsets is None or offsets.waiting}
    return sorted(agent for agent, topics in inputs.items() if busy.isdisjoint(topics))


@dataclass(frozen=True, slots=True)
class Health:
    """The answer of /healthz: an HTTP status and a small JSON body."""

    status: int
    body: dict[str, Any]


def worker_health(
    state: str,
    *,
    stalled: Sequence[str],
    recovering: bool,
    failing: Mapping[str, int] | None = None,
    stalled_after: timedelta | None = None,
) -> Health:
    """Judge the worker from its app's state, its stalled agents and its failing stages.

    ``state`` is the faust app's service state (``running``, ``init``,
    ``stopping``, ``crashed``…); anything but running is unhealthy.
    ``failing`` maps each stage that keeps failing to its failures within
    ``stalled_after`` (:class:`streams.diagnostics.StageFailures`). Every
    unhealthy answer says why in ``reason``, for whoever reads the probe's log.
    """
    if state != "running":
        return Health(503, {"status": state, "reason": f"the worker is {state}, not running"})
    within = f" for {stalled_after.total_seconds():.0f} s" if stalled_after is not None else ""
    body: dict[str, Any] = {}
    reasons = []
    if stalled:
        body["stalled_agents"] = sorted(stalled)
        reasons.append(
            f"records wait and nothing was processed{within} by: {', '.join(sorted(stalled))}"
        )
    if failing:
        body["failing_stages"] = dict(sorted(failing.items()))
        named = ", ".join(f"{stage} ({count} failed)" for stage, count in sorted(failing.items()))
        reasons.append(f"every record failed and none was handled{within} in: {named}")
    if reasons:
        status = "stalled" if stalled else "failing"
        return Health(503, {"status": status, **body, "reason": "; ".join(reasons)})
    return Health(200, {"status": "recovering" if recovering else "ok"})


def idle_check_interval(stalled_after: timedelta) -> float:
    """Seconds between idle checks: a few per ``stalled_after``, at most 30 s apart."""
    return min(IDLE_CHECK_MAX_SECONDS, stalled_after.total_seconds() / IDLE_CHECKS_PER_STALL)


def agent_inputs(app: AppT) -> dict[str, frozenset[str]]:
    """Map each agent of the app to the topics it reads."""
    return {
        agent.name: frozenset(getattr(agent.channel, "topics", ())) for agent in app.agents.values()
    }


def is_rebalancing(app: AppT) -> bool:
    """Tell whether the worker is between assignments or rebuilding its tables."""
    return bool(getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False))


def owned_partitions(app: AppT, topics: Collection[str]) -> list[TP]:
    """List the partitions of ``topics`` assigned to this worker now (no broker request)."""
    return sorted(tp for tp in app.consumer.assignment() if tp.topic in topics)


def publish_consumer_lag(
    partitions: Mapping[TP, PartitionOffsets | None], others: Iterable[tuple[str, int]] = ()
) -> None:
    """Publish the lag of each owned partition; remove that of every other partition.

    ``partitions`` holds every input partition of the agents this worker
    owns; one whose offsets are not known (None) keeps the figure it had.
    ``others`` are partitions owned by stages outside faust, which publish
    their own lag (:mod:`streams.runtime.kafka_plain`): kept as they are.
    """
    for tp, offsets in partitions.items():
        if offsets is not None:
            telemetry.set_consumer_lag(tp.topic, tp.partition, offsets.waiting)
    telemetry.retain_consumer_lag([*((tp.topic, tp.partition) for tp in partitions), *others])


async def input_offsets(app: AppT, topics: Collection[str]) -> dict[TP, PartitionOffsets | None]:
    """Read the committed offset and the high watermark of every owned partition of ``topics``.

    One offsets request to the broker for the high watermarks, and one more
    for the first offsets only when a partition seems to have records
    waiting. A partition whose high watermark cannot be read maps to None.
    """
    consumer = app.consumer
    owned = owned_partitions(app, topics)
    if not owned:
        return {}
    # faust keeps the offsets it committed, seeded from the broker at each
    # assignment, only in this private mapping (faust-streaming is pinned).
    committed: Mapping[TP, int | None] = getattr(consumer, "_committed_offset", {})
    try:
        async with asyncio.timeout(_OFFSETS_TIMEOUT_SECONDS):
            highwaters = await consumer.highwaters(*owned)
    except Exception:  # noqa: BLE001 - any failure only means "not known to be idle"
        log.warning("could not read the high watermarks of the agents' input partitions")
        highwaters = {}
    offsets: dict[TP, PartitionOffsets | None] = {}
    for tp in owned:
        end = highwaters.get(tp)
        offsets[tp] = None if end is None else PartitionOffsets(committed.get(tp), end)
    behind = [tp for tp, known in offsets.items() if known is not None and known.waiting]
    if not behind:
        return offsets
    try:
        async with asyncio.timeout(_OFFSETS_TIMEOUT_SECONDS):
            earliest = await consumer.earliest_offsets(*behind)
    except Exception:  # noqa: BLE001 - as above; the partitions stay "waiting"
        return offsets
    for tp in behind:
        known, first = offsets[tp], earliest.get(tp)
        if known is not None and first is not None:
            offsets[tp] = PartitionOffsets(known.committed, known.highwater, first)
    return offsets


class PartitionWatch:
    """Since when records have waited, unmoved, on each owned input partition.

    An agent that works through some partitions notes progress while one
    partition makes none (records fetched and never handed over, an unacked
    record at its head): the agent's progress alone would never call it
    stalled. Here a partition with records waiting whose committed offset
    has not moved for ``stalled_after`` is stuck, and so are the agents that
    read its topic. faust commits every few seconds while records are done,
    so a partition that is being worked through, however far behind, moves.
    """

    def __init__(self) -> None:
        self._since: dict[TP, tuple[int | None, datetime]] = {}

    def observe(self, now: datetime, partitions: Mapping[TP, PartitionOffsets | None]) -> None:
        """Take one idle check's offsets; forget partitions no longer owned or with none waiting."""
        for tp in set(self._since) - set(partitions):
            del self._since[tp]
        for tp, offsets in partitions.items():
            if offsets is None:
                continue  # not known this time: keep what was known
            if not offsets.waiting:
                self._since.pop(tp, None)
                continue
            seen = self._since.get(tp)
            if seen is None or seen[0] != offsets.committed:
                self._since[tp] = (offsets.committed, now)

    def forget(self) -> None:
        """Start over, as after a rebalance: the assignment and its offsets are new."""
        self._since.clear()

    def stuck_topics(self, now: datetime, max_age: timedelta) -> set[str]:
        """Name the topics with a partition whose records have waited unmoved over ``max_age``."""
        return {tp.topic for tp, (_, since) in self._since.items() if now - since > max_age}


def stuck_agents(inputs: Mapping[str, Collection[str]], topics: Collection[str]) -> list[str]:
    """Name the agents that read any of ``topics``."""
    return sorted(agent for agent, read in inputs.items() if not set(read).isdisjoint(topics))


async def note_idle_agents(
    app: AppT, now: datetime, watch: PartitionWatch | None = None
) -> list[str]:
    """Note progress for every agent with nothing to do; return their names.

    Publishes the input partitions' consumer lag too, after the progress: a
    failure there must not cost an idle agent its progress. ``watch`` is
    given the offsets, to find partitions that wait without moving.
    """
    inputs = agent_inputs(app)
    topics: frozenset[str] = frozenset().union(*inputs.values()) if inputs else frozenset()
    partitions: Mapping[TP, PartitionOffsets | None] | None = None
    if is_rebalancing(app):
        idle = sorted(inputs)
        if watch is not None:
            watch.forget()
    else:
        partitions = await input_offsets(app, topics)
        idle = idle_agents(inputs, partitions)
        if watch is not None:
            watch.observe(now, partitions)
    for agent in idle:
        telemetry.agent_progress(agent, now)
    try:
        if partitions is None:
            # Offsets are not read while rebalancing; only what was given up goes.
            owned = owned_partitions(app, topics)
            telemetry.retain_consumer_lag(
                [*((tp.topic, tp.partition) for tp in owned), *kafka_plain.owned_partitions(app)]
            )
        else:
            publish_consumer_lag(partitions, kafka_plain.owned_partitions(app))
    except Exception:  # noqa: BLE001 - the lag is a figure; the idle check must go on
        log.warning("could not publish the consumer lag of the agents' input partitions")
    return idle


def register(app: AppT, settings: Settings) -> None:
    """Add /metrics and /healthz to the worker's web server, and the idle check.

    Call it before anything touches ``app.web``: the built-in pages are
    chosen when faust's web server object is made.
    """
    stalled_after = settings.streams.stalled_after
    for page_setting in _BUILT_IN_PAGES_OFF:
        setattr(app.conf, page_setting, False)
    # faust listens on ``web_bind`` (default 0.0.0.0); its ``web_host`` only
    # names the host in URLs it builds. Without this, /metrics and /healthz
    # were reachable from the whole network while the settings said 127.0.0.1.
    app.conf.web_bind = settings.streams.web_host

    class MetricsPage(View):
        """GET /metrics: the worker's metrics in the Prometheus text format."""

        async def get(self, _request: Request, **_: Any) -> Response:
            return self.bytes(telemetry.render(), headers={"Content-Type": telemetry.CONTENT_TYPE})

    failures = StageFailures(stalled_after, datetime.now(UTC))
    watch = PartitionWatch()

    def failing_stages(now: datetime) -> dict[str, int]:
        current = telemetry.current()
        families = [*current.events.collect(), *current.dead_letters.collect()]
        failures.observe(now, stage_counts(families))
        return failures.failing()

    class HealthPage(View):
        """GET /healthz: 200 while the worker runs, no agent is stalled and no stage failing."""

        async def get(self, _request: Request, **_: Any) -> Response:
            now = datetime.now(UTC)
            stuck = stuck_agents(agent_inputs(self.app), watch.stuck_topics(now, stalled_after))
            health = worker_health(
                self.app.state,
                stalled=sorted({*telemetry.stalled_agents(now, stalled_after), *stuck}),
                recovering=is_rebalancing(self.app),
                failing=failing_stages(now),
                stalled_after=stalled_after,
            )
            body = {**health.body, "catalogue_version": settings.catalogue.version}
            return self.json(body, status=health.status)

    app.page("/metrics", name="palaute-metrics")(MetricsPage)
    app.page("/healthz", name="palaute-healthz")(HealthPage)

    baseline_noted = False

    async def idle_check() -> None:
        nonlocal baseline_noted
        now = datetime.now(UTC)
        if not baseline_noted:
            # An agent that never finished a record would never count as stalled:
            # its progress starts with the worker's first check.
            for agent in agent_inputs(app):
                telemetry.agent_progress(agent, now)
            baseline_noted = True
        failing_stages(now)
        try:
            await note_idle_agents(app, now, watch)
        except Exception:  # a failed check notes nothing; the timer must go on
            log.exception("the idle check of the agents failed; no idle progress noted")

    # Called, not applied as a decorator: faust's timer decorator is untyped.
    app.timer(idle_check_interval(stalled_after), name="palaute-idle-check")(idle_check)
