"""docker-compose.yml and the Dockerfile are checked statically: no Docker engine runs here.

Every check ties the stack to the code it runs: mounted files exist, each
PALAUTE_ variable is a real setting, the mounted configuration passes
``palaute config check`` with the stack's variables, and every host and port
one service uses to reach another is one that service listens on.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deployment_checks import (
    PALAUTE,
    PYPROJECT,
    ROOT,
    VERSION,
    config_check,
    option,
    palaute_command_exists,
    retention_ms,
    settings_field,
    web_routes,
)

from ops.kafka import KAFKA_VERSION
from schemas.topics import TOPICS

PALAUTE_SERVICES = ("worker", "web", "twilio-sim")
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<word>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def config_file(services: dict[str, Any]) -> Path:
    """Find the host file mounted as /etc/palaute/palaute.toml (one for every service)."""
    sources = {
        mount.split(":")[0]
        for name in ("worker", "web")
        for mount in services[name]["volumes"]
        if mount.split(":")[1] == "/etc/palaute/palaute.toml"
    }
    assert len(sources) == 1
    return ROOT / sources.pop()


@pytest.fixture(scope="module")
def config(config_file: Path) -> dict[str, Any]:
    return tomllib.loads(config_file.read_text(encoding="utf-8"))


def interpolate(value: str) -> str:
    """Resolve compose's ``${VAR:-default}`` with an empty environment, and ``$$``."""

    def replace(match: re.Match[str]) -> str:
        assert match.group("op") in {":-", "-"}, f"{match.group(0)} needs a default"
        return match.group("word")

    return _VARIABLE.sub(replace, value).replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: interpolate(str(value)) for name, value in service["environment"].items()}


def _listeners(value: str) -> dict[str, str]:
    """Map listener name to host:port from a Kafka listeners string."""
    pairs = (item.split("://", 1) for item in value.split(","))
    return dict(pairs)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _published(service: dict[str, Any]) -> set[int]:
    """Container ports a service publishes or exposes to the others."""
    ports = {int(str(port).rsplit(":", 1)[-1]) for port in service.get("ports", [])}
    return ports | {int(port) for port in service.get("expose", [])}


def test_kafka_image_matches_the_pinned_broker(services: dict[str, Any]) -> None:
    """Users with Docker must run the same Kafka our suite was proven against."""
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["kafka-init"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_kafka_runs_kraft_single_node(services: dict[str, Any]) -> None:
    """One node in KRaft mode needs every replication factor at 1, or groups never form."""
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")


def test_kafka_listeners_are_consistent(services: dict[str, Any]) -> None:
    """A listener advertised but not bound, or bound without a protocol, fails at start."""
    env = services["kafka"]["environment"]
    bound = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(advertised) <= set(bound)
    assert set(bound) <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in bound
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    external_port = advertised["EXTERNAL"].rsplit(":", 1)[1]
    assert f"{external_port}:{bound['EXTERNAL'].rsplit(':', 1)[1]}" in services["kafka"]["ports"]


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    """An undeclared named volume is a compose error users would meet first."""
    declared = set(compose.get("volumes", {}))
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared


def test_every_mounted_file_exists(services: dict[str, Any]) -> None:
    """A bind mount of a missing path makes Docker create an empty directory in its place."""
    mounts = [
        volume.split(":", 1)[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert mounts
    missing = [source for source in mounts if not (ROOT / source).exists()]
    assert missing == []


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    """An unpinned image changes under users between two `docker compose pull`s."""
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert tag not in {"latest", ""}, f"{name}: {image}"
        assert re.fullmatch(r"v?\d+(\.\d+){1,2}", tag), f"{name}: {image} is not a release"


def test_palaute_services_run_the_image_of_this_version(services: dict[str, Any]) -> None:
    """The stack builds the Dockerfile and tags it with the version it contains."""
    for name in PALAUTE_SERVICES:
        assert services[name]["image"] == f"palaute:{VERSION}"
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert (ROOT / services[name]["build"]["context"] / "Dockerfile").is_file()


def test_palaute_services_run_real_commands(services: dict[str, Any]) -> None:
    """A command the CLI does not have would exit at once and restart forever."""
    for name in PALAUTE_SERVICES:
        assert palaute_command_exists(services[name]["command"][0]), name


def test_every_palaute_variable_is_a_setting(services: dict[str, Any]) -> None:
    """A misspelt PALAUTE_ variable is silently ignored by pydantic-settings."""
    names = [
        variable
        for service in services.values()
        for variable in service.get("environment", {})
        if variable.startswith("PALAUTE_")
    ]
    assert "PALAUTE_SECRETS__PSEUDONYMISATION_KEY" in names
    unknown = [name for name in names if not settings_field(name)]
    assert unknown == []


def test_settings_lookup_refuses_a_misspelt_variable() -> None:
    """The check above is worth something only if it can say no."""
    assert settings_field("PALAUTE_SMTP__PASSWORD")
    assert settings_field("PALAUTE_TOUCHPOINTS__ANY_ID__SAMPLING_RATE")
    assert not settings_field("PALAUTE_SMTP__PASSWROD")
    assert not settings_field("PALAUTE_SECRET__LINK_SIGNING_KEY")
    assert not settings_field("KAFKA_NODE_ID")


@pytest.mark.parametrize("name", ["worker", "web"])
def test_mounted_config_passes_check_with_the_stack_variables(
    services: dict[str, Any], config_file: Path, name: str
) -> None:
    """The container reads the mounted file plus its variables; that pair must start."""
    args = services[name]["command"]
    assert option(args, "--config") == "/etc/palaute/palaute.toml"
    checked = config_check(config_file, environment(services[name]))
    assert checked.returncode == 0, checked.stderr
    assert f"{config_file}: ok" in checked.stdout


def test_mounted_config_holds_no_secrets(config_file: Path) -> None:
    """Secrets come from the environment: the file alone must lack them."""
    checked = config_check(config_file, {})
    assert checked.returncode == 1
    assert "secrets" in checked.stderr


def test_kafka_address_is_the_broker_listener_for_containers(
    services: dict[str, Any], config: dict[str, Any]
) -> None:
    """Inside the network the broker advertises kafka:19092; localhost would be the container."""
    advertised = _listeners(services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    inside = advertised[services["kafka"]["environment"]["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    for name in ("worker", "web"):
        assert environment(services[name])["PALAUTE_KAFKA__BOOTSTRAP_SERVERS"] == inside
    assert config["kafka"]["bootstrap_servers"] == [inside]


def _init_commands(services: dict[str, Any]) -> list[list[str]]:
    script = interpolate(services["kafka-init"]["command"][0])
    variables: dict[str, str] = {}
    commands = []
    for line in script.splitlines():
        if not line.strip():
            continue
        if re.fullmatch(r"\w+=\S+", line.strip()):
            key, value = line.strip().split("=", 1)
            variables[key] = value
            continue
        for key, value in variables.items():
            line = line.replace(f"${key}", value)  # noqa: PLW2901 - expanding the shell's variables
        commands.append(shlex.split(line))
    return commands


def test_kafka_init_creates_every_topic_as_specified(
    services: dict[str, Any], config: dict[str, Any]
) -> None:
    """Topics with the wrong partitions or clean-up policy cannot be fixed in place later."""
    advertised = _listeners(services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    created: dict[str, list[str]] = {}
    for command in _init_commands(services):
        assert command[0] == "/opt/kafka/bin/kafka-topics.sh"
        assert option(command, "--bootstrap-server") == advertised["PLAINTEXT"]
        if "--create" in command:
            assert "--if-not-exists" in command
            created[option(command, "--topic")] = command
    assert set(created) == {spec.name for spec in TOPICS}
    partitions = config["streams"]["partitions"]
    for spec in TOPICS:
        command = created[spec.name]
        assert int(option(command, "--partitions")) == (spec.partitions or partitions)
        assert int(option(command, "--replication-factor")) == 1
        settings = [command[i + 1] for i, arg in enumerate(command) if arg == "--config"]
        compacting = any(s.startswith("cleanup.policy=compact") for s in settings)
        assert compacting == spec.compacted, spec.name
        for name, value in spec.configs().items():
            assert f"{name}={value}" in settings, spec.name
        expected = None if spec.compacted else retention_ms(spec.retention)
        if expected is not None:
            assert f"retention.ms={expected}" in settings, spec.name
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_palaute_starts_after_the_topics_exist(services: dict[str, Any]) -> None:
    """A worker started before its topics exist would fail, or create them with defaults."""
    init = services["kafka-init"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["restart"] == "no"
    for name in ("worker", "web"):
        condition = services[name]["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully"


def test_workers_scale_up_to_the_partitions(
    services: dict[str, Any], config: dict[str, Any]
) -> None:
    """A worker beyond the partition count idles; published ports would block --scale."""
    worker = services["worker"]
    assert 1 <= worker["deploy"]["replicas"] <= config["streams"]["partitions"]
    assert "ports" not in worker
    assert "container_name" not in worker


def _prometheus_targets() -> dict[str, list[str]]:
    loaded = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        job["job_name"]: [t for group in job.get("static_configs", []) for t in group["targets"]]
        + [
            f"{name}:{lookup['port']}"
            for lookup in job.get("dns_sd_configs", [])
            for name in lookup["names"]
        ]
        for job in loaded["scrape_configs"]
    }
    targets["alertmanager"] = [
        t
        for manager in loaded["alerting"]["alertmanagers"]
        for group in manager["static_configs"]
        for t in group["targets"]
    ]
    return targets


def test_prometheus_reaches_every_target_where_it_listens(
    services: dict[str, Any], config: dict[str, Any]
) -> None:
    """A scrape target on the wrong host or port leaves the dashboard and the alerts blind."""
    web_port = int(option(services["web"]["command"], "--port"))
    worker_port = int(environment(services["worker"])["PALAUTE_STREAMS__WEB_PORT"])
    listening = {
        "web": {web_port},
        "worker": {worker_port},
        "alertmanager": {9093},
        "prometheus": {9090},
    }
    assert worker_port == config["streams"]["web_port"]
    for job, targets in _prometheus_targets().items():
        for target in targets:
            host, port = target.rsplit(":", 1)
            if host == "localhost":
                continue  # Prometheus scraping itself
            assert host in services, f"{job}: no service {host}"
            assert int(port) in listening[host], f"{job}: {target}"
            assert int(port) in _published(services[host]), f"{job}: {target}"


def test_web_port_is_the_same_everywhere(services: dict[str, Any], config: dict[str, Any]) -> None:
    """The published port, the listening port, the health check and the links must agree."""
    web = services["web"]
    port = int(option(web["command"], "--port"))
    assert option(web["command"], "--host") == "0.0.0.0"  # noqa: S104 - inside a container
    assert f"{port}:{port}" in web["ports"]
    assert config["web"]["bind_port"] == port
    assert urlsplit(config["web"]["public_base_url"]).port == port
    probe = " ".join(web["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in probe


def test_health_checks_ask_a_real_endpoint(services: dict[str, Any]) -> None:
    """A health check on a path the service lacks marks it unhealthy for ever."""
    probe = " ".join(services["web"]["healthcheck"]["test"])
    path = urlsplit(re.search(r"http://\S+?(?=')", probe).group(0)).path  # type: ignore[union-attr]
    assert path in web_routes()
    # The image's check asks the web service; services without one turn it off.
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["twilio-sim"]["healthcheck"] == {"disable": True}


def test_mail_goes_to_the_mail_catcher(services: dict[str, Any], config: dict[str, Any]) -> None:
    """Surveys and alert emails in the stack land in mailpit, never on the Internet."""
    smtp = config["smtp"]
    assert smtp["host"] == "mailpit"
    assert smtp["port"] in _published(services["mailpit"])
    alertmanager = yaml.safe_load(
        (ROOT / "ops/docker/alertmanager.yml").read_text(encoding="utf-8")
    )
    host, port = alertmanager["global"]["smtp_smarthost"].rsplit(":", 1)
    assert host == "mailpit"
    assert int(port) == smtp["port"]


def test_sms_goes_to_the_simulator_with_matching_credentials(
    services: dict[str, Any], config: dict[str, Any]
) -> None:
    """The worker's Twilio client must be accepted by the simulator it points at."""
    simulator = services["twilio-sim"]
    args = [interpolate(str(arg)) for arg in simulator["command"]]
    url = urlsplit(config["twilio"]["api_base_url"])
    assert url.hostname == "twilio-sim"
    assert url.port == int(option(args, "--port"))
    assert option(args, "--host") == "0.0.0.0"  # noqa: S104 - inside a container
    assert option(args, "--account-sid") == config["twilio"]["account_sid"]
    assert option(args, "--sms-number") == config["twilio"]["from_number"]
    token = option(args, "--auth-token")
    assert environment(services["worker"])["PALAUTE_TWILIO__AUTH_TOKEN"] == token


def test_grafana_finds_its_provisioning_and_dashboard(services: dict[str, Any]) -> None:
    """Provisioning names a dashboard folder and a Prometheus URL; both must be where they say."""
    mounts = dict(volume.split(":")[:2] for volume in services["grafana"]["volumes"])
    assert mounts["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/dashboards/palaute.yml").read_text(encoding="utf-8")
    )
    folders = {provider["options"]["path"] for provider in providers["providers"]}
    assert folders == {mounts["./ops/grafana/dashboards"]}
    assert list((ROOT / "ops/grafana/dashboards").glob("*.json"))
    sources = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )
    for source in sources["datasources"]:
        url = urlsplit(source["url"])
        assert url.hostname in services
        assert url.port in _published(services[url.hostname])


def test_prometheus_loads_the_rules_it_names(services: dict[str, Any]) -> None:
    """prometheus.yml loads rules/*.rules.yml beside itself; the mount must put them there."""
    mounts = dict(volume.split(":")[:2] for volume in services["prometheus"]["volumes"])
    config_in_container = Path(mounts["./ops/prometheus/prometheus.yml"])
    rules_in_container = Path(mounts["./ops/prometheus/rules"])
    assert rules_in_container == config_in_container.parent / "rules"
    assert f"--config.file={config_in_container}" in services["prometheus"]["command"]
    assert list((ROOT / "ops/prometheus/rules").glob("*.rules.yml"))


def test_stack_alertmanager_config_is_valid(services: dict[str, Any]) -> None:
    """Alertmanager refuses to start on a config amtool rejects."""
    mounts = dict(volume.split(":")[:2] for volume in services["alertmanager"]["volumes"])
    source = ROOT / "ops/docker/alertmanager.yml"
    assert mounts["./ops/docker/alertmanager.yml"] == "/etc/alertmanager/alertmanager.yml"
    amtool = shutil.which("amtool") or "/usr/bin/amtool"
    if not Path(amtool).exists():
        pytest.fail("amtool is not installed: apt-get install prometheus-alertmanager")
    checked = subprocess.run(
        [amtool, "check-config", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# The Dockerfile ---------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, with continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _all(dockerfile: list[tuple[str, str]], keyword: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile if instruction == keyword]


def test_image_is_built_from_a_pinned_python_the_project_supports(
    dockerfile: list[tuple[str, str]],
) -> None:
    """The base image decides the Python version: it must satisfy requires-python."""
    (base,) = _all(dockerfile, "FROM")
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-\w+", base)
    assert match, base
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum
    assert (int(match[1]), int(match[2])) >= (int(minimum[1]), int(minimum[2]))


def test_image_copies_everything_pip_install_needs(dockerfile: list[tuple[str, str]]) -> None:
    """A package missing from the image imports fine here and fails only in the container."""
    copied = {
        source
        for arguments in _all(dockerfile, "COPY")
        for source in shlex.split(arguments)[:-1]
        if not source.startswith("--")
    }
    for source in copied:
        assert (ROOT / source).exists(), source
    packages = {
        pattern.rstrip("*")
        for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied
    assert {
        "pyproject.toml",
        PYPROJECT["project"]["readme"],
        *PYPROJECT["project"]["license-files"],
    } <= copied
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not copied & ignored
    assert "RUN pip install ." in " ".join(f"RUN {run}" for run in _all(dockerfile, "RUN"))


def test_image_runs_palaute_as_a_fixed_non_root_user(dockerfile: list[tuple[str, str]]) -> None:
    """Kubernetes' runAsNonRoot can verify only a numeric user."""
    (user,) = _all(dockerfile, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) > 0
    (entrypoint,) = _all(dockerfile, "ENTRYPOINT")
    assert yaml.safe_load(entrypoint) == ["palaute"]
    assert "palaute" in PYPROJECT["project"]["scripts"]
    assert PALAUTE.exists()


def test_image_exposes_and_checks_the_ports_the_stack_uses(
    dockerfile: list[tuple[str, str]], services: dict[str, Any]
) -> None:
    """The image's health check and exposed ports must be the ones compose configures."""
    exposed = {int(port) for arguments in _all(dockerfile, "EXPOSE") for port in arguments.split()}
    web_port = int(option(services["web"]["command"], "--port"))
    worker_port = int(environment(services["worker"])["PALAUTE_STREAMS__WEB_PORT"])
    assert {web_port, worker_port} <= exposed
    (healthcheck,) = _all(dockerfile, "HEALTHCHECK")
    assert f"http://127.0.0.1:{web_port}/healthz" in healthcheck
    assert "/healthz" in web_routes()
