"""The acknowledgement of an alert in the OpenAPI description (``/v1/alerts/{id}/ack``).

The body is :class:`~connectors.web.alerts.AckRequest`, the answer the
``AlertAcknowledged`` event as it is stored on the alerts topic; both
schemas come from the models themselves.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from connectors.web.alerts import AckRequest
from schemas.alerts import AlertAcknowledged

_REF = "#/components/schemas/{model}"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def alert_schemas() -> dict[str, Any]:
    """Give the request's and the event's schemas for ``components.schemas``."""
    _, top = models_json_schema(
        [(AckRequest, "validation"), (AlertAcknowledged, "serialization")], ref_template=_REF
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    return schemas


def alert_paths() -> dict[str, Any]:
    """Give the acknowledgement's path item."""
    return {
        "/v1/alerts/{alert_id}/ack": {
            "post": {
                "operationId": "acknowledgeAlert",
                "summary": "Acknowledge an alert with a comment, and assign it to someone",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "alert_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 128},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="AckRequest")}}
                    },
                },
                "responses": {
                    "202": {
                        "description": "The AlertAcknowledged event is on the alerts topic.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(model="AlertAcknowledged")}
                            }
                        },
                    },
                    "400": _error("No body, or not JSON; the message says which body is wanted."),
                    "401": _error("Missing or unknown operator token."),
                    "403": _error("The signed-in person may only view."),
                    "404": _error("No alert with this id."),
                    "413": _error("The body is too large."),
                    "422": _error("A field is missing, too long, unknown or an email address."),
                    "503": _error("The alerts are still loading, or Kafka is unavailable."),
                },
            }
        }
    }
