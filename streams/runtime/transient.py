"""Which failures are the infrastructure's, to be waited out, rather than a batch's own.

Kept apart from :mod:`streams.runtime.checkpoint`, which the in-memory
runtime loads without any Kafka client: the Kafka implementations pass
:func:`is_transient` to :func:`~streams.runtime.checkpoint.run_batch`.
"""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError, KafkaError

from connectors.errors import ConnectorError


def is_transient(error: BaseException) -> bool:
    """Tell whether a failure is the infrastructure's (retry) rather than the record's."""
    if isinstance(error, KafkaConnectionError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, KafkaError | ConnectorError):
        return bool(getattr(error, "retriable", False))
    return False
