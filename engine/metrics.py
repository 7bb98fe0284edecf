"""Rolling metrics over explicit time buckets, exact under restarts and changed answers.

Why not faust windowed tables: their expiry runs on the wall clock and keys
recovered from a changelog never expire (see DESIGN.md). Here a state is a
plain value per ``(dimension, key)``: integer counts per time bucket, which a
plain table can hold and its changelog can restore. Counts are integers, so a
retraction is exact and the order in which ratings arrive never matters.

Buckets come in tiers: five-minute buckets kept for a day serve the short
windows, hourly buckets kept for 28 days serve the long ones. A window of
length ``W`` is the ``W / width`` most recent buckets of the finest tier that
retains it, the bucket holding ``now`` included; so it covers between
``W - width`` and ``W`` of time and never a bucket at or before ``now - W``.

Answer times go into log-spaced bins, eight per doubling (each bin spans a
ratio of 2^(1/8) ≈ 1.09), so the median is reported to within ±4.5 % of the
true value, in bounded space however many ratings a window holds.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from schemas.base import Scale
from schemas.metrics import Dimension, TouchpointMetrics

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from schemas.responses import Rating

#: Bins per doubling of the answer time: precision of the median is ±(2^(1/16) - 1).
BINS_PER_DOUBLING = 8

_HOUR = 3_600
_DAY = 86_400

#: The windows the metrics stage reports by default.
DEFAULT_WINDOWS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=24),
    timedelta(days=7),
    timedelta(days=28),
)


@dataclass(frozen=True)
class Tier:
    """Buckets of one width, kept for one retention."""

    width_seconds: int
    retention_seconds: int

    def __post_init__(self) -> None:
        if self.width_seconds <= 0 or self.retention_seconds % self.width_seconds:
            raise ValueError("a tier's retention must be a positive multiple of its width")


#: Five-minute buckets for a day, hourly ones for 28 days.
DEFAULT_TIERS: tuple[Tier, ...] = (Tier(300, 86_400), Tier(3_600, 28 * 86_400))


@dataclass
class Bucket:
    """Counts of one time bucket: ratings by score, answer times by bin, surveys sent."""

    scores: dict[int, int] = field(default_factory=dict)
    answer_bins: dict[int, int] = field(default_factory=dict)
    sent: int = 0

    def is_empty(self) -> bool:
        """Tell whether the bucket can be dropped without changing any figure."""
        return not self.scores and not self.answer_bins and not self.sent

    def copy(self) -> Bucket:
        """Return an independent copy (states are treated as values)."""
        return Bucket(dict(self.scores), dict(self.answer_bins), self.sent)


@dataclass
class MetricsState:
    """Everything needed for the figures of one touchpoint, channel or service.

    Functions in this module never mutate a state they are given: they return
    a new one, sharing the buckets they did not touch.
    """

    scale: Scale
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    #: tier width in seconds -> bucket index (start // width) -> bucket
    buckets: dict[int, dict[int, Bucket]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able form for a table's changelog."""
        return {
            "scale": self.scale.value,
            "tiers": [[tier.width_seconds, tier.retention_seconds] for tier in self.tiers],
            "buckets": {
                str(width): {
                    str(index): {
                        "scores": {str(s): c for s, c in bucket.scores.items()},
                        "answer_bins": {str(b): c for b, c in bucket.answer_bins.items()},
                        "sent": bucket.sent,
                    }
                    for index, bucket in sorted(by_index.items())
                }
                for width, by_index in sorted(self.buckets.items())
            },
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MetricsState:
        """Rebuild a state from :meth:`to_dict` output (after a restart)."""
        return cls(
            scale=Scale(raw["scale"]),
            tiers=tuple(Tier(int(width), int(keep)) for width, keep in raw["tiers"]),
            buckets={
                int(width): {
                    int(index): Bucket(
                        {int(s): int(c) for s, c in bucket["scores"].items()},
                        {int(b): int(c) for b, c in bucket["answer_bins"].items()},
                        int(bucket["sent"]),
                    )
                    for index, bucket in by_index.items()
                }
                for width, by_index in raw["buckets"].items()
            },
        )


def new_state(scale: Scale, tiers: tuple[Tier, ...] = DEFAULT_TIERS) -> MetricsState:
    """Start an empty state for one key."""
    return MetricsState(scale=scale, tiers=tiers)


def answer_bin(seconds: float) -> int:
    """Return the log-spaced bin of an answer time; bin 0 holds everything under a second."""
    if seconds < 1.0:
        return 0
    return math.floor(math.log2(seconds) * BINS_PER_DOUBLING) + 1


def bin_value(index: int) -> float:
    """Return the representative answer time of a bin: the geometric middle of its bounds."""
    if index == 0:
        return 0.5
    return float(2.0 ** ((index - 1 + 0.5) / BINS_PER_DOUBLING))


def _epoch(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def _changed(state: MetricsState, at: datetime, change: Callable[[Bucket], None]) -> MetricsState:
    """Copy-on-write: apply ``change`` to a fresh copy of the bucket holding ``at`` in each tier."""
    seconds = _epoch(at)
    buckets = dict(state.buckets)
    for tier in state.tiers:
        by_index = dict(buckets.get(tier.width_seconds, {}))
        index = seconds // tier.width_seconds
        bucket = by_index[index].copy() if index in by_index else Bucket()
        change(bucket)
        if bucket.is_empty():
            by_index.pop(index, None)
        else:
            by_index[index] = bucket
        buckets[tier.width_seconds] = by_index
    return MetricsState(scale=state.scale, tiers=state.tiers, buckets=buckets)


def _bump(counts: dict[int, int], key: int, delta: int) -> None:
    value = counts.get(key, 0) + delta
    if value > 0:
        counts[key] = value
    else:
        counts.pop(key, None)


def apply_rating(
    state: MetricsState, rating: Rating, previous: Rating | None = None
) -> MetricsState:
    """Count a rating, retracting the revision it replaces.

    ``previous`` is the latest revision already counted for the same survey
    (the caller keeps it, keyed by survey id). A rating that is not newer
    than ``previous`` is a replay and changes nothing; a rating on another
    scale than the state's belongs to another key and changes nothing either.
    """
    if rating.scale is not state.scale:
        return state
    if previous is not None:
        if previous.revision >= rating.revision:
            return state
        state = _retract(state, previous)
    answer = answer_bin(rating.answered_after_seconds)

    def add(bucket: Bucket) -> None:
        _bump(bucket.scores, rating.score, 1)
        _bump(bucket.answer_bins, answer, 1)

    return _changed(state, rating.answered_at, add)


def _retract(state: MetricsState, previous: Rating) -> MetricsState:
    answer = answer_bin(previous.answered_after_seconds)

    def remove(bucket: Bucket) -> None:
        # A bucket already expired (or never seen) has nothing to take back.
        if bucket.scores.get(previous.score, 0) > 0:
            _bump(bucket.scores, previous.score, -1)
            _bump(bucket.answer_bins, answer, -1)

    return _changed(state, previous.answered_at, remove)


def apply_sent(state: MetricsState, sent_at: datetime, count: int = 1) -> MetricsState:
    """Count surveys sent (the denominator of the response rate)."""

    def add(bucket: Bucket) -> None:
        bucket.sent += count

    return _changed(state, sent_at, add)


def expire(state: MetricsState, now: datetime) -> MetricsState:
    """Drop the buckets that no window can reach any more."""
    seconds = _epoch(now)
    buckets: dict[int, dict[int, Bucket]] = {}
    for tier in state.tiers:
        first_kept = seconds // tier.width_seconds - tier.retention_seconds // tier.width_seconds
        kept = state.buckets.get(tier.width_seconds, {})
        buckets[tier.width_seconds] = {i: b for i, b in kept.items() if i > first_kept}
    return MetricsState(scale=state.scale, tiers=state.tiers, buckets=buckets)


def merge(states: Iterable[MetricsState]) -> MetricsState | None:
    """Add up states of one key that were counted apart, none when there are none.

    A roll-up (channel, service) is counted in parts, one per partition of
    its touchpoints' ratings, so that each rating is handled in one place
    only; the parts hold disjoint ratings, and counts add, so the sum is the
    state one counter would have reached.
    """
    merged: MetricsState | None = None
    for state in states:
        if merged is None:
            merged = MetricsState(scale=state.scale, tiers=state.tiers)
        if state.scale is not merged.scale or state.tiers != merged.tiers:
            raise ValueError("only states of one scale and one set of tiers add up")
        for width, by_index in state.buckets.items():
            into = merged.buckets.setdefault(width, {})
            for index, bucket in by_index.items():
                total = into.setdefault(index, Bucket())
                for score, count in bucket.scores.items():
                    _bump(total.scores, score, count)
                for answer, count in bucket.answer_bins.items():
                    _bump(total.answer_bins, answer, count)
                total.sent += bucket.sent
    return merged


def window_label(window: timedelta) -> str:
    """Name a window as the metrics topic keys it: 1h, 24h, 7d, 28d, 15m."""
    seconds = int(window.total_seconds())
    if seconds <= 0 or seconds % 60:
        raise ValueError("a window is a positive whole number of minutes")
    if seconds % _DAY == 0 and seconds > _DAY:
        return f"{seconds // _DAY}d"
    if seconds % _HOUR == 0:
        return f"{seconds // _HOUR}h"
    return f"{seconds // 60}m"


def window_buckets(state: MetricsState, window: timedelta, now: datetime) -> list[Bucket]:
    """Return the buckets a window covers (see the module docstring for the exact span)."""
    seconds = int(window.total_seconds())
    for tier in state.tiers:
        if seconds <= tier.retention_seconds and seconds % tier.width_seconds == 0:
            last = _epoch(now) // tier.width_seconds
            first = last - seconds // tier.width_seconds + 1
            by_index = state.buckets.get(tier.width_seconds, {})
            return [bucket for index, bucket in by_index.items() if first <= index <= last]
    raise ValueError(f"no tier retains a {window_label(window)} window in whole buckets")


@dataclass(frozen=True)
class Totals:
    """Sums over the buckets of one window."""

    scores: dict[int, int]
    answer_bins: dict[int, int]
    sent: int

    @property
    def count(self) -> int:
        """Number of ratings (latest revisions only)."""
        return sum(self.scores.values())


def totals(buckets: Iterable[Bucket]) -> Totals:
    """Add buckets up."""
    scores: dict[int, int] = {}
    answer_bins: dict[int, int] = {}
    sent = 0
    for bucket in buckets:
        for score, count in bucket.scores.items():
            scores[score] = scores.get(score, 0) + count
        for index, count in bucket.answer_bins.items():
            answer_bins[index] = answer_bins.get(index, 0) + count
        sent += bucket.sent
    return Totals(scores, answer_bins, sent)


def _median_answer(answer_bins: Mapping[int, int]) -> float | None:
    count = sum(answer_bins.values())
    if not count:
        return None
    wanted = {(count - 1) // 2, count // 2}
    found: list[float] = []
    seen = 0
    for index in sorted(answer_bins):
        following = seen + answer_bins[index]
        found.extend(bin_value(index) for position in wanted if seen <= position < following)
        seen = following
    return sum(found) / len(found)


def snapshot(
    state: MetricsState,
    window: timedelta,
    now: datetime,
    *,
    key: str,
    dimension: Dimension = Dimension.TOUCHPOINT,
) -> TouchpointMetrics:
    """Compute the figures of one window as of ``now``."""
    window_totals = totals(window_buckets(state, window, now))
    count = window_totals.count
    scale = state.scale
    mean = csat = nps = None
    if count:
        mean = sum(score * n for score, n in window_totals.scores.items()) / count
        top_two = sum(n for score, n in window_totals.scores.items() if score >= scale.high - 1)
        csat = top_two / count
        if scale is Scale.NPS_11:
            promoters = sum(n for score, n in window_totals.scores.items() if score >= 9)  # noqa: PLR2004 - NPS definition
            detractors = sum(n for score, n in window_totals.scores.items() if score <= 6)  # noqa: PLR2004 - NPS definition
            nps = 100.0 * (promoters - detractors) / count
    return TouchpointMetrics(
        dimension=dimension,
        key=key,
        window=window_label(window),
        as_of=now,
        scale=scale,
        count=count,
        mean=mean,
        distribution={str(score): n for score, n in sorted(window_totals.scores.items())},
        csat_share=csat,
        nps=nps,
        surveys_sent=window_totals.sent,
        response_rate=count / window_totals.sent if window_totals.sent else None,
        median_answer_seconds=_median_answer(window_totals.answer_bins),
    )


#: Short enough that a scale suffix still fits the 128 characters of an Identifier.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}$")


def key_of(name: str) -> str:
    """Turn a free-text name (a service) into a metrics key.

    A name that already is an identifier is kept; any other gets a readable
    slug plus a short hash, so two names never share a key.
    """
    if _IDENTIFIER.match(name):
        return name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100] or "x"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{slug}.{digest}"


def rollup_keys(
    touchpoint_id: str, channel: str, service: str, scale: Scale
) -> list[tuple[Dimension, str]]:
    """Return every ``(dimension, key)`` a touchpoint's ratings and sends count towards.

    A roll-up mixes touchpoints, which may use different scales; means on
    different scales do not add up, so a roll-up on another scale than the
    default 1-5 gets the scale in its key (``phone.nps-11``).
    """
    suffix = "" if scale is Scale.CSAT_5 else f".{scale.value}"
    return [
        (Dimension.TOUCHPOINT, touchpoint_id),
        (Dimension.CHANNEL, f"{channel}{suffix}"),
        (Dimension.SERVICE, f"{key_of(service)}{suffix}"),
    ]


def rating_keys(rating: Rating) -> list[tuple[Dimension, str]]:
    """Return the touchpoint, channel and service keys one rating counts towards."""
    return rollup_keys(
        rating.touchpoint_id, rating.touchpoint_channel.value, rating.service, rating.scale
    )
