"""The broker's classpath: Java to run it, and its jars from Maven Central.

There is no Kafka tarball and no Docker on the development machines; Maven
resolves ``org.apache.kafka:kafka_2.13`` and its dependencies once per version
into the user cache, and every later start reuses them without Maven.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import resources
from typing import TYPE_CHECKING

from ops.kafka.errors import JarFetchError, ToolMissingError
from ops.kafka.process import file_lock, last_lines
from ops.kafka.settings import KAFKA_VERSION

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ops.kafka.settings import KafkaSettings

MINIMUM_JAVA = 17
"""Kafka 4.x brokers need Java 17 or newer."""

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
"""Named in full (also pinned in pom.xml), so Maven never has to resolve a plugin prefix."""

MAVEN_TIMEOUT_S = 1800.0
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_OUTPUT_TAIL_LINES = 30
_NETWORK_SIGNS = (
    "Could not transfer",
    "UnknownHost",
    "Unknown host",
    "Connection refused",
    "Connection reset",
    "Connection timed out",
    "Connect timed out",
    "Network is unreachable",
    "No route to host",
    "Read timed out",
    "offline mode",
)


def find_java() -> str:
    """Locate a Java able to run the broker, or say how to get one."""
    java = shutil.which("java")
    if java is None:
        raise ToolMissingError(
            f"`java` is not on PATH; the local Kafka broker needs Java {MINIMUM_JAVA} or newer. "
            "Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; "
            "macOS: brew install openjdk@17) and try again."
        )
    major = java_major_version(java)
    if major is not None and major < MINIMUM_JAVA:
        raise ToolMissingError(
            f"{java} is Java {major}; Apache Kafka {KAFKA_VERSION} needs Java {MINIMUM_JAVA} "
            "or newer. Install a newer Java and put it first on PATH."
        )
    return java


def java_major_version(java: str) -> int | None:
    """Return the feature release of a Java, or None if its banner is unfamiliar."""
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_version(result.stderr + result.stdout)


def parse_java_version(banner: str) -> int | None:
    """Read ``17`` from ``openjdk version "17.0.15"`` and ``8`` from ``"1.8.0_292"``."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', banner)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def kafka_jar_name() -> str:
    """Name the broker's own jar, whose presence marks a complete classpath."""
    return f"kafka_2.13-{KAFKA_VERSION}.jar"


def ensure_jars(settings: KafkaSettings, report: Callable[[str], None]) -> Path:
    """Return the classpath directory, fetching it with Maven the first time.

    Maven copies into a scratch directory that is renamed into place only when
    complete, under a lock: an interrupted or concurrent fetch never leaves a
    half-filled classpath that a later start would trust.
    """
    libs = settings.libs_dir
    if (libs / kafka_jar_name()).is_file():
        return libs
    with file_lock(settings.cache_dir / f".kafka-{KAFKA_VERSION}.lock"):
        if (libs / kafka_jar_name()).is_file():
            return libs  # Another process fetched them while we waited.
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ToolMissingError(
                "`mvn` is not on PATH; it fetches the Kafka broker's jars from Maven Central "
                "on first use. Install Maven 3.8 or newer (Debian/Ubuntu: apt-get install "
                "maven; macOS: brew install maven) and try again."
            )
        report(f"fetching Apache Kafka {KAFKA_VERSION} and its dependencies from Maven Central…")
        settings.dist_dir.mkdir(parents=True, exist_ok=True)
        pom = settings.dist_dir / "pom.xml"
        pom.write_bytes(resources.files("ops.kafka").joinpath("pom.xml").read_bytes())
        scratch = settings.dist_dir / "libs.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        run_maven(mvn, pom, scratch)
        if not (scratch / kafka_jar_name()).is_file():
            raise JarFetchError(
                f"Maven finished but {kafka_jar_name()} is not in {scratch}; "
                f"check {pom} and run `mvn -f {pom} dependency:tree` to see what resolves."
            )
        shutil.rmtree(libs, ignore_errors=True)
        scratch.rename(libs)
        count = sum(1 for _ in libs.glob("*.jar"))
        report(f"cached {count} jars in {libs}")
        return libs


def run_maven(mvn: str, pom: Path, output_dir: Path, version: str = KAFKA_VERSION) -> None:
    """Copy the runtime dependencies of ``pom`` at Kafka ``version`` into ``output_dir``."""
    command = [
        mvn,
        "--batch-mode",
        "--no-transfer-progress",
        "--quiet",
        "-Dstyle.color=never",
        "--file",
        str(pom),
        f"-Dkafka.version={version}",
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
            cwd=pom.parent,
        )
    except subprocess.TimeoutExpired as error:
        raise JarFetchError(
            f"Maven did not finish fetching Apache Kafka {version} within "
            f"{MAVEN_TIMEOUT_S:.0f} s; is Maven Central reachable from here?"
        ) from error
    if result.returncode == 0:
        return
    # Maven 3.8 colours some lines even in batch mode.
    output = _ANSI_ESCAPE.sub("", result.stdout + result.stderr)
    output_tail = last_lines(output, _OUTPUT_TAIL_LINES)
    if any(sign in output for sign in _NETWORK_SIGNS):
        reason = (
            f"Maven could not download Apache Kafka {version} from Maven Central: "
            "the network (or the proxy or mirror in ~/.m2/settings.xml) did not let it through."
        )
    else:
        reason = f"Maven failed (exit {result.returncode}) fetching Apache Kafka {version}."
    raise JarFetchError(f"{reason}\nThe last lines Maven printed:\n{output_tail}")
