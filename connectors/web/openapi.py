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
            "that cannot speak Kafka, and the service's health and metrics.",
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
            "schemas": {"Error": _ERROR, **_contact_schemas()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
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
