"""DeadLetter: a record that could not be processed, kept whole.

The dead-letter record's value is the original bytes, untouched, and its key
is the original key; this model is what the headers say about it. The reason
never quotes the input: bad input may hold a phone number or an identity code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from schemas.base import Event, Timestamp

if TYPE_CHECKING:
    from collections.abc import Sequence

HEADER_PREFIX = "palaute.dlq."


class DeadLetter(Event):
    """Why a record was set aside, and where it came from."""

    type: Literal["DeadLetter"] = "DeadLetter"
    stage: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="The stage that gave up, e.g. intake."
    )
    source_topic: Annotated[str, Field(min_length=1, max_length=249)]
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    reason_code: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    failed_at: Timestamp
    error_class: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="The class of the error a handler raised, when one did (never its message).",
    )

    def to_headers(self) -> list[tuple[str, bytes]]:
        """Render as Kafka headers, one per field, for the dead-letter record."""
        data = self.model_dump(mode="json", exclude={"type"}, exclude_none=True)
        return [(f"{HEADER_PREFIX}{name}", str(value).encode()) for name, value in data.items()]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes | None]]) -> DeadLetter:
        """Read the model back from a dead-letter record's headers."""
        fields = {
            name.removeprefix(HEADER_PREFIX): value.decode()
            for name, value in headers
            if name.startswith(HEADER_PREFIX) and value is not None
        }
        return cls.model_validate(fields)
