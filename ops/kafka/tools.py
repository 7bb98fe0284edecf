"""Kafka's own Java tools, for benchmarks that compare Palaute with them.

``org.apache.kafka.tools.ConsumerPerformance`` (``kafka-consumer-perf-test``)
is the Java consumer as fast as it goes, with no processing: the limit of
what a consumer can read from this broker on this machine. The tools are a
separate classpath from the broker's, fetched with Maven the same way
(:func:`ops.kafka.jars.run_maven`) into their own cache directory.

The tools' version may lag the broker's: Maven Central serves
``kafka-tools`` only for released versions, and a 4.3 consumer speaks to a
4.4 broker through the same protocol versions any client negotiates.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from ops.kafka.errors import JarFetchError, ToolMissingError, ToolRunError
from ops.kafka.jars import find_java, run_maven
from ops.kafka.process import file_lock, last_lines

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ops.kafka.settings import KafkaSettings

TOOLS_VERSION = "4.3.1"
"""The ``org.apache.kafka:kafka-tools`` release fetched (the newest Maven Central serves)."""

CONSUMER_PERFORMANCE = "org.apache.kafka.tools.ConsumerPerformance"
_OUTPUT_TAIL_LINES = 30


def tools_jar_name() -> str:
    """Name the tools' own jar, whose presence marks a complete classpath."""
    return f"kafka-tools-{TOOLS_VERSION}.jar"


def tools_libs_dir(settings: KafkaSettings) -> Path:
    """Return where the tools' classpath lives: next to the broker's, in the cache."""
    return settings.cache_dir / f"kafka-tools-{TOOLS_VERSION}" / "libs"


def ensure_tools(settings: KafkaSettings, report: Callable[[str], None]) -> Path:
    """Return the tools' classpath directory, fetching it with Maven the first time.

    As for the broker, Maven fills a scratch directory that is renamed into
    place only when complete, under a lock.
    """
    libs = tools_libs_dir(settings)
    if (libs / tools_jar_name()).is_file():
        return libs
    dist = libs.parent
    with file_lock(settings.cache_dir / f".kafka-tools-{TOOLS_VERSION}.lock"):
        if (libs / tools_jar_name()).is_file():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ToolMissingError(
                "`mvn` is not on PATH; it fetches Kafka's tools from Maven Central on first "
                "use. Install Maven 3.8 or newer (Debian/Ubuntu: apt-get install maven)."
            )
        report(f"fetching kafka-tools {TOOLS_VERSION} and its dependencies from Maven Central…")
        dist.mkdir(parents=True, exist_ok=True)
        pom = dist / "pom.xml"
        pom.write_bytes(resources.files("ops.kafka").joinpath("tools-pom.xml").read_bytes())
        scratch = dist / "libs.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        run_maven(mvn, pom, scratch, version=TOOLS_VERSION)
        if not (scratch / tools_jar_name()).is_file():
            raise JarFetchError(
                f"Maven finished but {tools_jar_name()} is not in {scratch}; "
                f"run `mvn -f {pom} dependency:tree` to see what resolves."
            )
        shutil.rmtree(libs, ignore_errors=True)
        scratch.rename(libs)
        report(f"cached {sum(1 for _ in libs.glob('*.jar'))} jars in {libs}")
        return libs


@dataclass(frozen=True, slots=True)
class ConsumerPerformanceResult:
    """What ``ConsumerPerformance`` printed, in its own units.

    ``records_per_second`` counts from the consumer's start, group join
    included; ``fetch_records_per_second`` leaves the join (the rebalance
    time) out, which is how long reading the records took.
    """

    records: int
    megabytes: float
    seconds: float
    records_per_second: float
    rebalance_ms: float
    fetch_ms: float
    fetch_records_per_second: float


def parse_consumer_performance(output: str) -> ConsumerPerformanceResult:
    """Read the CSV line under the ``start.time, end.time, ...`` header."""
    lines = [line.strip() for line in output.splitlines()]
    for index, line in enumerate(lines[:-1]):
        if line.startswith("start.time"):
            names = [name.strip() for name in line.split(",")]
            values = [value.strip() for value in lines[index + 1].split(",")]
            if len(values) != len(names):
                break
            row = dict(zip(names, values, strict=True))
            records = int(row["data.consumed.in.nMsg"])
            rate = float(row["nMsg.sec"])
            return ConsumerPerformanceResult(
                records=records,
                megabytes=float(row["data.consumed.in.MB"]),
                seconds=records / rate if rate > 0 else 0.0,
                records_per_second=rate,
                rebalance_ms=float(row["rebalance.time.ms"]),
                fetch_ms=float(row["fetch.time.ms"]),
                fetch_records_per_second=float(row["fetch.nMsg.sec"]),
            )
    raise ToolRunError(
        "ConsumerPerformance printed no result line; its output ended with:\n"
        + last_lines(output, _OUTPUT_TAIL_LINES)
    )


def consumer_performance(
    libs: Path,
    bootstrap: str,
    topic: str,
    records: int,
    group: str,
    *,
    heap: str = "512m",
    timeout_s: float = 600.0,
) -> ConsumerPerformanceResult:
    """Run ``ConsumerPerformance`` until it has read ``records`` records of ``topic``."""
    command = [
        find_java(),
        f"-Xmx{heap}",
        "-Djava.awt.headless=true",
        "-cp",
        str(libs / "*"),
        CONSUMER_PERFORMANCE,
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--group",
        group,
        "--timeout",
        "30000",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ToolRunError(
            f"ConsumerPerformance did not read {records} records within {timeout_s:.0f} s"
        ) from error
    if result.returncode != 0:
        raise ToolRunError(
            f"ConsumerPerformance failed (exit {result.returncode}):\n"
            + last_lines(result.stdout + result.stderr, _OUTPUT_TAIL_LINES)
        )
    return parse_consumer_performance(result.stdout)
