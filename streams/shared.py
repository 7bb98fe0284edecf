"""One agent for a topic that several stages read.

faust hands each record of a topic to every agent that reads it, and each
hand-over costs 100-150 µs of faust's own work (its channels, streams and
acknowledgement bookkeeping): more than the stages' own work on most
records. The surveys topic is read by three stages (the answers join, the
metrics and the scheduler), each forwarding only some of its records to an
internal topic of its own. One reader per topic hands every record to each
stage's handler in turn, in the order the stages registered; the record is
done, and its offset can be committed, when every handler has returned.

Each handler runs under its own stage's :class:`~streams.containment.Containment`:
a handler that fails on a record dead-letters it under that stage's name,
and the handlers after it still see the record.
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors import telemetry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import faust
    from faust.types import EventT

    from streams.containment import Containment

    Handler = Callable[[EventT[bytes]], Awaitable[None]]

#: Each app's readers: topic name to the handlers its one agent calls, each
#: with the containment of the stage it belongs to.
_READERS: weakref.WeakKeyDictionary[faust.App, dict[str, list[tuple[Handler, Containment]]]] = (
    weakref.WeakKeyDictionary()
)


def reader_name(role: str) -> str:
    """Name the agent that reads the topic of ``role`` (``surveys`` …) for every stage."""
    return f"{role}-reader"


def read(app: faust.App, role: str, topic_name: str, handler: Handler, guard: Containment) -> None:
    """Have ``handler`` called with every record of ``topic_name``, by the topic's one agent.

    The first stage to read a topic adds its agent; later ones add their
    handlers to it. ``role`` names the agent (``<role>-reader``), so it must
    be the same for every stage reading the topic.
    """
    readers = _READERS.setdefault(app, {})
    handlers = readers.get(topic_name)
    if handlers is None:
        handlers = readers[topic_name] = []
        _add_agent(app, reader_name(role), topic_name, handlers)
    handlers.append((handler, guard))


def _add_agent(
    app: faust.App, name: str, topic_name: str, handlers: list[tuple[Handler, Containment]]
) -> None:
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")

    async def read_for_every_stage(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            for handler, guard in handlers:
                await guard.run(event.message, handler, event)
            telemetry.agent_progress(name, datetime.now(UTC))

    app.agent(topic, name=name)(read_for_every_stage)
