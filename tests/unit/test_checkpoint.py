"""The checkpoint order (produce, acknowledge, write state, commit) and per-record containment."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import pytest

from schemas.deadletter import DeadLetter
from streams.runtime import checkpoint as checkpoint_module
from streams.runtime.checkpoint import DEADLETTER, Checkpoint, CheckpointFailedError, run_batch
from streams.runtime.deadletters import HANDLER_FAILED
from streams.runtime.model import Output, Produce, Record, Rejection

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from streams.runtime.model import StateView

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Counting:
    """A stage that counts records per key, rejects ``bad`` and raises on ``boom``."""

    name = "counting"
    label = "metrics"

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Count the record under its key and pass its value on."""
        del now
        if record.value == b"boom":
            raise ZeroDivisionError
        if record.value == b"bad":
            return Output(rejection=Rejection("bad_value", "the value is bad"))
        key = (record.key or b"").decode()
        count = int(state.get(key) or 0) + 1
        return Output(produce=(Produce("out", record.key, record.value),), state={key: str(count)})


@dataclass
class Log:
    """A runtime's side of a checkpoint that writes down every step, and can refuse a record."""

    steps: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    refuse: int = 0

    def get(self, key: str) -> str | None:
        """Read the stored state."""
        return self.state.get(key)

    async def produce(self, record: Produce) -> Awaitable[Any] | None:
        """Note the record; a refused one fails on its acknowledgement."""
        self.steps.append(f"produce {record.topic} {record.value!r}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.refuse:
            self.refuse -= 1
            future.set_exception(ConnectionError())
        else:
            future.set_result(None)
        return future

    async def acknowledged(self, sent: list[Awaitable[Any]]) -> list[Any]:
        """Wait for every record."""
        self.steps.append(f"acknowledged {len(sent)}")
        return await asyncio.gather(*sent, return_exceptions=True)

    def write_state(self, record: Record, key: str, value: str | None) -> None:
        """Store a change."""
        self.steps.append(f"state {key}={value} by @{record.offset}")
        if value is None:
            self.state.pop(key, None)
        else:
            self.state[key] = value

    async def perform(self, effects: Sequence[Any]) -> None:
        """Note the effects carried out."""
        self.steps.append(f"perform {list(effects)}")

    async def commit(self, records: Sequence[Record]) -> None:
        """Note the committed offsets."""
        self.steps.append(f"commit {[r.offset for r in records]}")

    def scan(self, table: str) -> list[tuple[str, str]]:
        """Give one table's stored entries (keys ``<table>/<key>``)."""
        prefix = f"{table}/"
        found = [(k, v) for k, v in self.state.items() if k.startswith(prefix)]
        return [(k[len(prefix) :], v) for k, v in found]


@dataclass
class Entry:
    """A parsed entry a stage keeps in memory and hands over to be serialised when written."""

    count: int = 0
    dumps: int = 0

    def dump(self) -> str:
        """Serialise it, counting how often."""
        self.dumps += 1
        return str(self.count)


class Remembering:
    """A stage that keeps counts in memory, asks for an effect per record and scans its table."""

    name = "remembering"
    label = "notifier"

    def __init__(self, *, scan: bool = False) -> None:
        self.kept: dict[str, Entry] = {}
        self.forgotten = 0
        self.scan = scan
        self.seen_in_table: list[list[tuple[str, str]]] = []

    def forget(self, *, moved: bool) -> None:
        """Drop what is kept."""
        del moved
        self.kept.clear()
        self.forgotten += 1

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Count the record in memory; raise halfway on ``boom``."""
        del now
        key = (record.key or b"").decode()
        if key not in self.kept:
            self.kept[key] = Entry(int(state.get(f"t/{key}") or 0))
        entry = self.kept[key]
        entry.count += 1
        if record.value == b"boom":
            raise ZeroDivisionError
        if self.scan:
            self.seen_in_table.append(sorted(cast("Log", state).scan("t")))
        return Output(
            produce=(Produce("out", record.key, record.value),),
            state={f"t/{key}": entry},
            effects=(record.value,),
        )


def _records(*values: bytes) -> list[Record]:
    return [Record("in", 0, offset, b"k", value) for offset, value in enumerate(values)]


async def test_a_batch_commits_in_the_one_order_and_a_later_record_sees_an_earlier_ones_state() -> (
    None
):
    """State written before its records are acknowledged would make a crash lose them."""
    log = Log()
    checkpoint = Checkpoint(Counting(), log)
    for record in _records(b"a", b"b"):
        checkpoint.handle(record, NOW)
    assert log.steps == []  # nothing happens before the commit
    await checkpoint.commit(log)
    assert log.steps == [
        "produce out b'a'",
        "produce out b'b'",
        "acknowledged 2",
        "state k=2 by @1",
        "commit [0, 1]",
    ]


async def test_a_raising_or_rejecting_handler_dead_letters_its_record_and_the_batch_goes_on() -> (
    None
):
    """An exception never skips a record: it is a dead letter naming the stage and the error."""
    log = Log()
    checkpoint = Checkpoint(Counting(), log)
    for record in _records(b"a", b"boom", b"bad", b"c"):
        checkpoint.handle(record, NOW)
    await checkpoint.commit(log)
    letters = [p for p in checkpoint.produced if p.topic == DEADLETTER]
    assert [p.value for p in letters] == [b"boom", b"bad"]
    first, second = (DeadLetter.from_headers(list(p.headers)) for p in letters)
    assert (first.stage, first.reason_code, first.error_class) == (
        "metrics",
        HANDLER_FAILED,
        "ZeroDivisionError",
    )
    assert (second.reason_code, second.error_class) == ("bad_value", None)
    assert log.state == {"k": "2"}
    assert log.steps[-1] == "commit [0, 1, 2, 3]"


async def test_a_refused_record_stores_nothing_commits_nothing_and_the_batch_is_handled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A decision that never reached the broker must not be remembered as made."""
    monkeypatch.setattr(checkpoint_module, "RETRY_FIRST_S", 0.001)
    log = Log(refuse=1)
    checkpoint = Checkpoint(Counting(), log)
    for record in _records(b"a"):
        checkpoint.handle(record, NOW)
    with pytest.raises(CheckpointFailedError):
        await checkpoint.commit(log)
    assert log.state == {}
    assert not any(step.startswith(("state", "commit")) for step in log.steps)
    log.steps.clear()
    log.refuse = 1
    done = await run_batch(Counting(), log, _records(b"a", b"b"), log, clock=lambda: NOW)
    assert log.state == {"k": "2"}  # handled twice, from the same stored state: counted once
    assert log.steps.count("commit [0, 1]") == 1
    assert len(done.records) == 2


async def test_effects_are_carried_out_after_the_acknowledgements_and_before_the_state() -> None:
    """An alert notified before it is remembered is notified at least once, never lost."""
    log = Log()
    stage = Remembering()
    checkpoint = Checkpoint(stage, log)
    for record in _records(b"a", b"b"):
        checkpoint.handle(record, NOW)
    await checkpoint.commit(log)
    assert log.steps == [
        "produce out b'a'",
        "produce out b'b'",
        "acknowledged 2",
        "perform [b'a', b'b']",
        "state t/k=2 by @1",
        "commit [0, 1]",
    ]
    assert stage.kept["k"].dumps == 1  # serialised once per batch, when it is written


async def test_a_stage_forgets_its_memory_when_a_handler_raises_or_a_batch_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory ahead of the store would count a record whose state was never written."""
    monkeypatch.setattr(checkpoint_module, "RETRY_FIRST_S", 0.001)
    log = Log()
    stage = Remembering()
    checkpoint = Checkpoint(stage, log)
    for record in _records(b"a", b"boom", b"b"):
        checkpoint.handle(record, NOW)
    assert stage.forgotten == 1
    await checkpoint.commit(log)
    assert log.state == {"t/k": "2"}  # a and b; the raising record left nothing behind

    refusing = Log(state={"t/k": "1"}, refuse=1)
    stage = Remembering()
    await run_batch(stage, refusing, _records(b"c"), refusing, clock=lambda: NOW)
    assert stage.forgotten == 1
    assert refusing.steps.count("perform [b'c']") == 1  # not before the acknowledgement
    assert refusing.state == {"t/k": "2"}  # handled again from the store: counted once


async def test_a_scan_sees_the_batchs_earlier_writes_on_top_of_the_store() -> None:
    """A mirror rebuilt in the middle of a batch must not miss the batch's own records."""
    log = Log(state={"t/old": "5"})
    stage = Remembering(scan=True)
    checkpoint = Checkpoint(stage, log)
    for offset, key in enumerate((b"k1", b"k2")):
        checkpoint.handle(Record("in", 0, offset, key, b"v"), NOW)
    assert stage.seen_in_table == [[("old", "5")], [("k1", "1"), ("old", "5")]]


async def test_effects_that_fail_are_carried_out_again_and_nothing_is_stored_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An effect that raised must not be taken as done: its state would skip it for ever."""
    monkeypatch.setattr(checkpoint_module, "RETRY_FIRST_S", 0.001)
    log = Log()
    failures = [ConnectionError()]

    async def perform(effects: Sequence[Any]) -> None:
        log.steps.append(f"perform {list(effects)}")
        if failures:
            raise failures.pop()

    log.perform = perform  # type: ignore[method-assign]
    stage = Remembering()
    await run_batch(stage, log, _records(b"a"), log, clock=lambda: NOW)
    assert log.steps.count("perform [b'a']") == 2
    assert [step for step in log.steps if step.startswith(("state", "commit"))] == [
        "state t/k=1 by @0",
        "commit [0]",
    ]
    assert stage.forgotten == 1
