"""The catalogue as a document: validated as ``palaute config check`` does, written as TOML.

A catalogue document has the configuration file's own shape and paths
(``[defaults]``, ``[touchpoints.<id>]``, ``[alerts] csat_targets``), so a
catalogue exported from the topic can be pasted into a configuration file,
and every problem is named by the same TOML path and in the same words as
``palaute config check`` names it: the entries are the same
:class:`~schemas.config.TouchpointConfig`, filled from ``[defaults]`` by the
same rule, and the send windows checked against the same quiet hours.

An entry is kept *as written*: only the fields its author set, so that a
touchpoint that leaves a field out follows ``[defaults]`` when that changes,
exactly as in the file. :func:`written` gives those fields as plain values
(durations in the short form ``15m``, times as ``HH:MM:SS``) in the models'
order, which makes export deterministic: importing an exported file and
exporting again gives back the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time, timedelta
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import tomli_w
from pydantic import AnyUrl, BaseModel, Field, ValidationError, model_validator

from schemas.base import Identifier
from schemas.catalogue import Catalogue
from schemas.config import (
    NOT_INHERITED,
    ConfigError,
    ConfigProblem,
    CsatTargets,
    Section,
    TouchpointConfig,
    check_send_windows,
    config_problems,
    inherit_defaults,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from schemas.config import PolicyConfig, Settings

#: The first lines of every exported catalogue file.
EXPORT_HEADER = (
    "# The touchpoint catalogue, as `palaute catalogue export` writes it.\n"
    "# `palaute catalogue import --dry-run FILE` shows what importing a file would change.\n"
    "\n"
)

#: An entry as written: field name to plain value (JSON-ready).
Written = dict[str, Any]


class CatalogueTargets(Section):
    """The catalogue's part of ``[alerts]``: the CSAT targets per touchpoint."""

    csat_targets: CsatTargets = Field(default_factory=dict)


class CatalogueDocument(Section):
    """A whole catalogue: ``[defaults]``, the touchpoints and their CSAT targets."""

    defaults: TouchpointConfig = Field(default_factory=TouchpointConfig)
    touchpoints: dict[Identifier, TouchpointConfig] = Field(default_factory=dict)
    alerts: CatalogueTargets = Field(default_factory=CatalogueTargets)

    @model_validator(mode="before")
    @classmethod
    def _touchpoints_inherit_defaults(cls, data: Any) -> Any:
        return inherit_defaults(data)


def validate_document(
    raw: Mapping[str, Any], policy: PolicyConfig, *, source: str = "the catalogue"
) -> CatalogueDocument:
    """Validate a catalogue document, or raise :class:`ConfigError` naming every problem."""
    try:
        document = CatalogueDocument.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(source, config_problems(error)) from None
    try:
        check_send_windows(document.defaults, document.touchpoints, policy)
    except ValueError as error:
        raise ConfigError(source, [ConfigProblem("", str(error))]) from None
    return document


def written(model: BaseModel, keys: Iterable[str] | None = None, *, toml: bool = False) -> Written:
    """Give the fields of ``model`` as written (those set, or ``keys``) as plain values.

    In the model's field order, whatever order they were written in. With
    ``toml``, times stay times (TOML has a type for them); otherwise they are
    ``HH:MM:SS`` strings, which read back as the same time.
    """
    chosen = set(model.model_fields_set if keys is None else keys)
    return {
        name: _plain(getattr(model, name), toml=toml)
        for name in type(model).model_fields
        if name in chosen
    }


_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def duration_text(value: timedelta) -> str:
    """Write a duration in the short form operators write ("15m", "3d"), else ISO 8601."""
    seconds = value.total_seconds()
    if seconds != int(seconds):
        return f"PT{seconds}S"
    whole = int(seconds)
    if whole == 0:
        return "0s"
    unit, size = next((unit, size) for unit, size in _UNITS if whole % size == 0)
    return f"{whole // size}{unit}"


def _plain(value: Any, *, toml: bool) -> Any:  # noqa: PLR0911 - one line per kind of value
    if isinstance(value, BaseModel):
        return written(value, toml=toml)
    if isinstance(value, Mapping):
        return {_plain(key, toml=toml): _plain(item, toml=toml) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, toml=toml) for item in value]
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, time):
        return value if toml else value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, AnyUrl):
        return str(value)
    return value


def entries_as_written(
    raw: Mapping[str, Any], document: CatalogueDocument
) -> tuple[Written, dict[str, Written]]:
    """Give ``[defaults]`` and each touchpoint as written in ``raw``, in their plain form."""
    raw_touchpoints = raw.get("touchpoints") or {}
    touchpoints = {
        touchpoint_id: written(entry, keys=raw_touchpoints.get(touchpoint_id, {}).keys())
        for touchpoint_id, entry in document.touchpoints.items()
    }
    return written(document.defaults), touchpoints


def seed_entries(settings: Settings) -> tuple[Written, dict[str, Written], dict[str, float]]:
    """Give the configuration's catalogue as written, for the catalogue topic's first version.

    The settings hold each entry already filled from ``[defaults]``; a field
    is taken as the entry's own when it is one never inherited, was not set
    in ``[defaults]``, or differs from it.
    """
    defaults = settings.defaults
    inherited = defaults.model_fields_set - NOT_INHERITED

    def own(entry: TouchpointConfig) -> set[str]:
        return {
            name
            for name in entry.model_fields_set
            if name not in inherited or getattr(entry, name) != getattr(defaults, name)
        }

    touchpoints = {
        touchpoint_id: written(entry, keys=own(entry))
        for touchpoint_id, entry in settings.touchpoints.items()
    }
    return written(defaults), touchpoints, dict(settings.alerts.csat_targets)


def raw_document(
    defaults: Written, touchpoints: Mapping[str, Written], csat_targets: Mapping[str, float]
) -> dict[str, Any]:
    """Put entries as written back into a document's shape, for validation or export."""
    return {
        "defaults": dict(defaults),
        "touchpoints": {key: dict(entry) for key, entry in touchpoints.items()},
        "alerts": {"csat_targets": dict(csat_targets)},
    }


def resolve(
    defaults: Written,
    touchpoints: Mapping[str, Written],
    csat_targets: Mapping[str, float],
    version: int,
) -> Catalogue | str:
    """Turn entries as written into the catalogue the stages read, or say why they do not."""
    try:
        document = CatalogueDocument.model_validate(
            raw_document(defaults, touchpoints, csat_targets)
        )
    except ValidationError as error:
        first = config_problems(error)[0]
        return f"invalid catalogue: {first}"
    return Catalogue(
        defaults=document.defaults,
        touchpoints=MappingProxyType(dict(document.touchpoints)),
        csat_targets=MappingProxyType(dict(document.alerts.csat_targets)),
        version=version,
    )


def export_toml(
    defaults: Written, touchpoints: Mapping[str, Written], csat_targets: Mapping[str, float]
) -> str:
    """Write a catalogue as TOML: defaults, the touchpoints by id, then the CSAT targets."""
    raw = raw_document(defaults, touchpoints, csat_targets)
    document = CatalogueDocument.model_validate(raw)
    out: dict[str, Any] = {}
    if defaults:
        out["defaults"] = written(document.defaults, keys=defaults.keys(), toml=True)
    if touchpoints:
        out["touchpoints"] = {
            key: written(document.touchpoints[key], keys=touchpoints[key].keys(), toml=True)
            for key in sorted(touchpoints)
        }
    if csat_targets:
        out["alerts"] = {"csat_targets": dict(sorted(csat_targets.items()))}
    return EXPORT_HEADER + tomli_w.dumps(out)
