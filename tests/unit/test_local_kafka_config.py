"""The local broker's settings, configuration and failure messages, without a JVM."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ops.kafka import (
    KAFKA_VERSION,
    JarFetchError,
    KafkaSettings,
    KafkaSettingsError,
    LocalKafka,
    ToolMissingError,
    load_settings,
    render_server_properties,
)
from ops.kafka.jars import DEPENDENCY_PLUGIN, ensure_jars, parse_java_version
from ops.kafka.local import BrokerState, new_cluster_id
from ops.kafka.settings import listener_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PORT", "CONTROLLER_PORT", "STATE_DIR", "CACHE_DIR", "HEAP", "STARTUP_TIMEOUT"):
        monkeypatch.delenv(f"PALAUTE_KAFKA_{name}", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _properties(text: str) -> dict[str, str]:
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    return dict(line.split("=", 1) for line in lines)


def test_defaults_put_everything_under_the_user_cache(tmp_path: Path) -> None:
    """Nothing lands in the work tree, and each port gets its own state directory."""
    settings = KafkaSettings()
    cache = (tmp_path / "xdg-cache" / "palaute" / "kafka").resolve()
    assert settings.port == 9092
    assert settings.controller_port == 9093
    assert settings.cache_dir == cache
    assert settings.state_dir == cache / "run-9092"
    assert settings.libs_dir == cache / f"kafka-{KAFKA_VERSION}" / "libs"
    assert settings.bootstrap_servers == "127.0.0.1:9092"


def test_home_cache_is_used_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Users without XDG_CACHE_HOME get ~/.cache, as the README promises."""
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert KafkaSettings().cache_dir == (tmp_path / ".cache" / "palaute" / "kafka").resolve()


def test_environment_sets_port_and_the_state_dir_follows(monkeypatch: pytest.MonkeyPatch) -> None:
    """PALAUTE_KAFKA_PORT alone must move the whole broker, controller port included."""
    monkeypatch.setenv("PALAUTE_KAFKA_PORT", "19500")
    settings = KafkaSettings()
    assert (settings.port, settings.controller_port) == (19500, 19501)
    assert settings.state_dir.name == "run-19500"


def test_command_line_options_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--port and --state-dir must override what the shell exported."""
    monkeypatch.setenv("PALAUTE_KAFKA_PORT", "19500")
    monkeypatch.setenv("PALAUTE_KAFKA_STATE_DIR", str(tmp_path / "from-env"))
    settings = load_settings(port=19600, state_dir=tmp_path / "from-cli", controller_port=None)
    assert settings.port == 19600
    assert settings.controller_port == 19601
    assert settings.state_dir == (tmp_path / "from-cli").resolve()


def test_same_port_twice_is_refused() -> None:
    """Kafka would fail late and obscurely if broker and controller shared a port."""
    with pytest.raises(KafkaSettingsError, match="both 9100"):
        load_settings(port=9100, controller_port=9100)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in an exported variable must be traceable to that variable."""
    monkeypatch.setenv("PALAUTE_KAFKA_PORT", "ninety")
    with pytest.raises(KafkaSettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("invalid Kafka settings: PALAUTE_KAFKA_PORT:")
    assert "factory" not in str(caught.value)


def test_server_properties_describe_a_single_loopback_kraft_node(tmp_path: Path) -> None:
    """Every setting a one-node broker needs; a wrong one shows up only under load or in faust."""
    settings = load_settings(port=19700, controller_port=19800, state_dir=tmp_path / "state")
    properties = _properties(render_server_properties(settings))
    assert properties == {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@127.0.0.1:19800",
        "listeners": "PLAINTEXT://127.0.0.1:19700,CONTROLLER://127.0.0.1:19800",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:19700",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str((tmp_path / "state" / "data").resolve()),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }


def test_status_reads_the_port_the_broker_was_started_with(tmp_path: Path) -> None:
    """Status must probe where the broker listens, even if today's --port differs."""
    settings = load_settings(port=19700, state_dir=tmp_path)
    assert listener_port(render_server_properties(settings)) == 19700


def test_pom_default_version_is_the_pinned_version() -> None:
    """Running Maven by hand on ops/kafka/pom.xml must show the broker we run."""
    pom = (ROOT / "ops" / "kafka" / "pom.xml").read_text()
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert match is not None
    assert match.group(1) == KAFKA_VERSION


def test_pom_pins_the_dependency_plugin_the_launcher_names() -> None:
    """By-hand Maven runs and `palaute kafka up` must copy jars the same way."""
    pom = (ROOT / "ops" / "kafka" / "pom.xml").read_text()
    group, artifact, version = DEPENDENCY_PLUGIN.split(":")
    assert f"<artifactId>{artifact}</artifactId>\n        <version>{version}</version>" in pom
    assert group == "org.apache.maven.plugins"


def _fake_mvn(directory: Path, script: str) -> None:
    directory.mkdir()
    mvn = directory / "mvn"
    mvn.write_text(f"#!/bin/sh\n{script}\n")
    mvn.chmod(0o755)


def test_missing_maven_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The first start needs Maven; without it the user learns what to install."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    settings = load_settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    with pytest.raises(ToolMissingError, match=r"`mvn` is not on PATH.*Install Maven"):
        ensure_jars(settings, print)


def test_unreachable_maven_central_says_so_and_shows_mavens_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Offline is the usual cause; the user needs to see it named, with Maven's own reason."""
    _fake_mvn(
        tmp_path / "bin",
        "echo '[ERROR] Failed to execute goal: Could not transfer artifact "
        "org.apache.kafka:kafka_2.13:pom:4.4.0 from/to central: repo.maven.apache.org: "
        "Unknown host' >&2; exit 1",
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    settings = load_settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    messages: list[str] = []
    with pytest.raises(JarFetchError) as caught:
        ensure_jars(settings, messages.append)
    assert messages == [
        f"fetching Apache Kafka {KAFKA_VERSION} and its dependencies from Maven Central…"
    ]
    assert "could not download Apache Kafka" in str(caught.value)
    assert "Unknown host" in str(caught.value)
    assert not settings.libs_dir.exists()


def test_cached_jars_are_used_without_maven(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After the first fetch a start must work offline and without Maven installed."""
    _fake_mvn(tmp_path / "bin", "echo 'Maven must not run' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    settings = load_settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    settings.libs_dir.mkdir(parents=True)
    (settings.libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").write_bytes(b"")
    assert ensure_jars(settings, print) == settings.libs_dir


def test_cluster_ids_have_kafkas_shape() -> None:
    """StorageTool rejects an id that is not 16 bytes in URL-safe base64."""
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_292"', 8),
        ("something else entirely", None),
    ],
)
def test_java_version_banners(banner: str, major: int | None) -> None:
    """An old Java must be caught before Kafka fails with a class-version error."""
    assert parse_java_version(banner) == major


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A developer without Java learns what to install, not a FileNotFoundError."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    kafka = LocalKafka(load_settings(port=19900, state_dir=tmp_path / "state"), report=print)
    with pytest.raises(ToolMissingError, match=r"`java` is not on PATH.*Java 17 or newer"):
        kafka.up()
    assert not (tmp_path / "state" / "kafka.pid").exists()


def test_missing_java_fails_the_command_line(tmp_path: Path) -> None:
    """The real entry point must exit non-zero with the message on stderr."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    command = [sys.executable, "-m", "palaute", "kafka", "up", "--port", "19910"]
    result = subprocess.run(
        [*command, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env={"PATH": str(empty), "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "palaute kafka up: `java` is not on PATH" in result.stderr
    assert "Java 17 or newer" in result.stderr


def test_stale_pid_file_reads_as_down_and_is_removed(tmp_path: Path) -> None:
    """A broker killed by a reboot must not be reported as up, nor block the next start."""
    settings = load_settings(port=19920, state_dir=tmp_path)
    with subprocess.Popen([sys.executable, "-c", "pass"]) as dead:
        dead.wait()
    settings.pid_path.write_text(f"{dead.pid}\n")
    status = LocalKafka(settings).status()
    assert status.state is BrokerState.DOWN
    assert not settings.pid_path.exists()


def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    """If the pid now belongs to another program, `down` must leave that program alone."""
    settings = load_settings(port=19930, state_dir=tmp_path)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as stranger:
        try:
            settings.pid_path.write_text(f"{stranger.pid}\n")
            kafka = LocalKafka(settings)
            assert kafka.status().state is BrokerState.DOWN
            settings.pid_path.write_text(f"{stranger.pid}\n")
            assert kafka.down() is None
            assert stranger.poll() is None
            assert not settings.pid_path.exists()
        finally:
            stranger.kill()


def test_down_without_a_state_dir_creates_nothing(tmp_path: Path) -> None:
    """Asking to stop a broker that never ran must not litter the disk."""
    settings = load_settings(port=19940, state_dir=tmp_path / "never")
    assert LocalKafka(settings).down() is None
    assert not (tmp_path / "never").exists()
