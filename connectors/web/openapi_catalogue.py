"""The catalogue API's part of the OpenAPI description (``/v1/catalogue``).

A touchpoint travels as its entry of the configuration file, in JSON: the
same field names as ``[touchpoints.<id>]`` (durations such as ``"15m"``,
times such as ``"12:00:00"``), validated by the same models as ``palaute
config check``; the schema of a field is therefore that of
:class:`~schemas.config.TouchpointConfig`, given here by reference.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from schemas.config import TouchpointConfig

_REF = "#/components/schemas/{model}"
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TOUCHPOINT_FIELDS = {
    "type": "object",
    "description": "Fields of [touchpoints.<id>] as in the configuration file; the rest "
    "come from [defaults]. See the TouchpointConfig schema for each field.",
    "additionalProperties": True,
}
_TOUCHPOINT = {
    "type": "object",
    "required": ["id", "version", "catalogue_version", "retired", "touchpoint", "csat_target"],
    "properties": {
        "id": {"type": "string"},
        "version": {"type": "integer", "description": "The last change of this touchpoint."},
        "catalogue_version": {"type": "integer", "description": "The version in force."},
        "retired": {"type": "boolean"},
        "touchpoint": {**_TOUCHPOINT_FIELDS, "type": ["object", "null"]},
        "csat_target": {"type": ["number", "null"]},
        "effective": {
            "oneOf": [{"$ref": "#/components/schemas/TouchpointConfig"}, {"type": "null"}],
            "description": "The touchpoint as the stages run it, with [defaults] filled in.",
        },
        "warnings": {
            "type": "array",
            "items": {"type": "string"},
            "description": "After a change: each of the touchpoint's SMS (per language, "
            "first message and reminder) that takes more than one segment, goes out in "
            "UCS-2 or leaves out the organisation or the service, as palaute config check "
            "says it. The change is saved all the same.",
        },
    },
}
_LIST = {
    "type": "object",
    "required": ["version", "touchpoints"],
    "properties": {
        "version": {"type": "integer"},
        "touchpoints": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "version", "retired"],
                "properties": {
                    "id": {"type": "string"},
                    "version": {"type": "integer"},
                    "retired": {"type": "boolean"},
                    "name": {"type": ["string", "null"]},
                    "kpi_target": {"type": ["number", "null"]},
                    "csat_target": {"type": ["number", "null"]},
                },
            },
        },
    },
}
_HISTORY = {
    "type": "object",
    "required": ["id", "history"],
    "properties": {
        "id": {"type": "string"},
        "history": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["version", "at", "by", "action", "comment", "changes"],
                "properties": {
                    "version": {"type": "integer"},
                    "at": {"type": "string", "format": "date-time"},
                    "by": {"type": "string", "description": "Who made the change."},
                    "action": {"enum": ["seed", "import", "create", "edit", "retire", "rollback"]},
                    "comment": {"type": "string"},
                    "changes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "before", "after"],
                            "properties": {"field": {"type": "string"}, "before": {}, "after": {}},
                        },
                    },
                },
            },
        },
    },
}
_CHANGE_COMMON = {
    "expected_version": {
        "type": "integer",
        "description": "The touchpoint's version the change is based on; 409 if it moved on.",
    },
    "comment": {"type": "string", "maxLength": 500},
}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def _operation(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    status: str = "200",
    body: dict[str, Any] | None = None,
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    described = {
        "400": _error("The body is not a JSON object of the documented fields."),
        "401": _error("Missing or unknown operator token."),
        "404": _error("No such touchpoint (or version)."),
        "409": _error("Based on a version no longer current, or the touchpoint exists."),
        "415": _error("The body is not application/json."),
        "422": _error(
            "The catalogue the change would make does not validate; every problem "
            "is named at its TOML path."
        ),
        "503": _error("The catalogue topic cannot be written or read back; retry."),
    }
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "security": _SECURITY,
        "responses": {status: ok, **{code: described[code] for code in ("401", *errors)}},
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


_WRITES = ("400", "404", "409", "415", "422", "503")
_TOUCHPOINT_ID = {
    "name": "touchpoint_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}


def catalogue_paths() -> dict[str, Any]:
    """Describe every route under ``/v1/catalogue``."""
    touchpoint = _json(_TOUCHPOINT, "The touchpoint after the change, in force here.")
    return {
        "/v1/catalogue/touchpoints": {
            "get": _operation(
                "listTouchpoints",
                "Every touchpoint the catalogue has had, in force or retired",
                _json(_LIST, "The touchpoints and the catalogue version in force."),
            ),
            "post": _operation(
                "createTouchpoint",
                "Add a touchpoint",
                touchpoint,
                status="201",
                body=_body(
                    {
                        "id": {"type": "string"},
                        "touchpoint": _TOUCHPOINT_FIELDS,
                        "csat_target": {"type": ["number", "null"]},
                        "comment": _CHANGE_COMMON["comment"],
                    },
                    ["id", "touchpoint"],
                ),
                errors=("400", "409", "415", "422", "503"),
            ),
        },
        "/v1/catalogue/touchpoints/{touchpoint_id}": {
            "parameters": [
                {
                    "name": "touchpoint_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "get": _operation(
                "getTouchpoint",
                "One touchpoint: as written, as in force, its version",
                _json(_TOUCHPOINT, "The touchpoint."),
                errors=("404",),
            ),
            "patch": _operation(
                "editTouchpoint",
                "Change some fields (null removes one, which then comes from [defaults])",
                touchpoint,
                body=_body(
                    {
                        "touchpoint": _TOUCHPOINT_FIELDS,
                        "csat_target": {"type": ["number", "null"]},
                        **_CHANGE_COMMON,
                    },
                    [],
                ),
                errors=_WRITES,
            ),
        },
        "/v1/catalogue/touchpoints/{touchpoint_id}/retire": {
            "parameters": [
                {
                    "name": "touchpoint_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "post": _operation(
                "retireTouchpoint",
                "Take a touchpoint out of the catalogue (its history stays)",
                touchpoint,
                body=_body(_CHANGE_COMMON, []),
                errors=_WRITES,
            ),
        },
        "/v1/catalogue/touchpoints/{touchpoint_id}/history": {
            "parameters": [
                {
                    "name": "touchpoint_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "get": _operation(
                "touchpointHistory",
                "Every change of a touchpoint: who, when, what",
                _json(_HISTORY, "The changes, oldest first."),
                errors=("404",),
            ),
        },
        "/v1/catalogue/touchpoints/{touchpoint_id}/rollback": {
            "parameters": [
                {
                    "name": "touchpoint_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "post": _operation(
                "rollBackTouchpoint",
                "Make a touchpoint again what it was at an earlier version",
                touchpoint,
                body=_body(
                    {"version": {"type": "integer", "minimum": 1}, **_CHANGE_COMMON},
                    ["version"],
                ),
                errors=_WRITES,
            ),
        },
    }


def catalogue_schemas() -> dict[str, Any]:
    """Give the schemas the catalogue paths refer to (TouchpointConfig and what it uses)."""
    _, top = models_json_schema([(TouchpointConfig, "serialization")], ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    return schemas
