"""Per-touchpoint figures for the public open-data feed, with their uncertainty.

Public figures are read by people who cannot see the raw answers, so every
figure carries a 95 % interval, and a touchpoint with too few answers is
listed without figures: with a handful of answers a single person's rating
could be told apart.

- CSAT share (answers in the top two boxes): Wilson score interval, sound for
  small samples and shares near 0 or 1 (the detector's own function).
- Mean score: Student's t interval with the sample standard deviation, the
  t quantile from the Cornish-Fisher expansion of Abramowitz & Stegun 26.7.5
  (within 0.001 of the tables from 4 degrees of freedom, 0.004 at 3), clamped
  to the scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import TYPE_CHECKING

from engine.detection import wilson_interval

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from schemas.base import Scale

#: Bumped when a field changes meaning or disappears; new fields keep the version.
FEED_VERSION = "1.0"
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Answer:
    """The latest rating of one survey, as the feed needs it."""

    touchpoint_id: str
    scale: Scale
    score: int
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class OpenScore:
    """One touchpoint's line of the feed; all figures are None when suppressed."""

    touchpoint_id: str
    name: str | None
    scale: Scale | None
    suppressed: bool
    count: int | None = None
    mean: float | None = None
    mean_low: float | None = None
    mean_high: float | None = None
    csat_share: float | None = None
    csat_low: float | None = None
    csat_high: float | None = None


def t_quantile(probability: float, freedom: int) -> float:
    """Student's t quantile (upper tail ``1 - probability``), without SciPy."""
    z = NormalDist().inv_cdf(probability)
    v = float(freedom)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


def mean_interval(scores: list[int], scale: Scale) -> tuple[float, float] | None:
    """95 % t interval of the mean, clamped to the scale; None below two answers."""
    n = len(scores)
    if n < 2:  # noqa: PLR2004 - a standard deviation needs two values
        return None
    mean = sum(scores) / n
    spread = math.sqrt(sum((score - mean) ** 2 for score in scores) / (n - 1))
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1) * spread / math.sqrt(n)
    return max(float(scale.low), mean - half), min(float(scale.high), mean + half)


def _figures(touchpoint_id: str, name: str | None, answers: list[Answer]) -> OpenScore:
    scale = answers[-1].scale
    scores = [answer.score for answer in answers if answer.scale is scale]
    n = len(scores)
    top_two = sum(1 for score in scores if score >= scale.high - 1)
    csat_low, csat_high = wilson_interval(top_two, n, NormalDist().inv_cdf(0.975))
    interval = mean_interval(scores, scale)
    return OpenScore(
        touchpoint_id=touchpoint_id,
        name=name,
        scale=scale,
        suppressed=False,
        count=n,
        mean=sum(scores) / n,
        mean_low=None if interval is None else interval[0],
        mean_high=None if interval is None else interval[1],
        csat_share=top_two / n,
        csat_low=csat_low,
        csat_high=csat_high,
    )


def open_scores(
    answers: Iterable[Answer],
    *,
    now: datetime,
    days: int,
    min_answers: int,
    catalogue: Mapping[str, str | None],
) -> list[OpenScore]:
    """Figures of the last ``days`` per touchpoint, sorted by id.

    Every catalogued touchpoint is listed, answered or not; one with fewer
    than ``min_answers`` answers (on its latest scale) is suppressed.
    """
    since = now - timedelta(days=days)
    recent: dict[str, list[Answer]] = {}
    for answer in answers:
        if since <= answer.answered_at <= now:
            recent.setdefault(answer.touchpoint_id, []).append(answer)
    lines = []
    for touchpoint_id in sorted(set(recent) | set(catalogue)):
        mine = sorted(recent.get(touchpoint_id, []), key=lambda answer: answer.answered_at)
        name = catalogue.get(touchpoint_id)
        on_scale = [answer for answer in mine if mine and answer.scale is mine[-1].scale]
        if len(on_scale) < min_answers or not on_scale:
            scale = mine[-1].scale if mine else None
            lines.append(OpenScore(touchpoint_id, name, scale, suppressed=True))
        else:
            lines.append(_figures(touchpoint_id, name, on_scale))
    return lines
