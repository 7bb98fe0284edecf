"""ops/kubernetes/ validates with kubeconform against the Kubernetes API's own schemas.

kubeconform and the API description come from the Go module proxy on first
use and are cached (see kubernetes_schemas.py); nothing is skipped: a
resource without a schema is an error.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from kubernetes_schemas import (
    KUBECONFORM_VERSION,
    KUBERNETES_VERSION,
    ensure_kubeconform,
    ensure_schemas,
    installed_version,
    kind_suffix,
    schema_location,
)

from schemas.config import Settings
from streams.app import create_app

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "ops/kubernetes"


@pytest.fixture(scope="module")
def kubeconform() -> Path:
    return ensure_kubeconform()


@pytest.fixture(scope="module")
def schemas() -> Path:
    return ensure_schemas()


def validate(kubeconform: Path, schemas: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(kubeconform),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            schema_location(schemas),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kubeconform_is_the_pinned_version(kubeconform: Path) -> None:
    """Results are comparable between runs only with one validator version."""
    assert installed_version(kubeconform) == KUBECONFORM_VERSION


def test_schema_files_are_named_as_kubeconform_looks_them_up(schemas: Path) -> None:
    """A schema under another name is never found, and the resource fails as unknown."""
    assert kind_suffix("apps/v1") == "-apps-v1"
    assert kind_suffix("v1") == "-v1"
    assert kind_suffix("networking.k8s.io/v1") == "-networking-v1"
    for expected in ("deployment-apps-v1", "service-v1", "horizontalpodautoscaler-autoscaling-v2"):
        assert (schemas / f"{expected}.json").is_file()


def test_every_manifest_is_valid(kubeconform: Path, schemas: Path) -> None:
    """The API server would refuse an invalid object; find it here, before a deployment."""
    done = validate(kubeconform, schemas, MANIFESTS)
    report = json.loads(done.stdout)
    problems = [r for r in report["resources"] if r["status"] != "statusValid"]
    assert done.returncode == 0, problems or done.stderr
    summary = report["summary"]
    assert summary["invalid"] == summary["errors"] == summary["skipped"] == 0
    files = sorted(MANIFESTS.rglob("*.yaml"))
    assert summary["valid"] >= len(files)


def test_a_misspelt_field_and_a_wrong_type_are_refused(
    kubeconform: Path, schemas: Path, tmp_path: Path
) -> None:
    """The schemas are strict: the passing run above means something only if this fails."""
    worker = (MANIFESTS / "30-worker.yaml").read_text(encoding="utf-8")
    broken = worker.replace("  replicas: 2", "  replica: 2", 1).replace(
        "containerPort: 6066", 'containerPort: "6066"', 1
    )
    assert broken != worker
    target = tmp_path / "broken.yaml"
    target.write_text(broken, encoding="utf-8")
    done = validate(kubeconform, schemas, target)
    assert done.returncode != 0
    (resource,) = json.loads(done.stdout)["resources"]
    assert resource["status"] == "statusInvalid"
    assert "replica" in resource["msg"]
    assert "containerPort" in resource["msg"]


def test_an_unknown_kind_is_an_error_not_a_skip(
    kubeconform: Path, schemas: Path, tmp_path: Path
) -> None:
    """A kind without a schema must not pass silently."""
    target = tmp_path / "unknown.yaml"
    target.write_text(
        "apiVersion: example.org/v1\nkind: Frobnicator\nmetadata:\n  name: x\n", encoding="utf-8"
    )
    done = validate(kubeconform, schemas, target)
    assert done.returncode != 0
    (resource,) = json.loads(done.stdout)["resources"]
    assert resource["status"] == "statusError"


def test_worker_probes_ask_its_health_page_where_it_listens() -> None:
    """A probe on a wrong path, port or loopback-only server restarts healthy workers for ever."""
    (deployment,) = yaml.safe_load_all((MANIFESTS / "30-worker.yaml").read_text("utf-8"))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (configmap,) = yaml.safe_load_all((MANIFESTS / "10-configmap.yaml").read_text("utf-8"))
    web_port = tomllib.loads(configmap["data"]["palaute.toml"])["streams"]["web_port"]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env["PALAUTE_STREAMS__WEB_HOST"] == "0.0.0.0"  # noqa: S104 - inside a pod
    named = {port["name"]: port["containerPort"] for port in container["ports"]}
    settings = Settings(secrets={"pseudonymisation_key": "k" * 40, "link_signing_key": "s" * 40})
    routes = {view.view_path for view in create_app(settings).web.views.values()}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz"
        assert http["path"] in routes
        assert named.get(http["port"], http["port"]) == web_port
    # Liveness restarts only after the stall limit has had its say, several times over.
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
