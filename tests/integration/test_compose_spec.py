"""docker-compose.yml validates against the Compose Specification's JSON schema.

Docker Compose itself loads files with compose-go and checks them against the
schema that module ships (``schema/compose-spec.json``); we take the same file
from the Go module proxy at a pinned version, since no Docker engine runs here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_schemas import download_module

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_GO = "github.com/compose-spec/compose-go/v2"
COMPOSE_GO_VERSION = "v2.16.2"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema_file = download_module(COMPOSE_GO, COMPOSE_GO_VERSION) / "schema/compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_file_follows_the_compose_specification(
    validator: jsonschema.protocols.Validator,
) -> None:
    """Compose refuses a file its schema rejects, before starting anything."""
    problems = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(_compose())
    ]
    assert problems == []


def test_a_misspelt_service_key_is_refused(validator: jsonschema.protocols.Validator) -> None:
    """The passing check above means something only if the schema refuses a typo."""
    compose = _compose()
    compose["services"]["web"]["comand"] = compose["services"]["web"].pop("command")
    problems = [error.message for error in validator.iter_errors(compose)]
    assert any("comand" in problem for problem in problems)
