"""The catalogue's operations as plain functions: list, get, create, edit, retire, roll back.

The HTTP routes (:mod:`connectors.web.catalogue_routes`) and the admin page
(:mod:`connectors.web.admin`) call these, each naming who acts (``by``):
whoever authenticated the request says who that is, a signed-in person as
an :class:`~schemas.accounts.Actor` (name and subject both recorded). Every change is validated as
``palaute config check`` validates the file, against the catalogue as this
process runs it, before anything is written; a change that does not
validate is refused with 422 and every problem at its TOML path. A change
that was written is read back before the answer, so the answer says the
version it made, and this process already runs on it; one based on a
version no longer current is refused with 409.

A change that validates but whose SMS would take more than one segment, go
out in UCS-2 or leave out the organisation or the service (the counts of
``palaute config check``, :mod:`connectors.sms_budget`) is saved, and the
answer's ``warnings`` say so, one line each, as config check and
``palaute catalogue import`` warn: a longer SMS costs more but still reaches
the citizen, and an admin may have a reason to accept it.

Every function raises :class:`~connectors.web.errors.ApiError` for a request
it refuses, and returns a JSON-ready dict otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.catalogue import CatalogueUnavailableError, now
from connectors.sms_budget import catalogue_sms_over_budget
from connectors.web.errors import ApiError
from engine.catalogue import Applied, HistoryEntry
from schemas.accounts import Actor
from schemas.catalogue_document import raw_document, validate_document, written
from schemas.catalogue_records import CatalogueAction, CatalogueChanged, TouchpointEntry
from schemas.config import ConfigError
from schemas.decoding import FieldError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from connectors.catalogue import CatalogueFollower, ChangeProducer
    from engine.catalogue import CatalogueLog
    from schemas.config import PolicyConfig, Settings

#: The longest comment a change may carry.
_COMMENT_LENGTH = 500


@dataclass(frozen=True, slots=True)
class CatalogueService:
    """What the operations need: the process's follower, a producer and the quiet hours.

    With ``settings`` (the links and the organisation the SMS are counted
    with), a change's answer warns of SMS over one segment.
    """

    follower: CatalogueFollower
    producer: ChangeProducer
    policy: PolicyConfig
    settings: Settings | None = None

    @property
    def log(self) -> CatalogueLog:
        """The catalogue as this process has read it."""
        return self.follower.log


def list_touchpoints(service: CatalogueService) -> dict[str, Any]:
    """List every touchpoint the catalogue has had, in force or retired, by id."""
    log = service.log
    catalogue = service.follower.live.current
    rows = []
    for key in sorted(log.touchpoint_versions.keys() | log.touchpoints.keys()):
        entry = log.touchpoints.get(key)
        resolved = catalogue.touchpoints.get(key)
        rows.append(
            {
                "id": key,
                "version": log.touchpoint_versions.get(key, 0),
                "retired": entry is None,
                "name": None if resolved is None else resolved.name,
                "kpi_target": None if resolved is None else resolved.kpi_target,
                "csat_target": None if entry is None else entry.csat_target,
            }
        )
    return {"version": log.version, "touchpoints": rows}


def get_touchpoint(service: CatalogueService, touchpoint_id: str) -> dict[str, Any]:
    """Give one touchpoint: as written, as in force (with ``[defaults]``), its version."""
    log = service.log
    if touchpoint_id not in log.touchpoint_versions:
        raise ApiError(404, "unknown_touchpoint", "the catalogue has never had this touchpoint")
    entry = log.touchpoints.get(touchpoint_id)
    resolved = service.follower.live.current.touchpoints.get(touchpoint_id)
    return {
        "id": touchpoint_id,
        "version": log.touchpoint_versions[touchpoint_id],
        "catalogue_version": log.version,
        "retired": entry is None,
        "touchpoint": None if entry is None else entry.entry,
        "csat_target": None if entry is None else entry.csat_target,
        "effective": None if resolved is None else resolved.model_dump(mode="json"),
    }


async def create_touchpoint(
    service: CatalogueService, body: Mapping[str, Any], *, by: str | Actor
) -> dict[str, Any]:
    """Add a touchpoint: ``{"id", "touchpoint": {...}, "csat_target"?, "comment"?}``."""
    touchpoint_id = body.get("id")
    if not isinstance(touchpoint_id, str):
        raise _bad_request("id", "the touchpoint's id is required (a string)")
    fields = _mapping(body, "touchpoint", required=True)
    if touchpoint_id in service.log.touchpoints:
        raise ApiError(409, "touchpoint_exists", "the catalogue has this touchpoint already")
    entry = _validated(service, touchpoint_id, fields, _csat(body, None))
    change = _change(service, CatalogueAction.CREATE, touchpoint_id, entry, body, by=by)
    return await _write(service, change, touchpoint_id)


async def edit_touchpoint(
    service: CatalogueService, touchpoint_id: str, body: Mapping[str, Any], *, by: str | Actor
) -> dict[str, Any]:
    """Change some fields: ``{"touchpoint": {field: value, or null to remove}, ...}``.

    Fields not named keep their value; a field set to null is removed from
    the entry, which then takes it from ``[defaults]``. ``csat_target``, when
    present, replaces the CSAT target (null removes it).
    """
    current = _in_force(service, touchpoint_id)
    changes = _mapping(body, "touchpoint", required=False)
    fields = {**current.entry, **changes}
    fields = {key: value for key, value in fields.items() if value is not None}
    entry = _validated(service, touchpoint_id, fields, _csat(body, current.csat_target))
    change = _change(service, CatalogueAction.EDIT, touchpoint_id, entry, body, by=by)
    return await _write(service, change, touchpoint_id)


async def retire_touchpoint(
    service: CatalogueService, touchpoint_id: str, body: Mapping[str, Any], *, by: str | Actor
) -> dict[str, Any]:
    """Take a touchpoint out of the catalogue; its history stays, and a roll back revives it.

    Contacts for it are then surveyed with ``[defaults]`` and reported, as
    for any touchpoint missing from the catalogue; to stop surveying one,
    edit it to ``sensitive = true`` instead.
    """
    _in_force(service, touchpoint_id)
    change = _change(service, CatalogueAction.RETIRE, touchpoint_id, None, body, by=by)
    return await _write(service, change, touchpoint_id)


def touchpoint_history(service: CatalogueService, touchpoint_id: str) -> dict[str, Any]:
    """Give every change of a touchpoint, oldest first: version, who, when, what changed."""
    history = service.log.history.get(touchpoint_id)
    if history is None:
        raise ApiError(404, "unknown_touchpoint", "the catalogue has never had this touchpoint")
    return {"id": touchpoint_id, "history": [_history_row(entry) for entry in history]}


async def roll_back(
    service: CatalogueService, touchpoint_id: str, body: Mapping[str, Any], *, by: str | Actor
) -> dict[str, Any]:
    """Make a touchpoint again what it was at ``{"version": n}`` (retired then: retire it)."""
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad_request("version", "the version to roll back to is required (a number)")
    then = service.log.state_at(touchpoint_id, version)
    if then is None:
        raise ApiError(404, "unknown_version", "the touchpoint had no version then")
    entry = then.after
    if entry is not None:
        entry = _validated(service, touchpoint_id, entry.entry, entry.csat_target)
    change = _change(service, CatalogueAction.ROLLBACK, touchpoint_id, entry, body, by=by)
    return await _write(service, change, touchpoint_id)


def _history_row(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "at": entry.at.isoformat(),
        "by": entry.by,
        "by_subject": entry.by_subject,
        "action": entry.action.value,
        "comment": entry.comment,
        "changes": [
            {"field": change.name, "before": change.before, "after": change.after}
            for change in entry.changes
        ],
    }


def _in_force(service: CatalogueService, touchpoint_id: str) -> TouchpointEntry:
    current = service.log.touchpoints.get(touchpoint_id)
    if current is None:
        raise ApiError(404, "unknown_touchpoint", "no touchpoint of this id is in the catalogue")
    return current


def _bad_request(path: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", message, errors=(FieldError(path, "invalid", message),))


def _mapping(body: Mapping[str, Any], name: str, *, required: bool) -> dict[str, Any]:
    value = body.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _bad_request(name, f"{name} must be an object of the touchpoint's fields")
    return value


def _csat(body: Mapping[str, Any], current: float | None) -> float | None:
    if "csat_target" not in body:
        return current
    value = body["csat_target"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _bad_request("csat_target", "csat_target must be a number from 0 to 1, or null")
    return None if value is None else float(value)


def _validated(
    service: CatalogueService,
    touchpoint_id: str,
    fields: Mapping[str, Any],
    csat_target: float | None,
) -> TouchpointEntry:
    """Check the catalogue the change would make, with the models of ``palaute config check``."""
    log = service.log
    entries = log.entries() | {touchpoint_id: dict(fields)}
    targets = log.csat_targets()
    targets.pop(touchpoint_id, None)
    if csat_target is not None:
        targets[touchpoint_id] = csat_target
    try:
        document = validate_document(
            raw_document(log.defaults, entries, targets), service.policy, source="the change"
        )
    except ConfigError as error:
        problems = tuple(
            FieldError(problem.path or "touchpoint", "invalid", problem.message)
            for problem in error.problems
        )
        summary = "; ".join(str(problem) for problem in error.problems)
        raise ApiError(422, "invalid_catalogue", summary, errors=problems) from None
    entry = written(document.touchpoints[touchpoint_id], keys=fields.keys())
    return TouchpointEntry(entry=entry, csat_target=document.alerts.csat_targets.get(touchpoint_id))


def _change(
    service: CatalogueService,
    action: CatalogueAction,
    touchpoint_id: str,
    entry: TouchpointEntry | None,
    body: Mapping[str, Any],
    *,
    by: str | Actor,
) -> CatalogueChanged:
    current = service.log.touchpoint_versions.get(touchpoint_id, 0)
    expected = body.get("expected_version", current)
    if not isinstance(expected, int) or isinstance(expected, bool):
        raise _bad_request("expected_version", "expected_version must be a number")
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > _COMMENT_LENGTH:
        raise _bad_request(
            "comment", f"comment must be text of at most {_COMMENT_LENGTH} characters"
        )
    return CatalogueChanged(
        change_id=uuid.uuid4().hex,
        at=now(),
        by=by.name if isinstance(by, Actor) else by,
        by_subject=by.subject if isinstance(by, Actor) else None,
        action=action,
        base_version=expected,
        touchpoints={touchpoint_id: entry},
        comment=comment,
    )


async def _write(
    service: CatalogueService, change: CatalogueChanged, touchpoint_id: str
) -> dict[str, Any]:
    try:
        outcome = await service.follower.write(service.producer, change)
    except CatalogueUnavailableError as error:
        raise ApiError(
            503, "catalogue_unavailable", str(error), headers={"Retry-After": "5"}
        ) from None
    if not isinstance(outcome, Applied):
        raise ApiError(409, "conflict", outcome.reason)
    return get_touchpoint(service, touchpoint_id) | {
        "warnings": sms_warnings(service, touchpoint_id)
    }


def sms_warnings(service: CatalogueService, touchpoint_id: str) -> list[str]:
    """Say which of the touchpoint's SMS, as now in force, would not fit one GSM-7 segment."""
    touchpoint = service.follower.live.current.touchpoints.get(touchpoint_id)
    if service.settings is None or touchpoint is None:
        return []
    defaults = service.follower.live.current.defaults
    where = f"touchpoints.{touchpoint_id}:"
    found = catalogue_sms_over_budget(service.settings, defaults, {touchpoint_id: touchpoint})
    return [line for line in found if line.startswith(where)]
