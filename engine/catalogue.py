"""The catalogue topic read in order: which changes hold, the catalogue they make, the history.

Every process folds the same records in the same order with the same rules,
so every process refuses the same changes and runs the same version. A
change is refused when it was based on a version that is no longer current
(two people editing one touchpoint at once: the later write loses, and is
told so), when it makes no sense where it lands (creating a touchpoint that
exists, editing a retired one, seeding a catalogue that has versions), or
when the catalogue it would make does not validate. A refused change leaves
the catalogue as it was; it is kept as refused, so that its author can be
told why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from schemas.catalogue_document import resolve
from schemas.catalogue_records import CatalogueAction, CatalogueChanged, TouchpointEntry

if TYPE_CHECKING:
    from datetime import datetime

    from schemas.catalogue import Catalogue
    from schemas.catalogue_document import Written


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a touchpoint before and after a change (None: not set)."""

    name: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of one touchpoint: who, when, what, and the touchpoint after it."""

    version: int
    at: datetime
    by: str
    by_subject: str | None
    action: CatalogueAction
    comment: str
    changes: tuple[FieldChange, ...]
    after: TouchpointEntry | None  # None: retired


@dataclass(frozen=True, slots=True)
class Applied:
    """The change holds: it made ``version``."""

    version: int


@dataclass(frozen=True, slots=True)
class Refused:
    """The change does not hold, and why (said to its author)."""

    version: int
    reason: str


Outcome = Applied | Refused


def field_changes(
    before: TouchpointEntry | None, after: TouchpointEntry | None
) -> tuple[FieldChange, ...]:
    """Say which fields a change set, changed or removed, and whether it retired or revived."""

    def fields(entry: TouchpointEntry | None) -> dict[str, Any]:
        if entry is None:
            return {}
        own = dict(entry.entry)
        if entry.csat_target is not None:
            own["csat_target"] = entry.csat_target
        return own

    old, new = fields(before), fields(after)
    changes = [
        FieldChange(name, old.get(name), new.get(name))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]
    if (before is None) != (after is None):
        changes.append(FieldChange("retired", after is not None, after is None))
    return tuple(changes)


@dataclass
class CatalogueLog:
    """The catalogue as the topic's changes so far make it, with each touchpoint's history."""

    #: The version in force: that of the last change that held (0: none yet).
    version: int = 0
    defaults: Written = field(default_factory=dict)
    touchpoints: dict[str, TouchpointEntry] = field(default_factory=dict)
    #: Each touchpoint's version (the last change that touched it), retired ones too.
    touchpoint_versions: dict[str, int] = field(default_factory=dict)
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    catalogue: Catalogue | None = None

    def csat_targets(self) -> dict[str, float]:
        """Give the CSAT targets of the touchpoints in force."""
        return {
            key: entry.csat_target
            for key, entry in self.touchpoints.items()
            if entry.csat_target is not None
        }

    def entries(self) -> dict[str, Written]:
        """Give each touchpoint in force as written."""
        return {key: dict(entry.entry) for key, entry in self.touchpoints.items()}

    def apply(self, change: CatalogueChanged, version: int) -> Outcome:
        """Fold one change, read as ``version``, into the catalogue; say whether it held."""
        problem = self._conflict(change)
        if problem is not None:
            return self._refuse(change, version, problem)
        touchpoints = dict(self.touchpoints)
        named: dict[str, TouchpointEntry | None] = dict(change.touchpoints)
        if change.replace_all:
            named = dict.fromkeys(touchpoints) | named
        for key, entry in named.items():
            if entry is None:
                touchpoints.pop(key, None)
            else:
                touchpoints[key] = entry
        defaults = self.defaults if change.defaults is None else dict(change.defaults)
        catalogue = resolve(
            defaults,
            {key: entry.entry for key, entry in touchpoints.items()},
            {k: e.csat_target for k, e in touchpoints.items() if e.csat_target is not None},
            version,
        )
        if isinstance(catalogue, str):
            return self._refuse(change, version, catalogue)
        for key, entry in named.items():
            before = self.touchpoints.get(key)
            changes = field_changes(before, entry)
            if key not in self.history:  # a new touchpoint was never retired
                changes = tuple(change for change in changes if change.name != "retired")
            if not changes and change.action is not CatalogueAction.ROLLBACK:
                continue
            self.touchpoint_versions[key] = version
            self.history.setdefault(key, []).append(
                HistoryEntry(
                    version=version,
                    at=change.at,
                    by=change.by,
                    by_subject=change.by_subject,
                    action=change.action,
                    comment=change.comment,
                    changes=changes,
                    after=entry,
                )
            )
        self.touchpoints = touchpoints
        self.defaults = defaults
        self.version = version
        self.catalogue = catalogue
        outcome = Applied(version)
        self.outcomes[change.change_id] = outcome
        return outcome

    def state_at(self, touchpoint_id: str, version: int) -> HistoryEntry | None:
        """Give the change that made a touchpoint what it was at ``version`` (None: not yet)."""
        found: HistoryEntry | None = None
        for entry in self.history.get(touchpoint_id, []):
            if entry.version > version:
                break
            found = entry
        return found

    def _conflict(self, change: CatalogueChanged) -> str | None:
        action = change.action
        if action is CatalogueAction.SEED:
            return None if self.version == 0 else "the catalogue has versions already"
        if action is CatalogueAction.IMPORT:
            if change.base_version != self.version:
                return (
                    f"the catalogue changed (version {self.version}) after version "
                    f"{change.base_version}, which the import was compared with"
                )
            return None
        if len(change.touchpoints) != 1 or change.replace_all:
            return f"a {action.value} changes exactly one touchpoint"
        return self._touchpoint_conflict(change)

    def _touchpoint_conflict(self, change: CatalogueChanged) -> str | None:
        action = change.action
        ((key, entry),) = change.touchpoints.items()
        current = self.touchpoint_versions.get(key, 0)
        if change.base_version != current:
            return (
                f"touchpoint {key} changed (version {current}) after version "
                f"{change.base_version}, which this change was based on"
            )
        exists = key in self.touchpoints
        problem = None
        if action is CatalogueAction.CREATE and exists:
            problem = f"touchpoint {key} exists already"
        elif action in {CatalogueAction.EDIT, CatalogueAction.RETIRE} and not exists:
            problem = f"touchpoint {key} is not in the catalogue"
        elif action is CatalogueAction.RETIRE and entry is not None:
            problem = "a retire names no new entry"
        elif action in {CatalogueAction.CREATE, CatalogueAction.EDIT} and entry is None:
            problem = f"a {action.value} needs the touchpoint's entry"
        return problem

    def _refuse(self, change: CatalogueChanged, version: int, reason: str) -> Refused:
        outcome = Refused(version, reason)
        self.outcomes[change.change_id] = outcome
        return outcome
