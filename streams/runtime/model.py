"""What a stage sees and what it returns: records, state and outputs as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
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


class Deferred(Protocol):
    """A state value serialised only when it is written, once per batch and key.

    A stage that keeps a parsed entry in memory and changes it on every
    record (the metrics stage's detector entries) hands the entry itself
    over; the checkpoint writes ``dump()`` of it once, at the state step,
    rather than the stage serialising it for every record. The stage
    promises that what the entry holds when the batch is written is what
    its last record of the batch wanted stored.
    """

    def dump(self) -> str:
        """Give the value to store."""


def stored_value(value: str | Deferred | None) -> str | None:
    """Give the string a state value stands for (a deferred one is serialised now)."""
    return value if value is None or isinstance(value, str) else value.dump()


@dataclass(frozen=True, slots=True)
class SetAside:
    """A record set aside by one part of a stage, under that part's own label.

    A topic that several stages read is read once (:mod:`streams.runtime.fanout`),
    and a record one of them cannot take is that stage's dead letter, not the
    reader's: the label says whose.
    """

    label: str
    rejection: Rejection
    #: The class of the exception that set it aside, if one did.
    error_class: str | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """What handling one record asks for; nothing happens until the batch commits."""

    produce: tuple[Produce, ...] = ()
    #: State key to its new value; None deletes the key.
    state: Mapping[str, str | Deferred | None] = field(default_factory=dict)
    rejection: Rejection | None = None
    #: Rejections under another label than the stage's (see :class:`SetAside`).
    set_aside: tuple[SetAside, ...] = ()
    #: Facts for the runtime's telemetry (counts, decisions); never acted on.
    observations: tuple[Any, ...] = ()
    #: Work outside Kafka (an alert to notify) that the runtime's wiring carries
    #: out after the batch's records are acknowledged and before its state is
    #: written: at least once, and again only if the batch is handled again.
    effects: tuple[Any, ...] = ()
    #: Work outside Kafka that must never repeat (a survey's provider call),
    #: each a value the stage's executor understands: carried out at most once,
    #: after the batch's records are acknowledged and its state is durable,
    #: and what each one's executor gives back is produced
    #: (:meth:`~streams.runtime.checkpoint.Checkpoint.carry_out`).
    commands: tuple[Any, ...] = ()
    #: Hand this record to the stage again, in a checkpoint of its own, as soon
    #: as this one is done (commands included): there is more to do than one
    #: checkpoint may do (the scheduler's one send at a time). The runtime does
    #: so within a time budget, before the next batch; past it, the stage's own
    #: input must bring it back (the scheduler's next tick).
    again: bool = False


NOTHING = Output()


class StateView(Protocol):
    """The state a stage reads: its own table, with the batch's earlier writes on top."""

    def get(self, key: str) -> str | None:
        """Give the stored value, or None."""


class ScanView(StateView, Protocol):
    """The state of a stage that keeps several tables and rebuilds a mirror of them.

    Its keys are ``<table>/<key>``; :meth:`scan` gives one table's entries,
    with the batch's earlier writes on top, keys without the table's prefix.
    """

    def scan(self, table: str) -> Iterable[tuple[str, str]]:
        """Give every stored entry of ``table`` (of the partitions this worker holds)."""


def table_key(table: str, key: str) -> str:
    """Give the state key of ``key`` in the stage's table ``table``."""
    return f"{table}/{key}"


@runtime_checkable
class Forgetful(Protocol):
    """A stage that keeps parsed state in memory, ahead of the store until a batch commits.

    The runtime calls :meth:`forget` whenever the store is the truth again
    and memory may not be: a handler raised halfway through a record, a
    batch was not acknowledged and is handled again, the worker restarted,
    or partitions moved (``moved``).
    """

    def forget(self, *, moved: bool) -> None:
        """Drop what is kept in memory; it is rebuilt from the store when next needed."""


class Stage(Protocol):
    """A stage: its name, the stage label of its dead letters, and its handler."""

    name: str
    #: The label of its dead letters and counters (``intake``, ``responses`` …).
    label: str

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Handle one record. Pure: everything it wants done is in the output."""


class Executor(Protocol):
    """Carries out a stage's command; gives the records that tell its outcome.

    Those records are produced like any other, usually back onto the stage's
    own input, so the stage folds the outcome in as it handles any record.
    An executor does not raise: a failed call is an outcome too.
    """

    async def __call__(self, command: Any) -> Sequence[Produce]:
        """Carry out one command."""
