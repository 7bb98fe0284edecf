"""Shared building blocks of every event model.

Every model is frozen and forbids unknown fields: an event is a fact that
never changes after it is written, and a misspelt field must fail loudly at the
edge instead of being silently dropped deep inside the pipeline.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

#: How far in the future an event time may lie before it is taken for a clock
#: error at the producer. Small skews between hosts are normal; hours are not.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class Event(BaseModel):
    """Base of all event and value models: immutable, strict about fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Language(StrEnum):
    """Languages a citizen can be served in (Northern Sámi is optional per touchpoint)."""

    FI = "fi"
    SV = "sv"
    EN = "en"
    SE = "se"  # Northern Sámi, davvisámegiella


class Scale(StrEnum):
    """Rating scales. The value names the instrument, the bounds follow from it."""

    CSAT_5 = "csat-5"  # 1..5, the default customer-satisfaction scale
    NPS_11 = "nps-11"  # 0..10, likelihood to recommend
    CES_7 = "ces-7"  # 1..7, customer effort
    SMILEY_4 = "smiley-4"  # 1..4, four faces from very unhappy to very happy

    @property
    def low(self) -> int:
        """Lowest score on the scale."""
        return 0 if self is Scale.NPS_11 else 1

    @property
    def high(self) -> int:
        """Highest score on the scale."""
        return {Scale.CSAT_5: 5, Scale.NPS_11: 10, Scale.CES_7: 7, Scale.SMILEY_4: 4}[self]

    def contains(self, score: int) -> bool:
        """Tell whether a raw score lies on this scale."""
        return self.low <= score <= self.high

    def normalise(self, score: int) -> float:
        """Map a raw score onto 0..1 so that touchpoints on different scales compare."""
        if not self.contains(score):
            raise ValueError(f"score {score} is outside the {self.value} scale")
        return (score - self.low) / (self.high - self.low)


class SurveyChannel(StrEnum):
    """How a survey reaches the citizen."""

    SMS = "sms"
    EMAIL = "email"


def _aware_and_not_future(value: datetime, info: ValidationInfo) -> datetime:
    """Reject naive timestamps and ones far in the future.

    A naive timestamp is ambiguous by up to three hours in Finland (and shifts
    with daylight saving), which would move surveys into quiet hours. A
    far-future one is a producer's clock error. ``now`` comes from the
    validation context when the caller has one (tests, replays); otherwise the
    wall clock is the only reference there is.
    """
    _aware(value)
    context = info.context if isinstance(info.context, dict) else {}
    now = context.get("now")
    reference = now if isinstance(now, datetime) else datetime.now(UTC)
    if value - reference > MAX_CLOCK_SKEW:
        raise PydanticCustomError(
            "future_timestamp",
            "timestamp is more than {minutes} minutes in the future; check the producer's clock",
            {"minutes": int(MAX_CLOCK_SKEW.total_seconds() // 60)},
        )
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise PydanticCustomError(
            "naive_timestamp", "timestamp has no time zone; send RFC 3339 with an offset or Z"
        )
    return value


#: A past or present instant with an explicit offset (event and contact times).
PastTimestamp = Annotated[datetime, AfterValidator(_aware_and_not_future)]

#: Any instant with an explicit offset (scheduled send times lie in the future).
Timestamp = Annotated[datetime, AfterValidator(_aware)]

#: Identifiers that travel in Kafka keys, URLs and logs: short, printable, no spaces.
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"),
]

#: A pseudonymous citizen key: hex of a keyed HMAC, never a phone number or an address.
CitizenKey = Annotated[str, Field(pattern=r"^[0-9a-f]{32,64}$")]


def _no_control_characters(value: str) -> str:
    """Refuse line breaks and other control characters in one-line texts.

    Names end up in email headers, SMS bodies and log lines: a CR/LF there is
    header injection, and the other control characters are never legitimate.
    """
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise PydanticCustomError(
            "control_characters", "contains control characters (line breaks, tabs or similar)"
        )
    return value


#: Names shown to people: one line, bounded so one event stays small.
ShortText = Annotated[
    str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)
]
