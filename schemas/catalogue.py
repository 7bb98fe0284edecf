"""The touchpoint catalogue every stage and page reads, and the one live holder of it.

The catalogue is ``[defaults]``, ``[touchpoints.<id>]`` and ``[alerts]
csat_targets``: how each touchpoint is surveyed, in which words, and the
targets its scores are judged against. It changes while the processes run
(``palaute.catalogue.v1``, see :mod:`connectors.catalogue`), so nothing reads
it from a copy taken at start-up: every reader asks the process's
:class:`LiveCatalogue` (``settings.catalogue``) at the moment it needs an
answer, and a new version replaces the whole catalogue at once, so a reader
never sees half of a change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from schemas.config import TouchpointConfig


log = logging.getLogger(__name__)


def _frozen_map() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One version of the catalogue, resolved: each touchpoint with ``[defaults]`` filled in.

    ``version`` 0 is the file's catalogue, before any version was read from
    the catalogue topic.
    """

    defaults: TouchpointConfig
    touchpoints: Mapping[str, TouchpointConfig]
    csat_targets: Mapping[str, float] = field(default_factory=_frozen_map)
    version: int = 0

    def touchpoint(self, touchpoint_id: str) -> tuple[TouchpointConfig, bool]:
        """Look up a touchpoint's configuration, and tell whether it is in the catalogue.

        An unknown touchpoint gets ``[defaults]`` and ``False``: the caller counts
        and reports it instead of dropping the contact.
        """
        known = self.touchpoints.get(touchpoint_id)
        if known is not None:
            return known, True
        return self.defaults, False


class LiveCatalogue:
    """The catalogue this process runs on now; replaced whole by each new version.

    Replacing is one reference assignment, so a reader on another thread
    sees either the old version or the new one. Listeners (a gauge of the
    KPI targets, a cache of derived settings) are called after each
    replacement; a listener that fails does not stop the others or the change.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self._current = catalogue
        self._listeners: list[Callable[[Catalogue], None]] = []

    @property
    def current(self) -> Catalogue:
        """The version in force."""
        return self._current

    @property
    def version(self) -> int:
        """The version in force (0: the configuration file's, none read yet)."""
        return self._current.version

    @property
    def defaults(self) -> TouchpointConfig:
        """``[defaults]`` of the version in force."""
        return self._current.defaults

    @property
    def touchpoints(self) -> Mapping[str, TouchpointConfig]:
        """The touchpoints of the version in force, with ``[defaults]`` filled in."""
        return self._current.touchpoints

    @property
    def csat_targets(self) -> Mapping[str, float]:
        """The CSAT targets of the version in force, per touchpoint."""
        return self._current.csat_targets

    def touchpoint(self, touchpoint_id: str) -> tuple[TouchpointConfig, bool]:
        """Look a touchpoint up in the version in force (see :meth:`Catalogue.touchpoint`)."""
        return self._current.touchpoint(touchpoint_id)

    def replace(self, catalogue: Catalogue) -> None:
        """Put a new version in force and tell the listeners."""
        self._current = catalogue
        for listener in list(self._listeners):
            try:
                listener(catalogue)
            except Exception:
                log.exception("a catalogue listener failed: %r", listener)

    def subscribe(self, listener: Callable[[Catalogue], None]) -> None:
        """Call ``listener`` with every later version (and not with the current one)."""
        self._listeners.append(listener)
