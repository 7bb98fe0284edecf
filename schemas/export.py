"""Event contracts as JSON Schema and AsyncAPI 3.0, for integrators and their tools.

Everything here builds plain dicts and text; ``palaute schemas export`` writes
them. Three choices are worth knowing:

- Schemas are pydantic's *validation* schemas: they say what a producer must
  send and what the intake gate accepts (fields with a default may be left
  out). Today they equal the serialization schemas, but where the two part,
  validation is the side an integrator writes against.
- The AsyncAPI document is written from Palaute's point of view. It *receives*
  contact events from front-office systems; it *sends* everything it produces.
  Internal topics, which Palaute's own stages write and read back, carry both
  operations, so a consumer outside (a BI pipeline reading ratings, say) sees
  what Palaute sends and an operator sees what it reads.
- Component schemas use the default AsyncAPI Schema format (a superset of a
  JSON Schema draft-07 subset). Pydantic's output here stays within keywords
  both drafts share, its ``$defs`` become ``components.schemas`` and every
  ``$ref`` points there, so the official parser validates it as it is.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.deadletter import HEADER_PREFIX, DeadLetter
from schemas.samples import SAMPLES
from schemas.topics import ALERTS, CONTACTS, DEADLETTER, TOPICS

if TYPE_CHECKING:
    from schemas.topics import TopicSpec

M = TypeVar("M", bound=BaseModel)

#: The instant the examples are built at, fixed so that every export of one
#: version is byte-identical (a diff of the output is a diff of the contract).
SAMPLE_TIME = datetime(2026, 1, 15, 10, 0, tzinfo=timezone(timedelta(hours=2)))

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Base of each schema's ``$id``. A URN, because no server hosts these files:
#: an https address would invite tools to fetch something that is not there.
SCHEMA_ID_PREFIX = "urn:palaute:schema:"

ASYNCAPI_FILE = "asyncapi.json"
SCHEMA_FILE_SUFFIX = ".schema.json"

#: Bindings follow the Kafka bindings specification at this version.
KAFKA_BINDING_VERSION = "0.5.0"

#: Structured-mode CloudEvents over Kafka: the whole envelope is the value.
CLOUDEVENTS_JSON = "application/cloudevents+json"

#: Topics Palaute reads from, and topics it writes to. Contacts come only from
#: front-office systems; dead letters are for people and replay tools.
RECEIVES: frozenset[str] = frozenset(spec.name for spec in TOPICS if spec.name != DEADLETTER)
SENDS: frozenset[str] = frozenset(spec.name for spec in TOPICS if spec.name != CONTACTS)

_SCHEMA_REF = "#/components/schemas/{model}"


def kebab_name(model: type[BaseModel]) -> str:
    """Name a model as ``palaute events sample`` and the schema files do."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", model.__name__).lower()


def channel_id(spec: TopicSpec) -> str:
    """Name a topic's channel: ``palaute.contacts.v1`` is ``contacts``."""
    return spec.name.split(".")[1]


def _models() -> list[type[BaseModel]]:
    return [model for spec in TOPICS for model in spec.messages]


def _sample(model: type[M], now: datetime) -> M:
    sample = SAMPLES[kebab_name(model)](now)
    if not isinstance(sample, model):
        raise TypeError(f"sample {kebab_name(model)!r} builds {type(sample).__name__}")
    return sample


def _example(model: type[BaseModel], now: datetime) -> dict[str, Any]:
    example: dict[str, Any] = _sample(model, now).model_dump(mode="json", exclude_none=True)
    return example


def json_schema(model: type[BaseModel], now: datetime = SAMPLE_TIME) -> dict[str, Any]:
    """Build one model's standalone JSON Schema (draft 2020-12) with an example."""
    generated = model.model_json_schema(mode="validation")
    name = kebab_name(model)
    description = generated.pop("description", None) or model.__name__
    document: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_PREFIX}{name}",
        "title": generated.pop("title", model.__name__),
        "description": description,
    }
    document.update(generated)
    document["examples"] = [_example(model, now)]
    return document


def json_schemas(now: datetime = SAMPLE_TIME) -> dict[str, dict[str, Any]]:
    """Build every topic model's JSON Schema, keyed by its file name."""
    return {
        f"{kebab_name(model)}{SCHEMA_FILE_SUFFIX}": json_schema(model, now) for model in _models()
    }


def _component_schemas() -> dict[str, Any]:
    """Every model and every nested type, each once, referring to one another."""
    _, shared = models_json_schema(
        [(model, "validation") for model in _models()], ref_template=_SCHEMA_REF
    )
    schemas: dict[str, Any] = shared["$defs"]
    return dict(sorted(schemas.items()))


def _header_text(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Describe one dead-letter header: every value travels as UTF-8 text."""
    options = [option for option in schema.get("anyOf", ()) if option.get("type") != "null"]
    if len(options) == 1:
        # An optional field: its header is simply absent when the field is.
        text = {key: value for key, value in schema.items() if key in {"title", "description"}}
        return _header_text(name, {**options[0], **text})
    if schema.get("type") == "string":
        return schema
    if schema.get("type") == "integer":
        text = {key: value for key, value in schema.items() if key in {"title", "description"}}
        return {**text, "type": "string", "pattern": "^[0-9]+$"}
    raise ValueError(f"dead-letter field {name!r} has no text form for a header")


def _dead_letter_headers() -> dict[str, Any]:
    """Turn the DeadLetter model into the schema of the headers it is sent as."""
    schema = DeadLetter.model_json_schema(mode="validation")
    fields = {name: spec for name, spec in schema["properties"].items() if name != "type"}
    return {
        "type": "object",
        "description": f"{DeadLetter.__doc__} One header per field, named {HEADER_PREFIX}<field>.",
        "properties": {
            f"{HEADER_PREFIX}{name}": _header_text(name, spec) for name, spec in fields.items()
        },
        "required": [
            f"{HEADER_PREFIX}{name}" for name in schema.get("required", []) if name in fields
        ],
    }


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or model.__name__).strip().splitlines()[0]


def _key_binding(spec: TopicSpec) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": f"Record key: {spec.key}."},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _message(spec: TopicSpec, model: type[BaseModel], now: datetime) -> dict[str, Any]:
    name = kebab_name(model)
    message: dict[str, Any] = {
        "name": model.__name__,
        "title": model.__name__,
        "summary": _summary(model),
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMA_REF.format(model=model.__name__)},
        "bindings": _key_binding(spec),
    }
    if model is DeadLetter:
        sample = _sample(DeadLetter, now)
        message["summary"] = "A record no stage could process, kept byte for byte."
        message["description"] = (
            "The value is the original record's value, untouched: it may not be JSON, "
            "nor even UTF-8. Why it was set aside is in the palaute.dlq.* headers."
        )
        message["contentType"] = "application/octet-stream"
        message["payload"] = {
            "type": "string",
            "format": "binary",
            "description": "The original record's value, byte for byte.",
        }
        message["headers"] = _dead_letter_headers()
        message["examples"] = [
            {
                "name": name,
                "summary": "A contact event rejected for a timestamp without a time zone.",
                "headers": {key: value.decode() for key, value in sample.to_headers()},
            }
        ]
        return message
    if spec.name == CONTACTS:
        message["contentType"] = CLOUDEVENTS_JSON
        message["description"] = (
            "A CloudEvents 1.0 event in structured mode: the record value is the whole "
            "JSON envelope; the CloudEvents Kafka binding marks such a record with the "
            "content-type header application/cloudevents+json."
        )
    message["examples"] = [{"name": name, "payload": _example(model, now)}]
    return message


def _channel(spec: TopicSpec) -> dict[str, Any]:
    configs = spec.configs()
    configuration: dict[str, Any] = {
        "cleanup.policy": configs.get("cleanup.policy", "delete").split(","),
    }
    if "retention.ms" in configs:
        configuration["retention.ms"] = int(configs["retention.ms"])
    return {
        "address": spec.name,
        "description": f"{spec.description} Key: {spec.key}. Retention: {spec.retention}.",
        "messages": {
            model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}
            for model in spec.messages
        },
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "topicConfiguration": configuration,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _operation(spec: TopicSpec, action: str) -> dict[str, Any]:
    channel = channel_id(spec)
    if spec.name == CONTACTS:
        summary = "Take contact-completed events from front-office systems."
    elif spec.name == DEADLETTER:
        summary = "Set aside a record no stage could process."
    elif action == "send":
        summary = f"Write to {spec.name}."
    else:
        summary = f"Read {spec.name} back (between Palaute's own stages)."
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [
            {"$ref": f"#/channels/{channel}/messages/{model.__name__}"} for model in spec.messages
        ],
    }


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for spec in TOPICS:
        channel = channel_id(spec)
        if spec.name in RECEIVES:
            operations[f"receive-{channel}"] = _operation(spec, "receive")
        if spec.name in SENDS:
            operations[f"send-{channel}"] = _operation(spec, "send")
    return operations


def asyncapi_document(version: str, now: datetime = SAMPLE_TIME) -> dict[str, Any]:
    """Build the AsyncAPI 3.0.0 document of every topic Palaute reads or writes."""
    seen = [model.__name__ for model in _models()]
    if len(seen) != len(set(seen)):
        raise ValueError("a model is listed on two topics; its key binding would be ambiguous")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Palaute",
            "version": version,
            "description": (
                "Event-driven feedback collection: front-office systems publish "
                "contact-completed events, Palaute asks the citizen one question by SMS "
                "or email, keeps rolling scores per touchpoint and raises alerts when a "
                f"score drops. Alerts land on {ALERTS}; records that cannot be processed "
                f"land on {DEADLETTER} with their original bytes."
            ),
            "license": {"name": "EUPL-1.2"},
        },
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "A local development broker; point clients at your own.",
            }
        },
        "defaultContentType": "application/json",
        "channels": {channel_id(spec): _channel(spec) for spec in TOPICS},
        "operations": _operations(),
        "components": {
            "schemas": _component_schemas(),
            "messages": {
                model.__name__: _message(spec, model, now)
                for spec in TOPICS
                for model in spec.messages
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    """Serialise a document the same way every time, ending with a newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def export_files(version: str, now: datetime = SAMPLE_TIME) -> dict[str, str]:
    """Build every exported file's text, keyed by file name, in a stable order."""
    documents = {**json_schemas(now), ASYNCAPI_FILE: asyncapi_document(version, now)}
    return {name: render(document) for name, document in documents.items()}
