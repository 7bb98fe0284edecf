"""Where every asyncio task of a worker is waiting, for an operator looking at a stuck worker.

``kill -USR1 <pid>`` makes ``palaute worker`` log one block per task. Each
block follows the chain of awaits down to the innermost coroutine or async
generator, so it shows the line a stalled agent waits on (a flush, a queue,
a lock), not only the agent's outermost frame as asyncio's own
``Task.print_stack`` does.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

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
