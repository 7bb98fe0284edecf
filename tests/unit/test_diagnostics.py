"""The task dump a worker logs on SIGUSR1 follows awaits through async generators."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from streams.diagnostics import task_stacks

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def _records(queue: asyncio.Queue[int]) -> AsyncIterator[int]:
    while True:
        yield await queue.get()


async def _agent(queue: asyncio.Queue[int]) -> None:
    async for _ in _records(queue):
        pass


async def test_a_waiting_agent_is_shown_down_to_the_queue_it_waits_on() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    task = asyncio.create_task(_agent(queue), name="the-agent")
    await asyncio.sleep(0.01)
    try:
        dump = task_stacks(asyncio.get_running_loop())
    finally:
        task.cancel()
    block = dump.split("task the-agent:\n", 1)[1].split("\ntask ", 1)[0]
    lines = block.splitlines()
    assert [line.rsplit(" in ", 1)[1] for line in lines[:3]] == ["_agent", "_records", "get"]
    assert "queues.py" in lines[2]
