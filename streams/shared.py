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
(:func:`forward`): the reader is a :class:`~streams.runtime.fanout.FanOut`
on the stream runtime, so what the parts forward is produced and
acknowledged before the offset is committed, and a part that fails sets
the record aside under its own stage's label.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.fanout import FanOut
from streams.runtime.faust_agent import run_stage

if TYPE_CHECKING:
    from collections.abc import Mapping

    import faust

    from streams.runtime.fanout import Part


#: Each app's readers, by topic name.
_READERS: weakref.WeakKeyDictionary[faust.App, dict[str, FanOut]] = weakref.WeakKeyDictionary()


def reader_name(role: str) -> str:
    """Name the agent that reads the topic of ``role`` (``surveys`` …) for every stage."""
    return f"{role}-reader"


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
    roles to topic names. The first stage to read a topic adds its agent.
    """
    readers = _READERS.setdefault(app, {})
    reader = readers.get(topic_name)
    if reader is None:
        reader = readers[topic_name] = FanOut(reader_name(role))
        reader.topics[DEADLETTER] = deadletter
        topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
        run_stage(app, reader, topic, topics=reader.topics)
    reader.add(part, topics)
