"""Errors of the local Kafka tooling.

Every failure a developer can fix (a missing tool, a busy port, no network)
gets its own class, so the command line prints one clear sentence and tests can
assert on the kind of failure rather than on its wording.
"""

from __future__ import annotations


class LocalKafkaError(Exception):
    """Root of everything that stops the local broker from starting or stopping."""


class KafkaSettingsError(LocalKafkaError, ValueError):
    """The settings contradict each other (a misuse, hence also ``ValueError``)."""


class ToolMissingError(LocalKafkaError):
    """A program the broker needs (java, mvn) is not installed or too old."""


class JarFetchError(LocalKafkaError):
    """Maven could not put the broker's jars into the cache."""


class PortTakenError(LocalKafkaError):
    """Something that is not our broker already listens on a port we need."""


class BrokerStartError(LocalKafkaError):
    """The broker was launched but never answered, or died while starting."""


class BrokerStopError(LocalKafkaError):
    """Our broker process survived every signal we sent it."""


class TopicAdminError(LocalKafkaError):
    """The broker refused to create or delete a topic."""


class ToolRunError(LocalKafkaError):
    """One of Kafka's own Java tools (ConsumerPerformance ...) failed or printed no result."""
