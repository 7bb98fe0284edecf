"""docker-compose.yml is checked statically: no Docker engine runs where we test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.kafka import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _listeners(value: str) -> dict[str, str]:
    """Map listener name to host:port from a Kafka listeners string."""
    pairs = (item.split("://", 1) for item in value.split(","))
    return dict(pairs)


def test_kafka_image_matches_the_pinned_broker(compose: dict[str, Any]) -> None:
    """Users with Docker must run the same Kafka our suite was proven against."""
    image = compose["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{KAFKA_VERSION}"


def test_kafka_runs_kraft_single_node(compose: dict[str, Any]) -> None:
    """One node in KRaft mode needs every replication factor at 1, or groups never form."""
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")


def test_kafka_listeners_are_consistent(compose: dict[str, Any]) -> None:
    """A listener advertised but not bound, or bound without a protocol, fails at start."""
    env = compose["services"]["kafka"]["environment"]
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
    assert (
        f"{external_port}:{bound['EXTERNAL'].rsplit(':', 1)[1]}"
        in compose["services"]["kafka"]["ports"]
    )


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    """An undeclared named volume is a compose error users would meet first."""
    declared = set(compose.get("volumes", {}))
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared
