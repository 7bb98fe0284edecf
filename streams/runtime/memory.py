"""The in-memory runtime: the same stages and checkpoint order, no broker, crashes on demand.

Topics are lists of partitions; each stage reads its input as a consumer
group of its own, keeps a committed offset per partition and a store that
stands for its changelog-backed table. :meth:`MemoryRuntime.run_until_idle`
runs every stage, a batch at a time, until no stage has anything left.

A crash can be injected at every step of a checkpoint (``handled``, after
each produced record ``produced``, ``acknowledged``, ``performed`` when the
batch had effects, ``state-written``, ``committed``, and after each command
carried out, before its outcome is produced, ``executed``): the stage then
loses what it had not committed, as a killed worker does (its read positions
go back to the committed offsets, its uncommitted batch and the commands it
had not carried out are gone, and every stage forgets what it kept in
memory), while produced records stay on their topics, effects stay done and
written state stays in its store, as on Kafka. Each crash counts as a
restart of every stage (:meth:`MemoryRuntime.restarts`). A stage may read
several topics; its store's keys may name tables (``<table>/<key>``, see
:class:`~streams.runtime.model.ScanView`).

A stage with commands is given its executor when it is added; the test
provides it (a deterministic recorder of sends, say), and the runtime calls
it at the checkpoint's step (g), as the Kafka runtime does.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from streams.runtime.checkpoint import Checkpoint, CheckpointFailedError, fed_back, forget
from streams.runtime.model import Produce, Record

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

    from streams.runtime.model import Executor, Stage

#: How often a record that asks for it is handled again before the next batch
#: (the Kafka runtime's time budget, counted in rounds: the clock stands still here).
AGAIN_ROUNDS = 100
#: The steps of a checkpoint at which a crash can be injected.
STEPS = (
    "handled",
    "produced",
    "acknowledged",
    "performed",
    "state-written",
    "committed",
    "executed",
)


class InjectedCrashError(Exception):
    """A crash asked for by the test at one step of one stage's checkpoint."""


def default_partition(key: bytes | None, partitions: int) -> int:
    """Place a keyed record as a stable hash of its key does (keyless: partition 0)."""
    return 0 if key is None else zlib.crc32(key) % partitions


@dataclass
class MemoryBroker:
    """Topics as lists of partitions of records, created on first use."""

    partitions: int = 4
    topics: dict[str, list[list[Record]]] = field(default_factory=dict)

    def topic(self, name: str) -> list[list[Record]]:
        """Give a topic's partitions, creating it."""
        return self.topics.setdefault(name, [[] for _ in range(self.partitions)])

    def append(self, name: str, produce: Produce) -> Record:
        """Write one record at the end of its partition."""
        partitions = self.topic(name)
        number = (
            produce.partition
            if produce.partition is not None
            else default_partition(produce.key, len(partitions))
        )
        log = partitions[number]
        record = Record(name, number, len(log), produce.key, produce.value, produce.headers)
        log.append(record)
        return record

    def send(
        self,
        name: str,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes | None]] = (),
    ) -> Record:
        """Write one record as a client outside the runtime would."""
        return self.append(name, Produce(name, key, value, None, tuple(headers)))

    def records(self, name: str) -> list[Record]:
        """Every record of a topic, partition by partition."""
        return [record for partition in self.topic(name) for record in partition]


@dataclass
class _Runner:
    """One stage in the runtime: what it reads, where it is, what it stores."""

    stage: Stage
    sources: tuple[str, ...]
    topics: Mapping[str, str]
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    store: dict[str, str] = field(default_factory=dict)
    execute: Executor | None = None
    observe: Callable[[Any], None] | None = None
    restarts: int = 0

    def get(self, key: str) -> str | None:
        return self.store.get(key)

    def scan(self, table: str) -> Iterable[tuple[str, str]]:
        prefix = f"{table}/"
        return [(k[len(prefix) :], v) for k, v in self.store.items() if k.startswith(prefix)]


class _IO:
    """The memory runtime's side of a checkpoint, with the crash hook at every step."""

    def __init__(self, runtime: MemoryRuntime, runner: _Runner) -> None:
        self._runtime = runtime
        self._runner = runner

    def _step(self, step: str) -> None:
        if self._runtime.crash(self._runner.stage.name, step):
            raise InjectedCrashError(f"{self._runner.stage.name} at {step}")

    async def produce(self, record: Produce) -> Awaitable[Any] | None:
        self._runtime.broker.append(self._runner.topics[record.topic], record)
        self._step("produced")
        return None

    async def acknowledged(self, sent: list[Awaitable[Any]]) -> list[Any]:
        # Every record is on its topic the moment it is produced.
        self._step("acknowledged")
        return [None for _ in sent]

    def write_state(self, record: Record, key: str, value: str | None) -> None:
        del record
        if value is None:
            self._runner.store.pop(key, None)
        else:
            self._runner.store[key] = value

    async def perform(self, effects: Sequence[Any]) -> None:
        await self._runtime.perform(self._runner.stage, effects)
        self._step("performed")

    async def commit(self, records: Sequence[Record]) -> None:
        self._step("state-written")
        for record in records:
            # A record handled again never moves a position back; a fed-back
            # outcome has no offset of its own.
            position = self._runner.committed.get((record.topic, record.partition), 0)
            self._runner.committed[record.topic, record.partition] = max(
                position, record.offset + 1
            )
        self._step("committed")

    async def durable(self) -> None:
        # Written state is in the store at once.
        return


class _Executing:
    """The stage's executor, with the crash hook after each command it carries out."""

    def __init__(self, io: _IO, execute: Executor) -> None:
        self._io = io
        self._execute = execute

    async def __call__(self, command: Any) -> Sequence[Produce]:
        produced = await self._execute(command)
        self._io._step("executed")  # noqa: SLF001 - the same hook as every other step
        return produced


async def _perform_nothing(stage: Stage, effects: Sequence[Any]) -> None:
    del stage, effects


class MemoryRuntime:
    """Runs stages over a :class:`MemoryBroker`, deterministically, batch by batch."""

    def __init__(
        self,
        broker: MemoryBroker,
        *,
        batch_size: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        crash: Callable[[str, str], bool] = lambda _stage, _step: False,
        perform: Callable[[Stage, Sequence[Any]], Awaitable[None]] = _perform_nothing,
    ) -> None:
        self.broker = broker
        self.batch_size = batch_size
        self.clock = clock
        self.crash = crash
        #: Carries out a batch's effects, as the worker's wiring does.
        self.perform = perform
        self.crashes: list[str] = []
        self.observations: list[Any] = []
        self._runners: list[_Runner] = []

    def add(
        self,
        stage: Stage,
        source: str | Sequence[str],
        topics: Mapping[str, str],
        *,
        execute: Executor | None = None,
        observe: Callable[[Any], None] | None = None,
    ) -> None:
        """Run ``stage`` on the topic(s) ``source``; ``topics`` maps its output roles to topics.

        ``execute`` carries out the stage's commands; ``observe`` is told each
        observation of a committed batch, as the Kafka runtime tells it.
        """
        sources = (source,) if isinstance(source, str) else tuple(source)
        self._runners.append(_Runner(stage, sources, topics, execute=execute, observe=observe))

    def restarts(self, name: str) -> int:
        """Tell how often the stage of this name crashed and started again."""
        return next(runner.restarts for runner in self._runners if runner.stage.name == name)

    def state(self, name: str) -> dict[str, str]:
        """Give the store of the stage of this name."""
        return next(runner.store for runner in self._runners if runner.stage.name == name)

    def _batch(self, runner: _Runner) -> list[Record]:
        batch: list[Record] = []
        for source in runner.sources:
            for number, log in enumerate(self.broker.topic(source)):
                start = runner.committed.get((source, number), 0)
                batch.extend(log[start : start + self.batch_size - len(batch)])
                if len(batch) >= self.batch_size:
                    return batch
        return batch

    async def step(self) -> bool:
        """Give every stage one batch; tell whether any stage had work."""
        worked = False
        for runner in self._runners:
            batch = self._batch(runner)
            if not batch:
                continue
            worked = True
            try:
                pending = await self._checkpoint(runner, batch)
                for _ in range(AGAIN_ROUNDS):
                    if not pending:
                        break
                    pending = await self._checkpoint(runner, pending)
                pending = [record for record in pending if record.offset < 0]
                if pending:  # out of rounds: outcomes are still folded in
                    await self._checkpoint(runner, pending)
            except InjectedCrashError as crash:
                # The worker died: its uncommitted batch is gone and is read again,
                # and every stage starts again from its store.
                self.crashes.append(str(crash))
                for each in self._runners:
                    forget(each.stage, moved=True)
                    each.restarts += 1
            except CheckpointFailedError:
                # Nothing stored or committed: the batch is handled again at the next step.
                forget(runner.stage, moved=False)
        return worked

    async def _checkpoint(self, runner: _Runner, batch: list[Record]) -> list[Record]:
        """Handle, commit and carry out one batch; give the outcomes and what asks again."""
        checkpoint = Checkpoint(runner.stage, runner)
        for record in batch:
            checkpoint.handle(record, self.clock())
        if self.crash(runner.stage.name, "handled"):
            raise InjectedCrashError(f"{runner.stage.name} at handled")
        io = _IO(self, runner)
        await checkpoint.commit(io)
        self._observe(runner, checkpoint.observations)
        execute = None if runner.execute is None else _Executing(io, runner.execute)
        await checkpoint.carry_out(io, execute)
        return [*fed_back(checkpoint, runner.topics, runner.sources), *checkpoint.again]

    def _observe(self, runner: _Runner, observations: Sequence[Any]) -> None:
        self.observations.extend(observations)
        if runner.observe is not None:
            for observation in observations:
                runner.observe(observation)

    async def run_until_idle(self, max_steps: int = 100_000) -> None:
        """Step until no stage has a record left; fail rather than loop forever."""
        for _ in range(max_steps):
            if not await self.step():
                return
        raise AssertionError(f"the runtime was still busy after {max_steps} steps")
