"""The web service's OpenAPI 3.1 description, built from the same models it validates with.

Served at ``GET /openapi.json`` so that integrators generate clients from it,
and fuzzed with schemathesis in the test suite so that every response the
service gives matches it. Request schemas come from the pydantic models, so
the description cannot drift from the validation.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from connectors.web.openapi_alerts import alert_paths, alert_schemas
from connectors.web.openapi_catalogue import catalogue_paths, catalogue_schemas
from schemas.contacts import ContactCompleted

_REF = "#/components/schemas/{model}"

_ERROR = {
    "type": "object",
    "required": ["error", "message", "errors"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. invalid_event."},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "code", "message"],
                "properties": {
                    "path": {"type": "string", "examples": ["[3].time"]},
                    "code": {"type": "string", "examples": ["naive_timestamp"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _contact_schemas() -> dict[str, Any]:
    _, top = models_json_schema([(ContactCompleted, "validation")], ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    return schemas


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INTERVAL = {
    "type": ["array", "null"],
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
    "description": "95 % interval [low, high]; null when suppressed or not computable.",
}
_OPEN_SCORE = {
    "type": "object",
    "required": [
        "touchpoint_id",
        "name",
        "scale",
        "suppressed",
        "count",
        "mean",
        "mean_ci",
        "csat_share",
        "csat_ci",
    ],
    "properties": {
        "touchpoint_id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "scale": {"type": ["string", "null"]},
        "suppressed": {"type": "boolean", "description": "Fewer answers than min_answers."},
        "count": {"type": ["integer", "null"], "minimum": 0},
        "mean": _NUMBER_OR_NULL,
        "mean_ci": _INTERVAL,
        "csat_share": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "csat_ci": _INTERVAL,
    },
}
_OPEN_FEED = {
    "type": "object",
    "required": [
        "version",
        "schema",
        "publisher",
        "generated_at",
        "period_days",
        "min_answers",
        "confidence",
        "methods",
        "touchpoints",
    ],
    "properties": {
        "version": {"type": "string", "examples": ["1.0"]},
        "schema": {"type": "string"},
        "publisher": {"type": "string"},
        "generated_at": {"type": "string", "format": "date-time"},
        "period_days": {"type": "integer", "minimum": 1},
        "min_answers": {"type": "integer", "minimum": 1},
        "confidence": {"type": "number"},
        "methods": {"type": "object"},
        "touchpoints": {"type": "array", "items": {"$ref": "#/components/schemas/OpenScore"}},
    },
}


def _open_data_paths() -> dict[str, Any]:
    loading = _error("The figures are still being read from Kafka; see Retry-After.")
    public = {"description": "Public: aggregates only, small counts suppressed."}

    def route(operation: str, summary: str, media: str, schema: dict[str, Any]) -> Any:
        return {
            "get": {
                "operationId": operation,
                "summary": summary,
                "security": [],
                "parameters": [
                    {
                        "name": "lang",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "fi or en (the embed only; anything else is Finnish).",
                    }
                ]
                if media == "text/html"
                else [],
                "responses": {
                    "200": {**public, "content": {media: {"schema": schema}}},
                    "503": loading,
                },
            }
        }

    text = {"type": "string"}
    return {
        "/open/v1/scores.json": route(
            "openScoresJson",
            "Per-touchpoint scores of the last 30 days with 95 % intervals",
            "application/json",
            {"$ref": "#/components/schemas/OpenFeed"},
        ),
        "/open/v1/scores.csv": route(
            "openScoresCsv", "The same scores as CSV with a header row", "text/csv", text
        ),
        "/open/v1/embed.html": route(
            "openScoresEmbed",
            "The same scores as a self-contained page to frame",
            "text/html",
            text,
        ),
    }


def build_openapi(version: str) -> dict[str, Any]:
    """Describe every endpoint of the web service."""
    event = {"$ref": "#/components/schemas/ContactCompleted"}
    batch = {"type": "array", "items": event, "minItems": 1}
    json_error_statuses = {
        "400": _error("The body is not UTF-8 JSON, or not an event or a batch."),
        "401": _error("Missing, unknown or revoked API key."),
        "403": _error("An event's source is not one this key may send for."),
        "413": _error("The body or the batch is over its limit."),
        "415": _error("The content type is not JSON."),
        "422": _error("Events failed validation; every field at fault is named, none written."),
        "429": _error("Over the source system's rate limit; see Retry-After."),
        "503": _error("Kafka is unavailable; retry the whole request after Retry-After."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Palaute web service",
            "version": version,
            "description": "HTTP ingress of contact-completed events for front-office systems "
            "that cannot speak Kafka, the touchpoint catalogue's API, and the service's health "
            "and metrics.",
        },
        "paths": {
            "/v1/contacts": {
                "post": {
                    "operationId": "postContacts",
                    "summary": "Send one contact-completed event or a batch",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/cloudevents+json": {"schema": event},
                            "application/cloudevents-batch+json": {"schema": batch},
                            "application/json": {"schema": {"oneOf": [event, batch]}},
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Every event is on the contacts topic.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["accepted", "duplicates"],
                                        "properties": {
                                            "accepted": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                            "duplicates": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        **json_error_statuses,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: 503 when a stream agent has stalled",
                    "responses": {
                        "200": {
                            "description": "Healthy.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": {
                            "description": "An agent made no progress for too long.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics in the text exposition format",
                    "responses": {
                        "200": {
                            "description": "The metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            **_open_data_paths(),
            **catalogue_paths(),
            **alert_paths(),
            "/dashboard/api/overview": {
                "get": {
                    "operationId": "dashboardOverview",
                    "summary": "The dashboard's figures and alerts (operators only)",
                    "security": [{"bearer": []}, {"basic": []}],
                    "responses": {
                        "200": {
                            "description": "Latest figures per touchpoint and window, alerts.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["version", "touchpoints", "alerts"],
                                    }
                                }
                            },
                        },
                        "401": _error("Missing or unknown operator token."),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This description",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": _ERROR,
                "OpenFeed": _OPEN_FEED,
                "OpenScore": _OPEN_SCORE,
                **_contact_schemas(),
                **catalogue_schemas(),
                **alert_schemas(),
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
    }


def setup(app: web.Application, *, version: str) -> None:
    """Serve the description at GET /openapi.json."""
    document = build_openapi(version)

    async def serve(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", serve)
