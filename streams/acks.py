"""Waiting for a stage's own records to be on the broker, without the producer's linger.

The intake and the responses join store their state only once what they
produced for a record is acknowledged (a worker killed in between must
handle the record again, not take it as done). The producer holds records
back for ``producer_linger`` to batch them; a stage that waits for its own
records would wait that out for every record it handles, so it asks the
producer to send at once (:meth:`streams.app.IdempotentProducer.send_now`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

    import faust


async def acknowledged(app: faust.App, sent: Iterable[Awaitable[Any]]) -> list[Any]:
    """Send what is batched now and wait for every record; failures are returned, not raised."""
    waiting = list(sent)
    if not waiting:
        return []
    send_now = getattr(app.producer, "send_now", None)
    if send_now is not None:
        send_now()
    return await asyncio.gather(*waiting, return_exceptions=True)
