"""One reader for several stages: each stage's part is contained under its own label."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from schemas.deadletter import DeadLetter
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.fanout import FanOut
from streams.runtime.memory import MemoryBroker, MemoryRuntime
from streams.runtime.model import NOTHING, Output, Produce, Rejection

if TYPE_CHECKING:
    from datetime import datetime

    from streams.runtime.model import Record


class _Copy:
    """Forwards every record to its role, unchanged."""

    def __init__(self, label: str, role: str) -> None:
        self.label = label
        self._role = role

    def handle(self, record: Record, now: datetime) -> Output:
        del now
        return Output(produce=(Produce(self._role, record.key, record.value),))


class _Picky:
    """Raises on ``boom``, rejects ``bad``, forwards the rest."""

    label = "metrics"

    def handle(self, record: Record, now: datetime) -> Output:
        del now
        if record.value == b"boom":
            raise KeyError("+358401234567")
        if record.value == b"bad":
            return Output(rejection=Rejection("unreadable", "not a record of a known type"))
        return Output(produce=(Produce("picked", record.key, record.value),))


class _Nothing:
    label = "intake"

    def handle(self, record: Record, now: datetime) -> Output:
        del record, now
        return NOTHING


def _letters(broker: MemoryBroker) -> list[DeadLetter]:
    return [DeadLetter.from_headers(record.headers) for record in broker.records("dlq")]


def test_a_part_that_fails_sets_the_record_aside_under_its_label_and_the_others_still_see_it() -> (
    None
):
    broker = MemoryBroker(partitions=1)
    runtime = MemoryRuntime(broker)
    reader = FanOut("surveys-reader")
    reader.add(_Copy("scheduler", "by-id"), {"by-id": "by-id", DEADLETTER: "dlq"})
    reader.add(_Picky(), {"picked": "picked", DEADLETTER: "dlq"})
    reader.add(_Copy("responses", "by-survey"), {"by-survey": "by-survey"})
    runtime.add(reader, "surveys", reader.topics)
    for value in (b"one", b"boom", b"bad", b"two"):
        broker.send("surveys", b"k", value)

    asyncio.run(runtime.run_until_idle())

    every = [b"one", b"boom", b"bad", b"two"]
    assert [r.value for r in broker.records("by-id")] == every
    assert [r.value for r in broker.records("by-survey")] == every
    assert [r.value for r in broker.records("picked")] == [b"one", b"two"]
    letters = _letters(broker)
    assert [(letter.stage, letter.reason_code) for letter in letters] == [
        ("metrics", "handler_failed"),
        ("metrics", "unreadable"),
    ]
    assert letters[0].error_class == "KeyError"
    # The error's message (it may quote a phone number) is never in a dead letter.
    assert all("358" not in letter.reason for letter in letters)
    assert [r.value for r in broker.records("dlq")] == [b"boom", b"bad"]
    assert runtime.state("surveys-reader") == {}


def test_two_parts_cannot_send_one_role_to_two_topics() -> None:
    reader = FanOut("responses-reader")
    reader.add(_Nothing(), {"by-citizen": "a"})
    reader.add(_Nothing(), {"by-citizen": "a"})
    with pytest.raises(ValueError, match="by-citizen"):
        reader.add(_Nothing(), {"by-citizen": "b"})
