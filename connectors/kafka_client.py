"""aiokafka client options from ``[kafka]``, for the tools that talk to Kafka without faust.

The rebuild command and the web service's alert directory read topics with
plain aiokafka clients; they must reach a TLS or SASL cluster exactly as the
workers do, so the mapping lives in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import TopicPartition

if TYPE_CHECKING:
    from schemas.config import KafkaConfig


def client_options(kafka: KafkaConfig) -> dict[str, Any]:
    """Map ``[kafka]`` onto the keyword arguments every aiokafka client takes."""
    options: dict[str, Any] = {
        "bootstrap_servers": list(kafka.bootstrap_servers),
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in {"SSL", "SASL_SSL"}:
        context = create_ssl_context(
            cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile
        )
        context.check_hostname = kafka.ssl_check_hostname
        options["ssl_context"] = context
    if kafka.sasl_mechanism is not None:
        if kafka.sasl_mechanism == "OAUTHBEARER":
            raise ValueError("sasl_mechanism OAUTHBEARER is not supported by this tool yet")
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return options


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
