"""One local Apache Kafka broker: start it, tell whether it runs, stop it.

The broker is a single KRaft node on 127.0.0.1 whose files all live in one
state directory (configuration, data, log, pid file). Every answer is checked
against reality rather than read from a file: "up" means our own process runs
*and* the port answers Kafka requests, and a pid file that outlived its
process is removed as soon as it is noticed.
"""

from __future__ import annotations

import base64
import enum
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from ops.kafka import process
from ops.kafka.admin import broker_answers
from ops.kafka.errors import BrokerStartError, BrokerStopError, PortTakenError
from ops.kafka.jars import ensure_jars, find_java
from ops.kafka.settings import (
    HOST,
    KAFKA_VERSION,
    KafkaSettings,
    listener_port,
    render_server_properties,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

LOG_TAIL_LINES = 30
_POLL_S = 0.5


class BrokerState(enum.Enum):
    """What ``status`` found."""

    UP = "up"
    DOWN = "down"
    NOT_ANSWERING = "not answering"
    """Our process runs but the port does not answer: still starting, or stuck."""


@dataclass(frozen=True)
class BrokerStatus:
    """The observed state of a broker, with what a user needs to reach or debug it."""

    state: BrokerState
    port: int
    log_path: Path
    pid: int | None = None
    started: bool = False
    """True when the call that returned this status launched the process."""

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` clients connect to."""
        return f"{HOST}:{self.port}"


def _to_stderr(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


class LocalKafka:
    """Manage the broker described by one :class:`KafkaSettings`.

    Progress messages (fetching jars, waiting for the broker) go to ``report``;
    results are returned, failures raised as :class:`LocalKafkaError` subclasses
    whose message says what to do.
    """

    def __init__(
        self, settings: KafkaSettings, *, report: Callable[[str], None] = _to_stderr
    ) -> None:
        self.settings = settings
        self._report = report

    # -- queries -----------------------------------------------------------------

    def status(self, *, timeout: float = 5.0) -> BrokerStatus:
        """Report the truth, cleaning up a pid file whose process is gone."""
        pid = self._our_pid()
        port = self._running_port()
        if pid is None:
            return BrokerStatus(BrokerState.DOWN, port, self.settings.log_path)
        answering = broker_answers(f"{HOST}:{port}", timeout=timeout)
        state = BrokerState.UP if answering else BrokerState.NOT_ANSWERING
        return BrokerStatus(state, port, self.settings.log_path, pid)

    # -- commands ----------------------------------------------------------------

    def up(self) -> BrokerStatus:
        """Start the broker unless it already runs, and return once it takes requests."""
        settings = self.settings
        with process.file_lock(settings.state_dir / ".lock"):
            current = self.status()
            if current.state is BrokerState.UP:
                return current
            if current.state is BrokerState.NOT_ANSWERING and current.pid is not None:
                # Probably still starting (another `up` launched it): give it the usual time.
                self._report(
                    f"Kafka (pid {current.pid}) is running but not answering yet; waiting…"
                )
                return self._wait_until_ready(current.pid, started=False)
            java = find_java()
            self._check_ports_free()
            libs = ensure_jars(settings, self._report)
            self._write_configuration()
            self._format_storage_once(java, libs)
            pid = self._launch(java, libs)
            self._report(
                f"starting Apache Kafka {KAFKA_VERSION} at {settings.bootstrap_servers} "
                f"(pid {pid}); log: {settings.log_path}"
            )
            return self._wait_until_ready(pid, started=True)

    def down(self, *, wipe: bool = False) -> BrokerStatus | None:
        """Stop our broker if it runs; return its last status, or None if it was not running.

        ``wipe`` then deletes its data, cluster id and logs, so the next ``up``
        formats a fresh, empty broker. Only files this tool creates are removed,
        whatever directory ``--state-dir`` points at.
        """
        settings = self.settings
        if not settings.state_dir.is_dir():
            return None
        with process.file_lock(settings.state_dir / ".lock"):
            pid = self._our_pid()
            stopped = None
            if pid is not None:
                stopped = BrokerStatus(
                    BrokerState.DOWN, self._running_port(), settings.log_path, pid
                )
                if not process.stop(pid, settings.server_properties):
                    raise BrokerStopError(
                        f"Kafka (pid {pid}) did not exit after SIGTERM and SIGKILL; "
                        f"see {settings.log_path}"
                    )
                settings.pid_path.unlink(missing_ok=True)
            if wipe:
                self._wipe()
            return stopped

    # -- steps of `up` -------------------------------------------------------------

    def _check_ports_free(self) -> None:
        settings = self.settings
        if not process.port_is_free(HOST, settings.port):
            raise PortTakenError(
                f"port {settings.port} is taken by another process; "
                "choose another with --port or PALAUTE_KAFKA_PORT"
            )
        if not process.port_is_free(HOST, settings.controller_port):
            raise PortTakenError(
                f"controller port {settings.controller_port} is taken by another process; "
                "choose another with --controller-port or PALAUTE_KAFKA_CONTROLLER_PORT"
            )
        for name, port in (("SSL", settings.ssl_port), ("SASL_SSL", settings.sasl_ssl_port)):
            if port is not None and not process.port_is_free(HOST, port):
                raise PortTakenError(
                    f"{name} port {port} is taken by another process; choose another with "
                    f"PALAUTE_KAFKA_{name}_PORT"
                )

    def _write_configuration(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.server_properties.write_text(render_server_properties(settings))
        settings.log4j_properties.write_bytes(
            resources.files("ops.kafka").joinpath("log4j2.properties").read_bytes()
        )

    def _format_storage_once(self, java: str, libs: Path) -> None:
        """Format the data directory on first start only; formatting twice would fail."""
        settings = self.settings
        if (settings.data_dir / "meta.properties").is_file():
            return
        cluster_id = self._cluster_id()
        command = [
            *self._java_command(java, libs),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(settings.server_properties),
            "--ignore-formatted",
        ]
        if settings.scram_credential is not None:
            # KRaft keeps SCRAM users in its metadata log: they are added when formatting.
            command += ["--add-scram", settings.scram_credential]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            output = process.last_lines(result.stdout + result.stderr, LOG_TAIL_LINES)
            raise BrokerStartError(
                f"formatting Kafka storage in {settings.data_dir} failed "
                f"(exit {result.returncode}):\n{output}"
            )

    def _cluster_id(self) -> str:
        """Keep one cluster id per state directory, so a re-format reuses it."""
        path = self.settings.cluster_id_path
        if path.is_file():
            return path.read_text().strip()
        cluster_id = new_cluster_id()
        path.write_text(f"{cluster_id}\n")
        return cluster_id

    def _java_command(self, java: str, libs: Path) -> list[str]:
        settings = self.settings
        return [
            java,
            f"-Xmx{settings.heap}",
            "-Djava.awt.headless=true",
            f"-XX:ErrorFile={settings.state_dir / 'hs_err_pid%p.log'}",
            f"-Dlog4j2.configurationFile={settings.log4j_properties}",
            "-cp",
            str(libs / "*"),
        ]

    def _launch(self, java: str, libs: Path) -> int:
        settings = self.settings
        log = settings.log_path
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))  # Keep one previous run.
        pid = process.spawn_detached(
            [
                *self._java_command(java, libs),
                process.KAFKA_MAIN_CLASS,
                str(settings.server_properties),
            ],
            log,
        )
        process.write_pid(settings.pid_path, pid)
        if not process.wait_until_ours(pid, settings.server_properties):
            settings.pid_path.unlink(missing_ok=True)
            raise BrokerStartError(self._with_log_tail(f"Java (pid {pid}) did not start"))
        return pid

    def _wait_until_ready(self, pid: int, *, started: bool) -> BrokerStatus:
        settings = self.settings
        port = self._running_port()
        deadline = time.monotonic() + settings.startup_timeout
        while True:
            exit_code = process.reap(pid)
            if exit_code is not None or not process.is_our_broker(pid, settings.server_properties):
                settings.pid_path.unlink(missing_ok=True)
                how = f" with exit code {exit_code}" if exit_code is not None else ""
                raise BrokerStartError(self._with_log_tail(f"Kafka (pid {pid}) exited{how}"))
            if process.port_accepts(HOST, port) and broker_answers(f"{HOST}:{port}"):
                return BrokerStatus(BrokerState.UP, port, settings.log_path, pid, started=started)
            if time.monotonic() >= deadline:
                process.stop(pid, settings.server_properties)
                settings.pid_path.unlink(missing_ok=True)
                raise BrokerStartError(
                    self._with_log_tail(
                        f"Kafka (pid {pid}) did not answer on {HOST}:{port} within "
                        f"{settings.startup_timeout:.0f} s, so it was stopped"
                    )
                )
            time.sleep(_POLL_S)

    def _with_log_tail(self, message: str) -> str:
        log = self.settings.log_path
        last = process.tail(log, LOG_TAIL_LINES)
        return f"{message}.\nThe last {LOG_TAIL_LINES} lines of {log}:\n{last}"

    # -- bookkeeping ---------------------------------------------------------------

    def _our_pid(self) -> int | None:
        """Find our running broker's pid, repairing the pid file either way."""
        settings = self.settings
        recorded = process.read_pid(settings.pid_path)
        if recorded is not None:
            process.reap(recorded)
            if process.is_our_broker(recorded, settings.server_properties):
                return recorded
        found = process.find_our_broker(settings.server_properties)
        if found is not None:
            process.write_pid(settings.pid_path, found)
        elif settings.pid_path.exists():
            settings.pid_path.unlink(missing_ok=True)
        return found

    def _running_port(self) -> int:
        """Read the port from the configuration the broker was started with, if any."""
        try:
            started_with = listener_port(self.settings.server_properties.read_text())
        except FileNotFoundError:
            started_with = None
        return started_with or self.settings.port

    def _wipe(self) -> None:
        settings = self.settings
        shutil.rmtree(settings.data_dir, ignore_errors=True)
        log = settings.log_path
        for path in (
            settings.cluster_id_path,
            settings.server_properties,
            settings.log4j_properties,
            log,
            log.with_name(log.name + ".1"),
        ):
            path.unlink(missing_ok=True)
        for crash_report in settings.state_dir.glob("hs_err_pid*.log"):
            crash_report.unlink()


def new_cluster_id() -> str:
    """Make a Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Kafka's own ``StorageTool random-uuid`` does the same (and, like here, never
    starts an id with a dash); generating it here saves a JVM start.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
