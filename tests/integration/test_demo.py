"""``palaute demo`` is the README's first command: it must work and clean up after itself."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def _free_port_pair() -> int:
    """Find a port whose successor (the controller's) is free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no free pair of ports")


def test_demo_decides_every_contact_once_and_stops_what_it_started() -> None:
    """A new user's first run must end with every contact decided and nothing left running."""
    port = _free_port_pair()
    result = subprocess.run(
        [sys.executable, "-m", "palaute", "demo", "--events", "60", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Decisions: 60 of 60 contacts, each exactly once." in result.stdout
    assert "dead-lettered, personal_identity_code" in result.stdout
    assert "Kafka stopped" in result.stdout
    status = subprocess.run(
        [sys.executable, "-m", "palaute", "kafka", "status", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 3, status.stdout
    leftovers = subprocess.run(
        ["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""
    # No phone number or address reaches the terminal.
    assert "+35840" not in result.stdout
    assert "@example.com" not in result.stdout
