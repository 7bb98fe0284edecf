"""The faust app's wiring: producer guarantees, security mapping and topic names."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from schemas.config import KafkaConfig, load_settings
from schemas.topics import TopicNames
from streams.app import broker_credentials, create_app
from streams.runtime.kafka_plain.service import declared_topics, runtime_of

ROOT = Path(__file__).resolve().parents[2]


async def test_the_producer_is_idempotent_with_acks_all() -> None:
    """A retried produce without idempotence writes a decision twice (DESIGN.md pitfalls)."""
    app = create_app(load_settings(ROOT / "examples" / "palaute.toml"))
    producer = app.producer._new_producer()
    try:
        assert producer._txn_manager is not None  # aiokafka's idempotence state
        assert producer._sender._acks == -1
    finally:
        await producer.stop()


def test_the_app_never_uses_exactly_once() -> None:
    """Faust's transactions crash and duplicate on rebalance; stages are idempotent instead."""
    app = create_app(load_settings(ROOT / "examples" / "palaute.toml"))
    assert app.conf.processing_guarantee.value == "at_least_once"
    assert "dispatch-scheduler" in app.agents
    assert "survey-lifecycle" in app.tables


def test_the_intake_runs_on_the_plain_runtime_and_keeps_its_state_topic() -> None:
    """The history must stay where faust's table kept it, or a move would forget every citizen."""
    app = create_app(load_settings(ROOT / "examples" / "palaute.toml"))
    assert not {"intake", "intake-decide"} & set(app.agents)
    assert "citizen-history" not in app.tables
    runners = {runner.stage.name: runner for runner in runtime_of(app, KafkaConfig()).runners}
    assert set(runners) == {"intake", "intake-decide"}
    assert runners["intake-decide"].group_id == f"{app.conf.id}-intake-decide"
    declared = {topic.name: topic for topic in declared_topics(app)}
    changelog = declared[f"{app.conf.id}-citizen-history-changelog"]
    assert changelog.role == "changelog"
    assert changelog.configs["cleanup.policy"] == "compact"
    assert declared[f"{app.conf.id}-contacts-by-citizen"].role == "internal"


def test_a_suffix_reaches_every_topic_and_the_group() -> None:
    """Test runs and environments sharing a cluster must never read each other's records."""
    names = TopicNames.with_suffix("-t1")
    assert all(
        name.endswith("-t1")
        for name in (names.contacts, names.surveys, names.vault, names.deadletter)
    )
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    app = create_app(settings, app_id="palaute-t1", topic_names=names)
    assert app.conf.id == "palaute-t1"


def test_sasl_settings_map_to_faust_credentials() -> None:
    """A production cluster with SCRAM must get the mechanism and the password through."""
    kafka = KafkaConfig.model_validate(
        {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "palaute",
            "sasl_password": "s3cret-password",
        }
    )
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.password == "s3cret-password"
    assert broker_credentials(KafkaConfig()) is None


def test_oauthbearer_is_refused_with_a_reason() -> None:
    """Starting without a token provider would fail later with an obscure error."""
    kafka = KafkaConfig.model_validate(
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}
    )
    with pytest.raises(ValueError, match="OAUTHBEARER"):
        broker_credentials(kafka)
