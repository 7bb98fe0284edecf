"""What a stage sees and what it returns: records, state and outputs as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class Record:
    """One record as a stage reads it: where it came from, and its key, value and headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


@dataclass(frozen=True, slots=True)
class Produce:
    """A record a stage asks to be produced; ``topic`` is a role the runtime resolves."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    headers: tuple[Header, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is set aside: a code to count by and a reason that never quotes input."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Output:
    """What handling one record asks for; nothing happens until the batch commits."""

    produce: tuple[Produce, ...] = ()
    #: State key to its new value; None deletes the key.
    state: Mapping[str, str | None] = field(default_factory=dict)
    rejection: Rejection | None = None
    #: Facts for the runtime's telemetry (counts, decisions); never acted on.
    observations: tuple[Any, ...] = ()


NOTHING = Output()


class StateView(Protocol):
    """The state a stage reads: its own table, with the batch's earlier writes on top."""

    def get(self, key: str) -> str | None:
        """Give the stored value, or None."""


class Stage(Protocol):
    """A stage: its name, the stage label of its dead letters, and its handler."""

    name: str
    #: The label of its dead letters and counters (``intake``, ``responses`` …).
    label: str

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Handle one record. Pure: everything it wants done is in the output."""
