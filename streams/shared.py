"""One agent for a topic that several stages read.

faust hands each record of a topic to every agent that reads it, and each
hand-over costs 100-150 µs of faust's own work (its channels, streams and
acknowledgement bookkeeping): more than the stages' own work on most
records. The surveys topic is read by three stages (the answers join, the
metrics and the scheduler), the responses topic by three (the join, the
scheduler and the intake's opt-out forwarder), each forwarding only some of
the records to an internal topic of its own. One reader per topic,
``<role>-reader``, hands every record to each stage in turn.

A stage takes part with a pure :class:`~streams.runtime.fanout.Part`
(:func:`forward`): the reader is then a
:class:`~streams.runtime.fanout.FanOut` on the stream runtime, so what the
parts forward is produced and acknowledged before the offset is committed,
and a part that fails sets the record aside under its own stage's label.
A stage not yet written as a part adds an async handler under its own
:class:`~streams.containment.Containment` (:func:`read`); the reader calls
those once the batch's checkpoint is done, before the batch is acknowledged.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.fanout import FanOut
from streams.runtime.faust_agent import run_stage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    import faust
    from faust.types import EventT

    from streams.containment import Containment
    from streams.runtime.fanout import Part

    Handler = Callable[[EventT[bytes]], Awaitable[None]]


@dataclass
class Reader:
    """The one reader of a topic: the stages' parts, and the handlers not yet parts."""

    fanout: FanOut
    handlers: list[tuple[Handler, Containment]] = field(default_factory=list)

    async def after(self, events: Sequence[EventT[bytes]]) -> None:
        """Give every event to each handler in turn, each under its stage's containment."""
        for event in events:
            for handler, guard in self.handlers:
                await guard.run(event.message, handler, event)


#: Each app's readers, by topic name.
_READERS: weakref.WeakKeyDictionary[faust.App, dict[str, Reader]] = weakref.WeakKeyDictionary()


def reader_name(role: str) -> str:
    """Name the agent that reads the topic of ``role`` (``surveys`` …) for every stage."""
    return f"{role}-reader"


def _reader(app: faust.App, role: str, topic_name: str, deadletter: str) -> Reader:
    """Give the topic's reader; the first stage to read the topic adds its agent."""
    readers = _READERS.setdefault(app, {})
    reader = readers.get(topic_name)
    if reader is None:
        fanout = FanOut(reader_name(role))
        fanout.topics[DEADLETTER] = deadletter
        reader = readers[topic_name] = Reader(fanout)
        topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
        run_stage(app, fanout, topic, topics=fanout.topics, after=reader.after)
    return reader


def forward(
    app: faust.App,
    role: str,
    topic_name: str,
    part: Part,
    *,
    topics: Mapping[str, str],
    deadletter: str,
) -> None:
    """Have ``part`` see every record of ``topic_name``, on the topic's one reader.

    ``role`` names the reader (``<role>-reader``), so it must be the same
    for every stage reading the topic; ``topics`` maps the part's output
    roles to topic names.
    """
    _reader(app, role, topic_name, deadletter).fanout.add(part, topics)


def read(
    app: faust.App,
    role: str,
    topic_name: str,
    handler: Handler,
    guard: Containment,
) -> None:
    """Have ``handler`` called with every record of ``topic_name`` (a stage not yet a part)."""
    _reader(app, role, topic_name, guard.deadletter_topic).handlers.append((handler, guard))
