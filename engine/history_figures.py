"""Figures of any span of the history, computed when they are read, with 95 % intervals.

The history holds counts per score (:mod:`engine.history`); a span (an
hour, a day, a week, a year) is the sum of its buckets, a :class:`Tally`,
and its figures come from that sum:

- **mean** score, with Student's t interval from the counts' own standard
  deviation (:func:`engine.opendata.t_quantile`), clamped to the scale;
- **CSAT** share, the top two boxes (4-5 of 1-5), with the Wilson interval;
- **NPS** on ``nps-11``: promoters (9-10) minus detractors (0-6), in
  points, with the normal interval of the mean of +100 / 0 / -100 per answer;
- **CES** on ``ces-7`` is the mean effort score (1-7, higher is easier, as
  in CES 2.0), with the mean's interval; beside it the share of answers that
  found it easy (5-7, agreeing with the effort statement), with the Wilson
  interval, in the place CSAT has on other scales;
- the **response rate**: answers over surveys sent (the ``all`` group only).

An interval needs two answers; below that it is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Final

from engine.detection import wilson_interval
from engine.opendata import t_quantile
from schemas.base import Scale

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

CONFIDENCE: Final = 0.95
_Z: Final = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
#: NPS: promoters score at least this, detractors at most the other.
PROMOTER: Final = 9
DETRACTOR: Final = 6
#: CES: an answer of at least this on 1-7 found it easy.
EASY: Final = 5
_MIN_FOR_INTERVAL: Final = 2


@dataclass
class Tally:
    """Answers per score and surveys sent over a span; tallies add up."""

    scale: Scale
    scores: dict[int, int] = field(default_factory=dict)
    sent: int = 0

    @property
    def count(self) -> int:
        """Answers in the span."""
        return sum(self.scores.values())

    def add(self, scores: Mapping[int, int], sent: int) -> None:
        """Add a bucket's counts."""
        for score, n in scores.items():
            self.scores[score] = self.scores.get(score, 0) + n
        self.sent += sent


def tally(scale: Scale, buckets: Iterable[tuple[Mapping[int, int], int]]) -> Tally:
    """Add buckets of one scale up."""
    total = Tally(scale)
    for scores, sent in buckets:
        total.add(scores, sent)
    return total


@dataclass(frozen=True, slots=True)
class Estimate:
    """A figure and its 95 % interval (None bounds: too few answers)."""

    value: float
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class Figures:
    """What the console shows of a span."""

    scale: Scale
    count: int
    sent: int
    mean: Estimate | None
    csat: Estimate | None
    nps: Estimate | None
    easy: Estimate | None
    response_rate: float | None
    distribution: dict[int, int]

    @property
    def headline(self) -> Estimate | None:
        """Give the figure the scale is read by: NPS on nps-11, else the mean (CES on ces-7)."""
        return self.nps if self.scale is Scale.NPS_11 else self.mean

    @property
    def share(self) -> Estimate | None:
        """Give the share the scale is judged by: the easy share on ces-7, CSAT otherwise."""
        return self.easy if self.scale is Scale.CES_7 else self.csat


def _share(successes: int, n: int) -> Estimate | None:
    if n == 0:
        return None
    if n < _MIN_FOR_INTERVAL:
        return Estimate(successes / n, None, None)
    low, high = wilson_interval(successes, n, _Z)
    return Estimate(successes / n, low, high)


def _mean(scores: Mapping[int, int], scale: Scale) -> Estimate | None:
    n = sum(scores.values())
    if n == 0:
        return None
    mean = sum(score * k for score, k in scores.items()) / n
    if n < _MIN_FOR_INTERVAL:
        return Estimate(mean, None, None)
    variance = sum(k * (score - mean) ** 2 for score, k in scores.items()) / (n - 1)
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1) * math.sqrt(variance / n)
    return Estimate(mean, max(float(scale.low), mean - half), min(float(scale.high), mean + half))


def _nps(scores: Mapping[int, int]) -> Estimate | None:
    n = sum(scores.values())
    if n == 0:
        return None
    promoters = sum(k for score, k in scores.items() if score >= PROMOTER) / n
    detractors = sum(k for score, k in scores.items() if score <= DETRACTOR) / n
    value = 100.0 * (promoters - detractors)
    if n < _MIN_FOR_INTERVAL:
        return Estimate(value, None, None)
    variance = promoters + detractors - (promoters - detractors) ** 2
    half = 100.0 * _Z * math.sqrt(max(0.0, variance) / n)
    return Estimate(value, max(-100.0, value - half), min(100.0, value + half))


def figures(total: Tally) -> Figures:
    """Compute every figure of a span from its tally."""
    scale = total.scale
    n = total.count
    scores = total.scores
    top_two = sum(k for score, k in scores.items() if score >= scale.high - 1)
    easy = sum(k for score, k in scores.items() if score >= EASY)
    return Figures(
        scale=scale,
        count=n,
        sent=total.sent,
        mean=_mean(scores, scale),
        csat=_share(top_two, n),
        nps=_nps(scores) if scale is Scale.NPS_11 else None,
        easy=_share(easy, n) if scale is Scale.CES_7 else None,
        response_rate=n / total.sent if total.sent else None,
        distribution=dict(sorted(scores.items())),
    )
