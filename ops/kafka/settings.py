"""Where the local broker listens and keeps its files, and its configuration.

The broker's version is pinned here and nowhere else: the Maven project in
``pom.xml`` receives it as ``-Dkafka.version``, the jar cache is keyed by it,
and upgrading means changing one constant and running the integration suite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ops.kafka.errors import KafkaSettingsError

KAFKA_VERSION = "4.4.0"
"""The Apache Kafka release the local broker runs (``org.apache.kafka:kafka_2.13``)."""

HOST = "127.0.0.1"
"""The broker only ever listens on loopback: it is for this machine's developers and tests."""

DEFAULT_PORT = 9092
NODE_ID = 1


def default_cache_dir() -> Path:
    """Follow the XDG base directory spec, so the jars land where users expect caches."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "palaute" / "kafka"


def _default_controller_port(data: dict[str, Any]) -> int:
    return int(data.get("port", DEFAULT_PORT)) + 1


def _default_state_dir(data: dict[str, Any]) -> Path:
    cache_dir = data.get("cache_dir") or default_cache_dir()
    return Path(cache_dir) / f"run-{data.get('port', DEFAULT_PORT)}"


class KafkaSettings(BaseSettings):
    """Settings of one local broker, read once when a command starts.

    Environment variables use the ``PALAUTE_KAFKA_`` prefix (``PALAUTE_KAFKA_PORT``,
    ``PALAUTE_KAFKA_STATE_DIR`` ...); keyword arguments, which is how the command
    line passes its options, win over them. A state directory belongs to one
    broker; by default it is named after the port, so brokers on different ports
    never share data.
    """

    model_config = SettingsConfigDict(env_prefix="PALAUTE_KAFKA_", frozen=True, extra="forbid")

    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    controller_port: int = Field(default_factory=_default_controller_port, ge=1, le=65535)
    cache_dir: Path = Field(default_factory=default_cache_dir)
    state_dir: Path = Field(default_factory=_default_state_dir)
    heap: str = Field(default="512m", pattern=r"^[0-9]+[kKmMgG]?$")
    startup_timeout: float = Field(default=60.0, gt=0)

    @field_validator("cache_dir", "state_dir", mode="after")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # The launcher recognises its own broker by this path in the process's
        # command line, so it must be spelled the same way on every call.
        return path.expanduser().resolve()

    @model_validator(mode="after")
    def _distinct_ports(self) -> KafkaSettings:
        if self.port == self.controller_port:
            raise ValueError(
                f"the broker port and the controller port are both {self.port}; "
                "they must differ (the controller port defaults to the port + 1)"
            )
        return self

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` clients connect to."""
        return f"{HOST}:{self.port}"

    @property
    def dist_dir(self) -> Path:
        """Per-version jar cache, shared by every state directory."""
        return self.cache_dir / f"kafka-{KAFKA_VERSION}"

    @property
    def libs_dir(self) -> Path:
        """The broker's classpath directory (exists only once complete)."""
        return self.dist_dir / "libs"

    @property
    def data_dir(self) -> Path:
        """Kafka's ``log.dirs``: topic partitions and the KRaft metadata log."""
        return self.state_dir / "data"

    @property
    def server_properties(self) -> Path:
        """The broker configuration file, also the marker of our process."""
        return self.state_dir / "server.properties"

    @property
    def log4j_properties(self) -> Path:
        """The logging configuration the JVM reads."""
        return self.state_dir / "log4j2.properties"

    @property
    def log_path(self) -> Path:
        """The broker's stdout and stderr."""
        return self.state_dir / "kafka.log"

    @property
    def pid_path(self) -> Path:
        """The process id of the running broker."""
        return self.state_dir / "kafka.pid"

    @property
    def cluster_id_path(self) -> Path:
        """The cluster id storage was formatted with, kept to format only once."""
        return self.state_dir / "cluster-id"


def load_settings(**overrides: Any) -> KafkaSettings:
    """Read the settings, naming the option or variable at fault when one is wrong.

    ``None`` values are dropped, so a command line can pass every option it has
    and the environment still applies to those the user did not give.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return KafkaSettings(**given)
    except ValidationError as error:
        problems = "; ".join(
            _describe(problem["loc"], problem["msg"], problem.get("ctx"), given)
            for problem in error.errors()
            # A field whose default depends on a broken one is not a second problem.
            if problem["type"] != "default_factory_not_called"
        )
        raise KafkaSettingsError(f"invalid Kafka settings: {problems}") from error


def _describe(
    loc: tuple[int | str, ...], message: str, context: dict[str, Any] | None, given: dict[str, Any]
) -> str:
    if context and isinstance(context.get("error"), ValueError):
        message = str(context["error"])
    if not loc:
        return message
    field = str(loc[0])
    origin = f"--{field.replace('_', '-')}" if field in given else f"PALAUTE_KAFKA_{field.upper()}"
    return f"{origin}: {message}"


def render_server_properties(settings: KafkaSettings) -> str:
    """Configure a single KRaft node on loopback that tests can rely on.

    Every replication factor is 1 because there is one node; topics are created
    on first use with one partition because faust and quick experiments rely on
    auto-creation; the initial rebalance delay is 0 so consumer groups in tests
    start at once. Segment and retention settings keep Kafka's defaults.
    """
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{settings.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{settings.port},CONTROLLER://{HOST}:{settings.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{settings.port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(settings.data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    header = (
        "# Written by `palaute kafka up` on every start; edits here are overwritten.\n"
        f"# Apache Kafka {KAFKA_VERSION}, single KRaft node on {HOST}.\n"
    )
    return header + "".join(f"{key}={value}\n" for key, value in lines.items())


def listener_port(server_properties: str) -> int | None:
    """Read back the port a broker was started with, which may differ from today's settings."""
    for line in server_properties.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "advertised.listeners":
            _, _, port = value.strip().rpartition(":")
            return int(port) if port.isdigit() else None
    return None
