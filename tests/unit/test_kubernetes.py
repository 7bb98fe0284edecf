"""ops/kubernetes/ agrees with itself and with the code it deploys.

kubeconform (tests/integration/test_kubeconform.py) checks each object against
the Kubernetes API's schemas; these tests check what no schema knows: that
selectors select, probes ask real endpoints on real ports, the configuration
passes ``palaute config check`` with the Secret's variables, and workers never
outnumber the partitions.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deployment_checks import ROOT, VERSION, config_check, option, settings_field, web_routes

MANIFESTS = ROOT / "ops/kubernetes"
NAMESPACE = "palaute"


def _load(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        document
        for path in paths
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document is not None
    ]


@pytest.fixture(scope="module")
def applied() -> list[dict[str, Any]]:
    """Load what `kubectl apply -f ops/kubernetes/` creates (not the secret/ example)."""
    return _load(sorted(MANIFESTS.glob("*.yaml")))


@pytest.fixture(scope="module")
def secret() -> dict[str, Any]:
    (example,) = _load(sorted((MANIFESTS / "secret").glob("*.yaml")))
    return example


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


@pytest.fixture(scope="module")
def worker(applied: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(applied, "Deployment", "palaute-worker")


@pytest.fixture(scope="module")
def web_deployment(applied: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(applied, "Deployment", "palaute-web")


@pytest.fixture(scope="module")
def configmap(applied: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(applied, "ConfigMap", "palaute-config")


@pytest.fixture(scope="module")
def config(configmap: dict[str, Any]) -> dict[str, Any]:
    return tomllib.loads(configmap["data"]["palaute.toml"])


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_namespace_comes_first_and_holds_everything(
    applied: list[dict[str, Any]], secret: dict[str, Any]
) -> None:
    """Objects are applied in file order; one before its namespace is refused."""
    first = yaml.safe_load(min(MANIFESTS.glob("*.yaml")).read_text(encoding="utf-8"))
    assert first["kind"] == "Namespace"
    assert first["metadata"]["name"] == NAMESPACE
    for obj in [*applied, secret]:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


def test_every_object_names_its_version_kind_and_name(
    applied: list[dict[str, Any]], secret: dict[str, Any]
) -> None:
    """An object without these is refused by the API server before anything else."""
    for obj in [*applied, secret]:
        assert obj["apiVersion"]
        assert obj["kind"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"])


def test_deployments_select_their_own_pods(
    worker: dict[str, Any], web_deployment: dict[str, Any]
) -> None:
    """A selector that misses the template's labels is refused; one that overlaps steals pods."""
    selectors = []
    for deployment in (worker, web_deployment):
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        selectors.append(selector)
    assert selectors[0] != selectors[1]


def test_service_reaches_the_web_pods_on_their_port(
    applied: list[dict[str, Any]], web_deployment: dict[str, Any]
) -> None:
    """A Service whose selector or targetPort is wrong has no endpoints."""
    service = _one(applied, "Service", "palaute-web")
    labels = web_deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    container = _container(web_deployment)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports
        assert ports[port["targetPort"]] == int(option(container["args"], "--port"))


def test_web_probes_ask_health_on_the_listening_port(web_deployment: dict[str, Any]) -> None:
    """A probe on a wrong path or port restarts healthy pods for ever."""
    container = _container(web_deployment)
    assert option(container["args"], "--host") == "0.0.0.0"  # noqa: S104 - inside a pod
    port = int(option(container["args"], "--port"))
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    routes = web_routes()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz"
        assert http["path"] in routes
        assert named.get(http["port"], http["port"]) == port


def test_workers_never_outnumber_the_partitions(
    applied: list[dict[str, Any]], worker: dict[str, Any], config: dict[str, Any]
) -> None:
    """A worker beyond the partition count gets nothing to do; scaling past it wastes pods."""
    partitions = config["streams"]["partitions"]
    assert 1 <= worker["spec"]["replicas"] <= partitions
    hpa = _one(applied, "HorizontalPodAutoscaler", "palaute-worker")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", worker["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions


def test_pods_mount_the_configuration_they_are_told_to_read(
    configmap: dict[str, Any], worker: dict[str, Any], web_deployment: dict[str, Any]
) -> None:
    """--config must name the ConfigMap's file where the volume puts it."""
    for deployment in (worker, web_deployment):
        spec = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        container = _container(deployment)
        config_path = Path(option(container["args"], "--config"))
        mounts = {Path(m["mountPath"]): m["name"] for m in container["volumeMounts"]}
        volume = volumes[mounts[config_path.parent]]
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]
        assert config_path.name in configmap["data"]


def test_pods_take_their_secrets_from_the_secret(
    secret: dict[str, Any], worker: dict[str, Any], web_deployment: dict[str, Any]
) -> None:
    """Secrets reach the processes as PALAUTE_ variables from the one Secret."""
    for deployment in (worker, web_deployment):
        refs = [source["secretRef"]["name"] for source in _container(deployment)["envFrom"]]
        assert refs == [secret["metadata"]["name"]]


def test_every_palaute_variable_is_a_setting(
    secret: dict[str, Any], worker: dict[str, Any], web_deployment: dict[str, Any]
) -> None:
    """A misspelt variable in the Secret is silently ignored, and the default used."""
    names = list(secret["stringData"])
    for deployment in (worker, web_deployment):
        names += [variable["name"] for variable in _container(deployment).get("env", [])]
    assert names
    unknown = [name for name in names if not settings_field(name)]
    assert unknown == []


def test_configmap_passes_check_with_the_secret(
    configmap: dict[str, Any], secret: dict[str, Any], tmp_path: Path
) -> None:
    """The pods start only if the file plus the Secret's variables is a valid configuration."""
    config_file = tmp_path / "palaute.toml"
    config_file.write_text(configmap["data"]["palaute.toml"], encoding="utf-8")
    checked = config_check(config_file, secret["stringData"])
    assert checked.returncode == 0, checked.stderr
    alone = config_check(config_file, {})
    assert alone.returncode == 1
    assert "secrets" in alone.stderr


def test_production_configuration_is_safe_outside_loopback(config: dict[str, Any]) -> None:
    """A cluster is reached over the network: TLS to Kafka, https links, replicated topics."""
    assert config["kafka"]["security_protocol"] in {"SSL", "SASL_SSL"}
    assert urlsplit(config["web"]["public_base_url"]).scheme == "https"
    assert config["streams"]["replication_factor"] >= 3
    assert config["smtp"]["security"] in {"starttls", "tls"}
    assert "secrets" not in config


def test_pods_run_the_image_of_this_version_as_its_user(
    worker: dict[str, Any], web_deployment: dict[str, Any]
) -> None:
    """Pods run as the Dockerfile's user, or as one the image did not prepare."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"^USER (\d+)", dockerfile, re.MULTILINE)
    assert match
    for deployment in (worker, web_deployment):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == int(match.group(1))
        container = _container(deployment)
        assert container["image"].endswith(f"/palaute:{VERSION}")
        assert container["args"][0] in {"worker", "web"}


def test_metrics_annotations_point_at_the_metrics_ports(
    worker: dict[str, Any], web_deployment: dict[str, Any], config: dict[str, Any]
) -> None:
    """Scrape annotations on the wrong port leave the dashboards empty."""
    worker_port = int(worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
    assert worker_port == config["streams"]["web_port"]
    assert worker_port in {p["containerPort"] for p in _container(worker)["ports"]}
    web_port = int(
        web_deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
    )
    assert web_port == int(option(_container(web_deployment)["args"], "--port"))
    for deployment in (worker, web_deployment):
        assert (
            deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
            == "/metrics"
        )
    assert "/metrics" in web_routes()


def test_writable_paths_are_volumes_under_a_read_only_root(
    worker: dict[str, Any], config: dict[str, Any]
) -> None:
    """With readOnlyRootFilesystem the table stores must live on a mounted volume."""
    container = _container(worker)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    data_dir = Path(config["streams"]["data_dir"])
    writable = [
        Path(m["mountPath"]) for m in container["volumeMounts"] if not m.get("readOnly", False)
    ]
    assert any(data_dir.is_relative_to(path) for path in writable)
