"""Faults the simulator can be told to inject, and a token bucket for 20429."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class FaultMode(enum.StrEnum):
    """What goes wrong: an HTTP error before processing, or a hang after it."""

    HTTP_429 = "429"
    HTTP_500 = "500"
    HTTP_503 = "503"
    # The message is created (and later delivered) but the answer never comes
    # in time: exactly the case where a client cannot know whether it sent.
    TIMEOUT = "timeout"


@dataclass(slots=True)
class Fault:
    """One injected fault, for the next ``count`` API requests or for ``seconds``.

    With neither, it lasts until cleared.
    """

    mode: FaultMode
    count: int | None = None
    seconds: float | None = None
    hang: float = 30.0
    _until: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("a fault count must be at least 1")
        if self.seconds is not None:
            if self.seconds <= 0:
                raise ValueError("a fault duration must be positive")
            self._until = time.monotonic() + self.seconds
        if self.hang <= 0:
            raise ValueError("a hang must be positive")

    @property
    def active(self) -> bool:
        """Whether the fault still applies."""
        if self.count is not None and self.count <= 0:
            return False
        return self._until is None or time.monotonic() < self._until

    def consume(self) -> None:
        """Use up one occurrence of a counted fault."""
        if self.count is not None:
            self.count -= 1

    def describe(self) -> dict[str, object]:
        """Return the fault as JSON for the admin endpoint."""
        remaining = None if self._until is None else max(self._until - time.monotonic(), 0.0)
        return {"mode": str(self.mode), "count": self.count, "seconds_left": remaining}


class TokenBucket:
    """Twilio's per-account request rate, in requests per second with a burst of one second."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("a rate limit must be positive")
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Take one token; False means the request is over the rate."""
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
