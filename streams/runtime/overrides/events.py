"""Which event faust's tables take as current, for the writes of a batch."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from faust.streams import _current_event

if TYPE_CHECKING:
    from faust.types import EventT


def at_event(event: EventT[bytes]) -> None:
    """Make ``event`` the one faust's tables see as current, for a write of a batch.

    A table write goes to the changelog partition, and the local store's
    partition, of the event being processed, which faust looks up in a
    context variable; within a batch from ``take_events`` it holds whatever
    event the agent's task saw last. Only the context variable is set, in
    the agent's own task: the Stream's ``current_event`` attribute is what
    ``take_events`` reads, in another task, to pair each buffered value
    with its event, and setting that one too (as ``Stream._set_current_event``
    does) makes the buffer take a wrong event, whose record is then lost.
    """
    _current_event.set(weakref.ref(event))
