"""One batch's work and the one order in which it is committed.

Both runtimes do a batch the same way:

1. **take a batch** of records from the stage's input;
2. **handle** each record: the stage's pure handler gives an
   :class:`~streams.runtime.model.Output`. A handler that raises has its
   record set aside as a dead letter (stage, error class), and the batch goes
   on: an exception never skips a record, and since the handler is pure it
   leaves nothing half done. A record the handler rejects is set aside too;
3. :meth:`Checkpoint.commit` then, in this order and only this order:

   a. **produce** every record the batch asked for, dead letters included,
      in the order they were asked for;
   b. **await the acknowledgements** of all of them. If any was refused,
      :class:`CheckpointFailedError` is raised, no state is written and no
      offset committed: the runtime handles the batch again from the state
      as stored, and every stage is idempotent, so what did get through is
      a harmless repeat;
   c. **carry out the effects** the batch asked for (work outside Kafka,
      such as notifying an alert), if any, through the runtime's wiring; if
      that raises, the batch fails as in (b) and is done again, effects and
      all;
   d. **write the state** changes, each under the record that made it (its
      partition is the state's partition);
   e. **commit** the batch's offsets.

A crash between any two steps therefore repeats work and never loses it:
before (e) the batch is read again; before (d) it is handled again from
the old state. State written at (d) is in the changelog-backed store
before the offsets say the records are done; an effect is carried out
before the state that remembers it is written, so it happens at least
once, and more than once only when a crash comes in between.

4. Only a batch that asked for **commands** (work outside Kafka that must
   never repeat: the dispatcher's call to Twilio or the SMTP relay; an
   effect, by contrast, may) goes on, in
   :meth:`Checkpoint.carry_out`:

   f. **wait until the state is durable**: the changelog writes of (d) are
      acknowledged by the broker, so no restart can find the state as it
      was before the batch;
   g. **carry out each command**, in the order asked, with the stage's
      executor, and produce and await what it gives back: the outcome, as a
      record the stage reads and handles in turn like any other.

   Whatever the stage stored at (d) is therefore on the broker before any
   command begins, and a command is never carried out twice: a crash before
   (g) leaves it undone, a crash during or after it leaves the outcome
   record on its way or lost. A stage whose commands must not repeat (the
   dispatcher) stores its intent at (d) and, on finding an intent whose
   outcome never came back, ends it without carrying it out again
   (:mod:`streams.stages.dispatch`).

5. Before the next batch is taken, the runtime hands the stage, in a
   checkpoint of its own in this same order, the outcome records of (g)
   that went to the stage's own input (:func:`fed_back`; their copy on
   the topic is handled again later, which an idempotent stage ignores),
   and then every record whose output asked for it (``again``): a stage
   that does one command at a time knows its outcome and goes on at once,
   instead of waiting for its input to bring them back. The runtimes stop
   asking again after a time budget (:data:`AGAIN_WITHIN_S`), so a
   partition is still handed over promptly in a rebalance.

A stage that keeps parsed state in memory (:class:`~streams.runtime.model.Forgetful`)
is told to forget it whenever memory may be ahead of the store: after a
handler raised (the batch's earlier records are then handled again from the
store, so nothing of the failed record remains in memory or in a value it
handed over), and before a batch that was not acknowledged is handled
again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from streams.runtime.deadletters import HANDLER_FAILED, dead_letter_headers, handler_failed
from streams.runtime.model import Forgetful, Output, Produce, Record, Rejection, stored_value
from streams.runtime.overlay import Overlay

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

    from streams.runtime.model import Deferred, Executor, Stage, StateView

log = logging.getLogger(__name__)

#: The role of the dead-letter topic among a stage's outputs.
DEADLETTER = "deadletter"
#: How long a runtime goes on handling records again that asked for it, per batch.
AGAIN_WITHIN_S = 1.0
#: Back-off between attempts at a batch whose records were refused.
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


class CheckpointFailedError(Exception):
    """A record of the batch was not acknowledged: nothing of the batch is stored."""

    retriable = True


class CheckpointIO(Protocol):
    """What a runtime provides to carry out a checkpoint."""

    async def produce(self, record: Produce) -> Awaitable[Any] | None:
        """Hand one record to the producer; give what completes on its acknowledgement."""

    async def acknowledged(self, sent: list[Awaitable[Any]]) -> list[Any]:
        """Wait for every record sent; give each outcome (an exception when refused)."""

    def write_state(self, record: Record, key: str, value: str | None) -> None:
        """Store a state change made by ``record`` (None deletes the key)."""

    async def perform(self, effects: Sequence[Any]) -> None:
        """Carry out the batch's effects (work outside Kafka); called only when there are some."""

    async def commit(self, records: Sequence[Record]) -> None:
        """Commit the offsets of the batch's records."""


class CommandIO(CheckpointIO, Protocol):
    """What a runtime provides for a batch with commands: a wait for durable state."""

    async def durable(self) -> None:
        """Return once every state change written so far is acknowledged by its changelog."""


@dataclass
class _Input:
    """A record of the batch, the time it was handled at, and its handler's failure."""

    record: Record
    now: datetime
    failure: tuple[Rejection, str] | None = None

    def failure_or_raise(self) -> tuple[Rejection, str]:
        if self.failure is None:
            raise AssertionError("the record's handler did not fail")
        return self.failure


def forget(stage: Stage, *, moved: bool) -> None:
    """Tell a stage that keeps state in memory that the store is the truth again."""
    if isinstance(stage, Forgetful):
        stage.forget(moved=moved)


@dataclass
class Checkpoint:
    """The work of one batch, committed as one (see the module for the order)."""

    stage: Stage
    state: StateView
    records: list[Record] = field(default_factory=list)
    produced: list[Produce] = field(default_factory=list)
    writes: dict[str, tuple[Record, str | Deferred | None]] = field(default_factory=dict)
    observations: list[Any] = field(default_factory=list)
    effects: list[Any] = field(default_factory=list)
    #: Each record set aside: the record, why, the error's class, and under which label.
    rejections: list[tuple[Record, Rejection, str | None, str]] = field(default_factory=list)
    #: Each record handled, when, and how its handler failed (if it did).
    inputs: list[_Input] = field(default_factory=list)
    commands: list[Any] = field(default_factory=list)
    again: list[Record] = field(default_factory=list)
    #: The outcome records the commands' executor gave, as produced.
    outcomes: list[Produce] = field(default_factory=list)

    def handle(self, record: Record, now: datetime) -> None:
        """Handle one record; a failure or a rejection makes it a dead letter."""
        self.records.append(record)
        entry = _Input(record, now)
        self.inputs.append(entry)
        if self._try(entry):
            return
        if isinstance(self.stage, Forgetful):
            self._redo()
        else:
            self._set_aside(record, *entry.failure_or_raise(), now, self.stage.label)

    def _try(self, entry: _Input) -> bool:
        """Handle one record and take its output; False (and why, in ``entry``) if it raised."""
        record = entry.record
        try:
            output = self.stage.handle(Overlay(self.state, self.writes), record, entry.now)
        except Exception as error:  # noqa: BLE001 - containment is the point
            kind = type(error).__name__
            log.warning(
                "%s: %s while handling %s[%d]@%d; the record is dead-lettered",
                self.stage.label,
                kind,
                record.topic,
                record.partition,
                record.offset,
            )
            reason = handler_failed(self.stage.label, error)
            entry.failure = (Rejection(HANDLER_FAILED, reason), kind)
            return False
        self._take(record, output, entry.now)
        return True

    def _redo(self) -> None:
        """Handle the batch again from the store, the records that raised set aside.

        A stage that keeps state in memory may have changed it, or a value
        it handed over for an earlier record, before its handler raised: it
        forgets its memory, and the batch's earlier records are handled again
        from the store, so nothing of the failed record remains.
        """
        while True:
            forget(self.stage, moved=False)
            self.produced, self.writes, self.observations = [], {}, []
            self.effects, self.rejections = [], []
            self.commands, self.again = [], []
            for entry in self.inputs:
                if entry.failure is not None:
                    rejection, kind = entry.failure
                    self._set_aside(entry.record, rejection, kind, entry.now, self.stage.label)
                elif not self._try(entry):
                    break  # another record raised this time: start again without it
            else:
                return

    def _take(self, record: Record, output: Output, now: datetime) -> None:
        self.produced.extend(output.produce)
        for key, value in output.state.items():
            self.writes[key] = (record, value)
        self.observations.extend(output.observations)
        self.effects.extend(output.effects)
        self.commands.extend(output.commands)
        if output.again:
            self.again.append(record)
        if output.rejection is not None:
            self._set_aside(record, output.rejection, None, now, self.stage.label)
        for aside in output.set_aside:
            self._set_aside(record, aside.rejection, aside.error_class, now, aside.label)

    def _set_aside(
        self,
        record: Record,
        rejection: Rejection,
        error_class: str | None,
        now: datetime,
        label: str,
    ) -> None:
        headers = dead_letter_headers(
            record,
            label,
            reason_code=rejection.code,
            reason=rejection.reason,
            now=now,
            error_class=error_class,
        )
        self.produced.append(Produce(DEADLETTER, record.key, record.value, None, tuple(headers)))
        self.rejections.append((record, rejection, error_class, label))

    async def commit(self, io: CheckpointIO) -> None:
        """Produce, await the acknowledgements, carry out the effects, write the state, commit."""
        sent = [ack for record in self.produced if (ack := await io.produce(record)) is not None]
        outcomes = await io.acknowledged(sent)
        refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if refused:
            raise CheckpointFailedError(type(refused[0]).__name__)
        if self.effects:
            try:
                await io.perform(self.effects)
            except Exception as error:
                # Not skipped: the batch is handled and its effects carried out again.
                raise CheckpointFailedError(type(error).__name__) from error
        for key, (record, value) in self.writes.items():
            io.write_state(record, key, stored_value(value))
        await io.commit(self.records)

    async def carry_out(self, io: CommandIO, execute: Executor | None) -> None:
        """Once the state is durable, carry out each command and produce its outcome records.

        An outcome record that is refused is not retried: the command is not
        repeated either, and the stage that asked for it ends the intent it
        stored when no outcome comes back.
        """
        if not self.commands:
            return
        if execute is None:
            log.error(
                "%s: %d commands and no executor; none is carried out",
                self.stage.label,
                len(self.commands),
            )
            return
        await io.durable()
        for command in self.commands:
            produced = await execute(command)
            self.outcomes.extend(produced)
            sent = [ack for record in produced if (ack := await io.produce(record)) is not None]
            outcomes = await io.acknowledged(sent)
            refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            if refused:
                log.warning(
                    "%s: the outcome of a command was not acknowledged (%s)",
                    self.stage.label,
                    type(refused[0]).__name__,
                )


def fed_back(
    checkpoint: Checkpoint, topics: Mapping[str, str], sources: Collection[str]
) -> list[Record]:
    """Give the outcome records a checkpoint produced to a partition of its own input.

    They are handed over with the offset -1: their place on the topic is
    not known here, and they are handled again when read from it.
    """
    return [
        Record(topics[p.topic], p.partition, -1, p.key, p.value, p.headers)
        for p in checkpoint.outcomes
        if p.partition is not None and topics[p.topic] in sources
    ]


async def run_batch(
    stage: Stage,
    state: StateView,
    records: Sequence[Record],
    io: CheckpointIO,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    at_record: Callable[[Record], None] = lambda _record: None,
    execute: Executor | None = None,
    transient: Callable[[BaseException], bool] = lambda _error: False,
    on_retry: Callable[[str], None] = lambda _error_class: None,
) -> Checkpoint:
    """Handle and commit one batch, again and again until its records are acknowledged.

    ``at_record`` is called before each record is handled: a store that finds
    a key in the partition of the record being processed (faust's) is told
    which record that is. The batch's commands are carried out once, after
    the commit, by ``execute`` (its IO must then be a :class:`CommandIO`).
    A commit that fails with an error ``transient`` calls the broker's, not
    the batch's, fault (a lost connection, a timeout) is tried again like a
    refused record, for as long as it takes; ``on_retry`` is told the
    error's class each time, for the retry counter.
    """
    delay = RETRY_FIRST_S
    while True:
        checkpoint = Checkpoint(stage, state)
        for record in records:
            at_record(record)
            checkpoint.handle(record, clock())
        try:
            await checkpoint.commit(io)
        except Exception as error:
            if not isinstance(error, CheckpointFailedError) and not transient(error):
                raise
            forget(stage, moved=False)
            kind = str(error) if isinstance(error, CheckpointFailedError) else type(error).__name__
            on_retry(kind)
            log.warning(
                "%s: a batch of %d records was not acknowledged (%s); handling it again in %.1f s",
                stage.label,
                len(records),
                kind,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        if checkpoint.commands:
            await checkpoint.carry_out(cast("CommandIO", io), execute)
        return checkpoint
