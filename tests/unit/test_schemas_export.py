"""The exported contracts: JSON Schemas and the AsyncAPI document integrators build on."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from palaute import __version__
from palaute.cli import main
from schemas.deadletter import DeadLetter
from schemas.export import (
    ASYNCAPI_FILE,
    CLOUDEVENTS_JSON,
    SAMPLE_TIME,
    asyncapi_document,
    channel_id,
    export_files,
    json_schemas,
    kebab_name,
)
from schemas.samples import SAMPLES
from schemas.topics import CONTACTS, DEADLETTER, TOPICS

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import BaseModel

MODELS = [model for spec in TOPICS for model in spec.messages]
SCHEMAS = json_schemas()
DOCUMENT = asyncapi_document(__version__)
CHANNELS: dict[str, Any] = DOCUMENT["channels"]
OPERATIONS: dict[str, Any] = DOCUMENT["operations"]
MESSAGES: dict[str, Any] = DOCUMENT["components"]["messages"]


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return SCHEMAS[f"{kebab_name(model)}.schema.json"]


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _component_validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """Validate against an AsyncAPI schema, resolving refs into the document's components."""
    root = {**schema, "components": DOCUMENT["components"]}
    return jsonschema.Draft7Validator(root, format_checker=jsonschema.FormatChecker())


def _by_address(address: str) -> dict[str, Any]:
    return next(channel for channel in CHANNELS.values() if channel["address"] == address)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_topic_model_has_a_schema_file_with_id_title_description_and_example(
    model: type[BaseModel],
) -> None:
    """Integrators look a type up by file name; a missing file is a missing contract."""
    schema = _schema(model)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(kebab_name(model))
    assert schema["title"] == model.__name__
    assert schema["description"]
    assert len(schema["examples"]) == 1


def test_export_writes_one_schema_per_model_and_the_asyncapi_document() -> None:
    """No stray files and none missing: the output directory is the contract."""
    expected = {f"{kebab_name(model)}.schema.json" for model in MODELS} | {ASYNCAPI_FILE}
    assert set(export_files(__version__)) == expected


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_schema_is_valid_draft_2020_12(model: type[BaseModel]) -> None:
    """A schema that is not itself valid JSON Schema breaks every integrator's validator."""
    jsonschema.Draft202012Validator.check_schema(_schema(model))


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_sample_validates_against_its_exported_schema(model: type[BaseModel]) -> None:
    """A producer copying our example must pass its own validation of our schema."""
    sample = SAMPLES[kebab_name(model)](SAMPLE_TIME)
    _validator(_schema(model)).validate(sample.model_dump(mode="json"))
    _validator(_schema(model)).validate(sample.model_dump(mode="json", exclude_none=True))


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_schema_rejects_an_unknown_field(model: type[BaseModel]) -> None:
    """Models forbid extra fields; the schema must say so, or producers learn it in production."""
    example = dict(_schema(model)["examples"][0])
    example["unexpected_field"] = 1
    assert not _validator(_schema(model)).is_valid(example)


def test_schema_resolves_nested_definitions() -> None:
    """A bad value deep in the envelope must be caught through the $defs references."""
    schema = _schema(next(model for model in MODELS if model.__name__ == "ContactCompleted"))
    event = copy.deepcopy(schema["examples"][0])
    event["data"]["citizen"]["language"] = "xx"
    errors = list(_validator(schema).iter_errors(event))
    assert [list(error.absolute_path) for error in errors] == [["data", "citizen", "language"]]


def test_asyncapi_lists_every_topic_exactly_once() -> None:
    """A topic missing from the document is invisible to integrators; a duplicate confuses them."""
    addresses = [channel["address"] for channel in CHANNELS.values()]
    assert sorted(addresses) == sorted(spec.name for spec in TOPICS)
    assert len(addresses) == len(set(addresses))


@pytest.mark.parametrize("spec", TOPICS, ids=lambda spec: spec.name)
def test_channel_carries_the_topics_messages_key_and_cleanup_policy(spec: Any) -> None:
    """The document must say what a topic holds and how it is keyed, as the topic table does."""
    channel = CHANNELS[channel_id(spec)]
    assert channel["address"] == spec.name
    assert list(channel["messages"]) == [model.__name__ for model in spec.messages]
    policy = channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"]
    assert ("compact" in policy) == spec.compacted
    assert policy == spec.configs().get("cleanup.policy", "delete").split(",")
    retention = channel["bindings"]["kafka"]["topicConfiguration"].get("retention.ms")
    assert retention == (
        int(spec.configs()["retention.ms"]) if "retention.ms" in spec.configs() else None
    )
    for model in spec.messages:
        key = MESSAGES[model.__name__]["bindings"]["kafka"]["key"]
        assert key["type"] == "string"
        assert spec.key in key["description"]


def test_palaute_receives_contacts_and_only_sends_dead_letters() -> None:
    """From Palaute's side: contacts come in from front offices, dead letters only go out."""
    actions: dict[str, set[str]] = {}
    for operation in OPERATIONS.values():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        actions.setdefault(CHANNELS[channel]["address"], set()).add(operation["action"])
    assert actions[CONTACTS] == {"receive"}
    assert actions[DEADLETTER] == {"send"}
    assert set(actions) == {spec.name for spec in TOPICS}
    assert all("send" in actions[spec.name] for spec in TOPICS if spec.name != CONTACTS)


def test_operations_name_only_messages_of_their_channel() -> None:
    """An operation pointing at another channel's message is rejected by AsyncAPI tools."""
    for operation in OPERATIONS.values():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/")


def test_info_carries_the_package_version() -> None:
    """Integrators match a document to a release by its version."""
    assert DOCUMENT["asyncapi"] == "3.0.0"
    assert DOCUMENT["info"]["title"] == "Palaute"
    assert DOCUMENT["info"]["version"] == __version__
    assert DOCUMENT["servers"]["kafka"] == {
        "host": "localhost:9092",
        "protocol": "kafka",
        "description": DOCUMENT["servers"]["kafka"]["description"],
    }


@pytest.mark.parametrize(
    "name", [name for name in MESSAGES if name != DeadLetter.__name__], ids=str
)
def test_message_example_validates_against_its_payload_schema(name: str) -> None:
    """The AsyncAPI parser does not check examples against payloads, so this test does."""
    message = MESSAGES[name]
    validator = _component_validator(message["payload"])
    for example in message["examples"]:
        validator.validate(example["payload"])


def test_message_payload_schema_rejects_a_wrong_type() -> None:
    """Proves the component check above resolves references instead of passing everything."""
    message = MESSAGES["Rating"]
    example = dict(message["examples"][0]["payload"])
    example["score"] = "four"
    assert not _component_validator(message["payload"]).is_valid(example)


def test_contact_completed_declares_structured_cloudevents() -> None:
    """Front offices send the whole CloudEvents envelope as the value; the content type says so."""
    assert MESSAGES["ContactCompleted"]["contentType"] == CLOUDEVENTS_JSON
    assert DOCUMENT["defaultContentType"] == "application/json"


def test_dead_letter_payload_is_raw_bytes_and_headers_carry_the_reason() -> None:
    """A dead letter keeps the original bytes; describing it as JSON would mislead consumers."""
    message = MESSAGES[DeadLetter.__name__]
    assert message["contentType"] == "application/octet-stream"
    assert message["payload"]["format"] == "binary"
    headers = message["examples"][0]["headers"]
    _component_validator(message["headers"]).validate(headers)
    expected = SAMPLES["dead-letter"](SAMPLE_TIME)
    assert isinstance(expected, DeadLetter)
    encoded = [(name, value.encode()) for name, value in headers.items()]
    assert DeadLetter.from_headers(encoded) == expected
    # error_class is the one optional header: the sample is a rejection, not a failure.
    assert set(message["headers"]["properties"]) == {name for name, _ in expected.to_headers()} | {
        "palaute.dlq.error_class"
    }
    assert "palaute.dlq.error_class" not in message["headers"]["required"]


def test_dead_letter_header_schema_rejects_a_non_numeric_offset() -> None:
    """Header values are text; an offset must still be a number written out in digits."""
    message = MESSAGES[DeadLetter.__name__]
    headers = dict(message["examples"][0]["headers"])
    headers["palaute.dlq.source_offset"] = "twelve"
    assert not _component_validator(message["headers"]).is_valid(headers)


def test_export_command_is_deterministic_and_writes_what_it_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A diff of two exports must be a diff of the contract, never noise."""
    first, second = tmp_path / "first" / "nested", tmp_path / "second"
    assert main(["schemas", "export", str(first)]) == 0
    printed = capsys.readouterr().out
    assert main(["schemas", "export", str(second)]) == 0
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    assert names == sorted(export_files(__version__))
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
        assert str(first / name) in printed
    assert json.loads((first / ASYNCAPI_FILE).read_text(encoding="utf-8")) == DOCUMENT


def test_export_command_reports_an_unwritable_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that is a file must give a clear error and a failing status, not a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    assert main(["schemas", "export", str(blocker)]) == 1
    assert "cannot write" in capsys.readouterr().err
