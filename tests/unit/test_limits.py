"""Rate limits of the public endpoints: per client, refilling, bounded in memory."""

from __future__ import annotations

import pytest

from connectors.web.limits import ClientRateLimiter


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_client_past_its_burst_waits_and_others_are_not_affected() -> None:
    """One flooding address must not lock everyone else out."""
    clock = _Clock()
    limiter = ClientRateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") is None
    clock.now = 0.5
    assert limiter.take("a") is None


def test_the_table_forgets_the_least_recently_seen_client_first() -> None:
    """Public pages see any number of addresses; memory must stay bounded."""
    limiter = ClientRateLimiter(1.0, 1, max_clients=2, clock=_Clock())
    assert limiter.take("a") is None
    assert limiter.take("b") is None
    assert limiter.take("a") is not None  # a is now the most recent
    assert limiter.take("c") is None  # b is forgotten
    assert len(limiter) == 2
    assert limiter.take("b") is None  # a full bucket again
    assert limiter.take("a") is None  # forgotten in turn when b came back


def test_nonsense_limits_are_refused() -> None:
    """A zero rate would divide by zero at the first refusal."""
    with pytest.raises(ValueError, match="positive"):
        ClientRateLimiter(0.0, 1)
