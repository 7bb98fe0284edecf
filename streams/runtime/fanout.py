"""One reader for a topic that several stages read: each stage's part sees every record.

faust hands each record of a topic to every agent that reads it, and each
hand-over costs 100-150 µs of its own work: more than the stages' own work
on most records. The surveys and responses topics are read by several
stages (the answers join, the metrics, the scheduler, the intake's opt-out
forwarder), each forwarding some of the records to an internal topic of its
own. :class:`FanOut` is one stage that hands every record to each stage's
:class:`Part` in turn, in the order they were added, and runs on the
runtime like any other stage: the records every part asks for are produced
and acknowledged before the offset is committed
(:mod:`streams.runtime.checkpoint`).

Containment stays per part: a part that raises, or rejects the record, sets
it aside as a dead letter under *its own* label (``scheduler``,
``metrics`` …), and the parts after it still see the record. Parts hold no
state, so handling a record again after a crash repeats their forwards,
which every stage downstream recognises.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from streams.runtime.deadletters import HANDLER_FAILED, handler_failed
from streams.runtime.model import Output, Rejection, SetAside

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from streams.runtime.model import Produce, Record, StateView

log = logging.getLogger(__name__)


class Part(Protocol):
    """One stage's share of a topic read by several: stateless, pure."""

    #: The label of the part's dead letters and counters (its stage's).
    label: str

    def handle(self, record: Record, now: datetime) -> Output:
        """Say what this stage makes of the record (usually: forward it, or nothing)."""


class FanOut:
    """Every part of every stage that reads one topic, as one stage."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.label = name
        self.parts: list[Part] = []
        #: The output roles of all parts, for the runtime to resolve.
        self.topics: dict[str, str] = {}

    def add(self, part: Part, topics: Mapping[str, str]) -> None:
        """Add a part, with its output roles' topics; it sees each record after earlier parts."""
        for role, topic in topics.items():
            if self.topics.get(role, topic) != topic:
                raise ValueError(
                    f"{part.label}: output role {role!r} is already {self.topics[role]!r} "
                    f"for another stage reading the same topic"
                )
            self.topics[role] = topic
        self.parts.append(part)

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Hand the record to every part; set it aside under the label of each that fails."""
        del state
        produce: list[Produce] = []
        set_aside: list[SetAside] = []
        observations: list[Any] = []
        for part in self.parts:
            try:
                output = part.handle(record, now)
            except Exception as error:  # noqa: BLE001 - containment per part is the point
                log.warning(
                    "%s: %s while handling %s[%d]@%d; the record is dead-lettered",
                    part.label,
                    type(error).__name__,
                    record.topic,
                    record.partition,
                    record.offset,
                )
                reason = Rejection(HANDLER_FAILED, handler_failed(part.label, error))
                set_aside.append(SetAside(part.label, reason, type(error).__name__))
                continue
            produce.extend(output.produce)
            observations.extend(output.observations)
            if output.rejection is not None:
                set_aside.append(SetAside(part.label, output.rejection))
            set_aside.extend(output.set_aside)
        return Output(
            produce=tuple(produce), set_aside=tuple(set_aside), observations=tuple(observations)
        )
