"""A real Apache Kafka broker on 127.0.0.1 for development and tests.

``palaute kafka up | down | status`` drives :class:`LocalKafka`; the pytest
fixtures in ``tests/conftest.py`` use :func:`shared_broker` and the topic
helpers. The broker's jars come from Maven Central (see ``pom.xml``) and are
cached per version under ``$XDG_CACHE_HOME/palaute/kafka``.
"""

from ops.kafka.admin import TopicFactory, broker_answers, create_topic, delete_topics
from ops.kafka.errors import (
    BrokerStartError,
    BrokerStopError,
    JarFetchError,
    KafkaSettingsError,
    LocalKafkaError,
    PortTakenError,
    ToolMissingError,
    TopicAdminError,
)
from ops.kafka.lease import shared_broker
from ops.kafka.local import BrokerState, BrokerStatus, LocalKafka
from ops.kafka.settings import (
    HOST,
    KAFKA_VERSION,
    KafkaSettings,
    default_cache_dir,
    load_settings,
    render_server_properties,
)

__all__ = [
    "HOST",
    "KAFKA_VERSION",
    "BrokerStartError",
    "BrokerState",
    "BrokerStatus",
    "BrokerStopError",
    "JarFetchError",
    "KafkaSettings",
    "KafkaSettingsError",
    "LocalKafka",
    "LocalKafkaError",
    "PortTakenError",
    "ToolMissingError",
    "TopicAdminError",
    "TopicFactory",
    "broker_answers",
    "create_topic",
    "default_cache_dir",
    "delete_topics",
    "load_settings",
    "render_server_properties",
    "shared_broker",
]
