"""Dead letters as values: the headers that say why a record was set aside.

Pure (no Kafka client): the runtime's checkpoint and the worker's guard
both build dead letters here, so every dead letter has the same form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from schemas.deadletter import HEADER_PREFIX, DeadLetter

if TYPE_CHECKING:
    from datetime import datetime

#: The reason code of a record whose handler raised. The error's class is in
#: the reason and in a header of its own.
HANDLER_FAILED = "handler_failed"
#: The dead-letter reason header is bounded by the DeadLetter model.
_MAX_REASON = 2000

Header = tuple[str, bytes | None]


def handler_failed(label: str, error: BaseException) -> str:
    """Say why a record whose handler raised was set aside, naming the class, never the message.

    The message may quote the record (a phone number in a validation error).
    """
    return f"{type(error).__name__} raised in stage {label} while handling the record"


class SourceRecord(Protocol):
    """What a dead letter needs of the record it sets aside (a faust or aiokafka message)."""

    @property
    def topic(self) -> str:
        """The topic it was read from."""

    @property
    def partition(self) -> int:
        """Its partition."""

    @property
    def offset(self) -> int:
        """Its offset."""

    @property
    def key(self) -> bytes | None:
        """Its key, as it came."""

    @property
    def value(self) -> bytes | None:
        """Its value, as it came."""

    @property
    def headers(self) -> Any:
        """Its headers, in whatever form the client library gives them."""


def kafka_headers(headers: Any) -> list[Header]:
    """Give a record's headers as the list of ``(name, value)`` pairs a producer takes.

    aiokafka hands headers over as a tuple of ``(str, bytes | None)`` pairs;
    faust sometimes as a mapping; a client may repeat a name or leave a value
    ``None``. The producer wants a list, and a tuple passed on as it came
    raised in the middle of a stage. Repeated names and ``None`` values are
    kept as they came.
    """
    if not headers:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(str(name), None if value is None else bytes(value)) for name, value in items]


def dead_letter_headers(
    record: SourceRecord,
    stage: str,
    *,
    reason_code: str,
    reason: str,
    now: datetime,
    error_class: str | None = None,
) -> list[Header]:
    """Keep the record's own headers and add why, and by which stage, it was set aside."""
    letter = DeadLetter(
        stage=stage,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        reason_code=reason_code[:64],
        reason=reason[:_MAX_REASON],
        failed_at=now,
        error_class=error_class,
    )
    kept = [(name, value) for name, value in kafka_headers(record.headers)]
    kept = [(name, value) for name, value in kept if not name.startswith(HEADER_PREFIX)]
    return [*kept, *letter.to_headers()]
