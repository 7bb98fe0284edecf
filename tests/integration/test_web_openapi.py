"""schemathesis fuzzes the running web service against its own OpenAPI description.

Every generated request must get an answer the description allows (status,
content type, body shape), and no input may cause a server error. The service
runs as the real ``palaute web`` process against the real broker.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import TYPE_CHECKING

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from connectors.web.ingress import hash_key
from connectors.web.openapi import build_openapi

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from schemathesis.generation.case import Case

pytestmark = pytest.mark.integration

KEY = secrets.token_urlsafe(32)
SCHEMA = schemathesis.openapi.from_dict(build_openapi("test"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def web_service(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("web")
    port = _free_port()
    config = directory / "palaute.toml"
    config.write_text(
        f"""
[kafka]
bootstrap_servers = ["{kafka_bootstrap}"]

[secrets]
pseudonymisation_key = "{"p" * 40}"
link_signing_key = "{"l" * 40}"

[streams]
topic_suffix = ".fuzz-{uuid.uuid4().hex[:10]}"

[ingress]
requests_per_second = 10000
burst = 10000

[ingress.sources.crm-helsinki]
key_sha256 = "{hash_key(KEY)}"
event_sources = ["/crm/helsinki-contact-centre"]
""",
        encoding="utf-8",
    )
    log = directory / "web.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "palaute",
                "web",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310 - loopback URL built above
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    yield base
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(errors="replace")


@SCHEMA.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_response_matches_the_description_and_none_is_a_server_error(
    case: Case, web_service: str
) -> None:
    """Integrators generate clients from the description; it must be what the service does."""
    case.call_and_validate(
        base_url=web_service,
        headers={"Authorization": f"Bearer {KEY}"},
        # JSON Schema describes the shape of an event; the gate is stricter than any
        # schema can say (a real phone number, no identity code, no clock skew), and
        # its 422 is documented. Every other check stays on.
        excluded_checks=[positive_data_acceptance],
    )
