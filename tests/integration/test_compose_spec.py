"""docker-compose.yml validates against the Compose Specification's JSON schema.

Docker Compose itself loads files with compose-go and checks them against the
schema that module ships (``schema/compose-spec.json``); we take the same file
from the Go module proxy at a pinned version, since no Docker engine runs here.
Prometheus's scrape of the worker replicas is checked against the file too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_schemas import download_module

from schemas.config import Settings
from streams.app import create_app

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


def _worker_routes() -> set[str]:
    """Paths the worker's own web server serves, from the app the worker builds."""
    settings = Settings(secrets={"pseudonymisation_key": "k" * 40, "link_signing_key": "s" * 40})
    app = create_app(settings)
    return {view.view_path for view in app.web.views.values()}


def test_prometheus_finds_every_worker_replica_where_it_listens() -> None:
    """With replicas, the name "worker" stands for several containers: each must be scraped."""
    compose = _compose()
    worker = compose["services"]["worker"]
    environment = worker["environment"]
    port = int(environment["PALAUTE_STREAMS__WEB_PORT"])
    assert environment["PALAUTE_STREAMS__WEB_HOST"] == "0.0.0.0"  # noqa: S104 - inside a container
    assert port in {int(exposed) for exposed in worker["expose"]}
    assert worker["deploy"]["replicas"] >= 1
    prometheus = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text("utf-8"))
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "palaute-worker"]
    assert job["metrics_path"] in _worker_routes()
    (lookup,) = job["dns_sd_configs"]
    assert (lookup["names"], lookup["type"], lookup["port"]) == (["worker"], "A", port)
    assert not job.get("static_configs"), "a static worker:port reaches one replica at a time"
