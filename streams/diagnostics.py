"""What an operator (or a probe) needs to know about a worker that does not work.

Where every asyncio task of a worker is waiting, for an operator looking at a
stuck worker; and which stages keep failing, for ``/healthz``
(:class:`StageFailures`).

``kill -USR1 <pid>`` makes ``palaute worker`` log one block per task. Each
block follows the chain of awaits down to the innermost coroutine or async
generator, so it shows the line a stalled agent waits on (a flush, a queue,
a lock), not only the agent's outermost frame as asyncio's own
``Task.print_stack`` does.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime, timedelta

#: Deep enough for faust's stacks (agent, stream, conductor, producer, aiokafka).
_MAX_DEPTH = 60


def await_chain(awaitable: Any) -> list[str]:
    """Name each frame from ``awaitable`` down the chain of what it awaits."""
    lines: list[str] = []
    current = awaitable
    for _ in range(_MAX_DEPTH):
        frame = getattr(current, "cr_frame", None) or getattr(current, "ag_frame", None)
        if frame is None:
            frame = getattr(current, "gi_frame", None)
        if frame is None:
            # A wrapper without a frame of its own (an async generator's asend, a
            # coroutine_wrapper): go on with the generator or coroutine it holds.
            inner = next((ref for ref in gc.get_referents(current) if _has_frame(ref)), None)
            if inner is not None:
                current = inner
                continue
            lines.append(f"  awaiting {type(current).__name__}: {current!r:.200}")
            break
        code = frame.f_code
        lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        current = (
            getattr(current, "cr_await", None)
            or getattr(current, "ag_await", None)
            or getattr(current, "gi_yieldfrom", None)
        )
        if current is None:
            break
    return lines


def _has_frame(value: object) -> bool:
    return any(
        getattr(value, name, None) is not None for name in ("cr_frame", "ag_frame", "gi_frame")
    )


def task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    """Describe every pending task of ``loop`` and the await chain it is suspended in."""
    blocks = []
    for task in sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name()):
        if task.done():
            continue
        chain = "\n".join(await_chain(task.get_coro()))
        blocks.append(f"task {task.get_name()}:\n{chain}")
    return f"{len(blocks)} tasks pending\n" + "\n".join(blocks)


def kafka_client(app: Any) -> Any:
    """Give the aiokafka consumer under faust's consumer thread (private state, pinned versions)."""
    return app.consumer._thread._ensure_consumer()  # noqa: SLF001 - see the docstring


def fetch_position(kafka: Any, tp: Any) -> int | None:
    """Give aiokafka's next offset to fetch for ``tp``; None while it has no valid position."""
    state = kafka._subscription.subscription.assignment.state_value(tp)  # noqa: SLF001
    return state.position if state is not None and state.has_valid_position else None


def consumer_state(app: Any) -> str:
    """Describe, per partition this worker is assigned, where faust and aiokafka stand.

    faust keeps its own view of which partitions may be fetched (active,
    paused, buffered) and how far each was read; aiokafka keeps the fetch
    position and records fetched but not yet handed over. A partition whose
    records wait at the broker while every agent is idle shows here which
    of the two holds it back. Reads private state of the pinned versions;
    anything missing is reported as unknown.
    """
    try:
        consumer = app.consumer
        kafka = kafka_client(app)
        assignment = kafka._subscription.subscription.assignment  # noqa: SLF001 - see the docstring
        buffered_records = set(kafka._fetcher._records)  # noqa: SLF001
        active = set(consumer._active_partitions or ())  # noqa: SLF001
        paused = set(consumer._paused_partitions)  # noqa: SLF001
        buffered = set(consumer._buffered_partitions)  # noqa: SLF001
        read = dict(consumer._read_offset)  # noqa: SLF001
        committed = dict(consumer._committed_offset)  # noqa: SLF001
        flow = (
            f"flow_active={consumer.flow_active} in_recovery={app.in_recovery} "
            f"rebalancing={app.rebalancing} flow_control_active={app.flow_control.is_active()}"
        )
        lines = [flow]
        for tp in sorted(consumer.assignment()):
            state = assignment.state_value(tp)
            lines.append(
                f"{tp.topic}[{tp.partition}] active={tp in active} paused={tp in paused} "
                f"buffered={tp in buffered} read={read.get(tp)} committed={committed.get(tp)} "
                f"kafka_position={fetch_position(kafka, tp)} "
                f"kafka_paused={getattr(state, 'paused', None)} "
                f"fetched_waiting={tp in buffered_records} highwater={kafka.highwater(tp)}"
            )
        return "\n".join(lines)
    except Exception as error:  # noqa: BLE001 - a diagnostic must never fail the worker
        return f"consumer state unknown: {error!r}"


#: The reason code under which a stage dead-letters a record its handler raised on
#: (``streams.runtime.deadletters.HANDLER_FAILED``): a failure, not a record refused by validation.
HANDLER_FAILED: Final = "handler_failed"
#: Outcomes of ``palaute_events_processed`` that mean a stage handled a record.
HANDLED_OUTCOMES: Final = frozenset({"ok", "duplicate"})
#: Failures within the window, with nothing handled, that make a stage "failing".
FAILING_AFTER: Final = 5


@dataclass(frozen=True, slots=True)
class StageCounts:
    """A stage's records handled and records its handler failed on, as the counters stand."""

    handled: float = 0.0
    failed: float = 0.0


#: Agents of this process that raised out of their loop, by name (see :func:`note_agent_crash`).
_agent_crashes: Counter[str] = Counter()


def note_agent_crash(agent: str) -> None:
    """Count an agent whose loop raised: faust restarts it after the record it was on.

    Every stage contains its records' failures, so an agent that crashes met
    something outside them (its acknowledgements, its table); the record was
    skipped. :func:`stage_counts` reports the crashes as failures of
    ``agent <name>``, which handles nothing, so a few make the worker failing.
    """
    _agent_crashes[agent] += 1


def stage_counts(
    registry_families: Iterable[Any], crashes: Mapping[str, int] | None = None
) -> dict[str, StageCounts]:
    """Read the handled and failed records of every stage from the telemetry's counters.

    ``registry_families`` are the collected families of ``palaute_events_processed``
    and ``palaute_dead_letters`` (any others are ignored); ``crashes`` counts the
    agents that raised, the process's own by default.
    """
    handled: dict[str, float] = {}
    failed: dict[str, float] = {
        f"agent {agent}": float(count)
        for agent, count in (_agent_crashes if crashes is None else crashes).items()
    }
    for family in registry_families:
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            stage = sample.labels.get("stage")
            if stage is None:
                continue
            name, labels = family.name, sample.labels
            if name == "palaute_events_processed" and labels.get("outcome") in HANDLED_OUTCOMES:
                handled[stage] = handled.get(stage, 0.0) + sample.value
            elif name == "palaute_dead_letters" and labels.get("reason_code") == HANDLER_FAILED:
                failed[stage] = failed.get(stage, 0.0) + sample.value
    return {
        stage: StageCounts(handled.get(stage, 0.0), failed.get(stage, 0.0))
        for stage in handled.keys() | failed.keys()
    }


class StageFailures:
    """Tell which stages keep failing: their records end as failures and none is handled.

    A stage whose handler raises on a record dead-letters it and goes on
    (``streams.runtime.checkpoint``), so its agent keeps making progress and its
    consumer lag stays at zero: neither the stall check nor the lag shows
    anything wrong while every record is set aside. Here the counters are
    sampled over time (at every idle check and every /healthz request), and
    a stage is *failing* when, over the last ``window``, its handler failed
    on at least ``threshold`` records and it handled none. One odd record
    set aside among good ones is not a failing stage; a stage that fails on
    everything is, and stops being one once it handles a record again or
    fails on nothing for a whole window. Stages that count no handled
    records (``palaute_events_processed``) are judged on their failures alone.
    """

    def __init__(
        self, window: timedelta, started: datetime, threshold: int = FAILING_AFTER
    ) -> None:
        self.window = window
        self.threshold = threshold
        # A process's counters start at zero: that is the first sample.
        self._samples: deque[tuple[datetime, Mapping[str, StageCounts]]] = deque([(started, {})])

    def observe(self, now: datetime, counts: Mapping[str, StageCounts]) -> None:
        """Add a sample; keep one at or before the window's start as the baseline."""
        self._samples.append((now, dict(counts)))
        start = now - self.window
        while len(self._samples) > 1 and self._samples[1][0] <= start:
            self._samples.popleft()

    def failing(self) -> dict[str, int]:
        """Map each failing stage to its failures over the window (see the class)."""
        _, baseline = self._samples[0]
        _, latest = self._samples[-1]
        judged: dict[str, int] = {}
        for stage, now_counts in latest.items():
            then = baseline.get(stage, StageCounts())
            failed = int(now_counts.failed - then.failed)
            if failed >= self.threshold and now_counts.handled == then.handled:
                judged[stage] = failed
        return dict(sorted(judged.items()))
