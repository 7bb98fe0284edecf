"""How every Kafka client of Palaute reaches the cluster: one function of ``[kafka]``.

Workers (faust), the web service (its survey, alert and board followers, the
ingress producer), the command-line tools, the demo and the benchmarks all
build their clients from :func:`client_options`, and faust's credentials are
derived from it too (``streams.app.broker_credentials``). A client built any
other way once reached a TLS cluster without the TLS context and failed at
start; ``tests/unit/test_kafka_clients.py`` reads the source and fails when an
aiokafka client is constructed without this function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import TopicPartition

from schemas.config import KafkaConfig

if TYPE_CHECKING:
    import ssl

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


def client_options(kafka: KafkaConfig, *, client_id_suffix: str = "") -> dict[str, Any]:
    """Map ``[kafka]`` onto the keyword arguments every aiokafka client takes.

    Callers add their own client behaviour (idempotence, offsets, group)
    after these; ``client_id_suffix`` tells one process's clients apart in
    the broker's logs and quotas.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": list(kafka.bootstrap_servers),
        "client_id": kafka.client_id + client_id_suffix,
        "security_protocol": kafka.security_protocol,
    }
    context = _ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.sasl_mechanism is not None:
        if kafka.sasl_mechanism == "OAUTHBEARER":
            raise ValueError(
                "sasl_mechanism OAUTHBEARER needs a token provider, which Palaute does not "
                "have yet; use SCRAM-SHA-512 or PLAIN"
            )
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return options


def _ssl_context(kafka: KafkaConfig) -> ssl.SSLContext | None:
    """Trust ``ssl_cafile`` (or the system's CAs) and present a client certificate if set."""
    if kafka.security_protocol not in TLS_PROTOCOLS:
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile is not None else None,
        certfile=str(kafka.ssl_certfile) if kafka.ssl_certfile is not None else None,
        keyfile=str(kafka.ssl_keyfile) if kafka.ssl_keyfile is not None else None,
    )
    context.check_hostname = kafka.ssl_check_hostname
    return context


def local_broker(bootstrap_servers: str) -> KafkaConfig:
    """Describe a plaintext broker on this machine (``palaute kafka up``, tests, demo, bench).

    The tools that start their own local broker know only its ``host:port``;
    they still build their clients through :func:`client_options`.
    """
    return KafkaConfig(bootstrap_servers=bootstrap_servers.split(","))


async def topic_partitions(kafka: KafkaConfig, topic: str) -> list[TopicPartition]:
    """List a topic's partitions (none when the topic does not exist)."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    numbers = [
        part["partition"]
        for entry in described
        if entry.get("topic") == topic and not entry.get("error_code")
        for part in entry.get("partitions", [])
    ]
    return [TopicPartition(topic, number) for number in sorted(numbers)]
