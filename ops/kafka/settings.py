"""Where the local broker listens and keeps its files, and its configuration.

The broker's version is pinned here and nowhere else: the Maven project in
``pom.xml`` receives it as ``-Dkafka.version``, the jar cache is keyed by it,
and upgrading means changing one constant and running the integration suite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ops.kafka.errors import KafkaSettingsError

KAFKA_VERSION = "4.4.0"
"""The Apache Kafka release the local broker runs (``org.apache.kafka:kafka_2.13``)."""

HOST = "127.0.0.1"
"""The broker only ever listens on loopback: it is for this machine's developers and tests."""

DEFAULT_PORT = 9092
NODE_ID = 1
SCRAM_MECHANISM = "SCRAM-SHA-512"
"""The one SASL mechanism the ``SASL_SSL`` listener offers (what production clusters use)."""


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
    ssl_port: int | None = Field(default=None, ge=1, le=65535)
    """An extra ``SSL`` listener, to try clients against TLS (needs the two ``tls_*`` files)."""
    sasl_ssl_port: int | None = Field(default=None, ge=1, le=65535)
    """An extra ``SASL_SSL`` listener, SCRAM-SHA-512 (needs ``tls_*`` and ``scram_password``)."""
    tls_certificate_chain: Path | None = None
    """PEM: the broker's certificate (for 127.0.0.1) and any intermediates."""
    tls_private_key: Path | None = None
    """PEM, PKCS#8 and unencrypted: the certificate's private key."""
    scram_username: str = Field(default="palaute", pattern=r"^[A-Za-z0-9._-]+$")
    scram_password: SecretStr | None = None
    """The SCRAM user's password, stored in the broker when its storage is formatted."""

    @field_validator("cache_dir", "state_dir", "tls_certificate_chain", "tls_private_key")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # The launcher recognises its own broker by this path in the process's
        # command line, so it must be spelled the same way on every call.
        return None if path is None else path.expanduser().resolve()

    @model_validator(mode="after")
    def _distinct_ports(self) -> KafkaSettings:
        if self.port == self.controller_port:
            raise ValueError(
                f"the broker port and the controller port are both {self.port}; "
                "they must differ (the controller port defaults to the port + 1)"
            )
        ports = [self.port, self.controller_port, self.ssl_port, self.sasl_ssl_port]
        given = [port for port in ports if port is not None]
        if len(set(given)) != len(given):
            raise ValueError(f"every listener needs a port of its own, got {given}")
        return self

    @model_validator(mode="after")
    def _secured_listeners_have_their_files(self) -> KafkaSettings:
        secured = self.ssl_port is not None or self.sasl_ssl_port is not None
        files = (self.tls_certificate_chain, self.tls_private_key)
        if secured and any(path is None or not path.is_file() for path in files):
            raise ValueError(
                "an SSL or SASL_SSL listener needs tls_certificate_chain and tls_private_key "
                "(PEM files that exist)"
            )
        if self.sasl_ssl_port is not None and self.scram_password is None:
            raise ValueError("a SASL_SSL listener needs scram_password for its SCRAM user")
        password = self.scram_password.get_secret_value() if self.scram_password else ""
        if not re.fullmatch(r"[A-Za-z0-9._~-]*", password):
            # StorageTool's --add-scram syntax has no escape for "," "]" or "=".
            raise ValueError("scram_password may hold only letters, digits and . _ ~ -")
        return self

    @property
    def scram_credential(self) -> str | None:
        """The SCRAM user, as ``kafka-storage format --add-scram`` takes it (None: no SASL)."""
        if self.sasl_ssl_port is None or self.scram_password is None:
            return None
        password = self.scram_password.get_secret_value()
        return f"{SCRAM_MECHANISM}=[name={self.scram_username},password={password}]"

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

    The ``PLAINTEXT`` listener is always there (tools and the broker itself use
    it); ``ssl_port`` and ``sasl_ssl_port`` add the listeners production
    clusters have, so clients can be tried against TLS and SCRAM on this machine.
    """
    listeners = {"PLAINTEXT": settings.port}
    if settings.ssl_port is not None:
        listeners["SSL"] = settings.ssl_port
    if settings.sasl_ssl_port is not None:
        listeners["SASL_SSL"] = settings.sasl_ssl_port
    advertised = ",".join(f"{name}://{HOST}:{port}" for name, port in listeners.items())
    # Each listener is named after its protocol; the controller's speaks plaintext.
    protocols = "".join(f"{name}:{name}," for name in listeners) + "CONTROLLER:PLAINTEXT"
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{settings.controller_port}",
        "listeners": f"{advertised},CONTROLLER://{HOST}:{settings.controller_port}",
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": protocols,
        "log.dirs": str(settings.data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        **_security_properties(settings),
    }
    header = (
        "# Written by `palaute kafka up` on every start; edits here are overwritten.\n"
        f"# Apache Kafka {KAFKA_VERSION}, single KRaft node on {HOST}.\n"
    )
    return header + "".join(f"{key}={value}\n" for key, value in lines.items())


def _security_properties(settings: KafkaSettings) -> dict[str, str]:
    """TLS with the given PEM files, and SCRAM-SHA-512 on the ``SASL_SSL`` listener.

    The PEM texts go into the file inline (``ssl.keystore.key`` may then be
    unencrypted, which a PEM keystore *file* does not allow); Java's
    properties format turns each escaped newline back into a line break.
    """
    if settings.tls_certificate_chain is None or settings.tls_private_key is None:
        return {}
    if settings.ssl_port is None and settings.sasl_ssl_port is None:
        return {}
    properties = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": _inline(settings.tls_certificate_chain),
        "ssl.keystore.key": _inline(settings.tls_private_key),
    }
    if settings.sasl_ssl_port is not None:
        properties["sasl.enabled.mechanisms"] = SCRAM_MECHANISM
        properties[f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    return properties


def _inline(pem: Path) -> str:
    return pem.read_text(encoding="ascii").strip().replace("\n", "\\n")


def listener_port(server_properties: str) -> int | None:
    """Read back the port a broker was started with, which may differ from today's settings."""
    for line in server_properties.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "advertised.listeners":
            match = re.search(r"(?:^|,)PLAINTEXT://[^,]*:(\d+)", value.strip())
            return int(match.group(1)) if match else None
    return None
