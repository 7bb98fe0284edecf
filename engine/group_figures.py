"""Figures of each breakdown group and of each follow-up statement, small groups suppressed.

The console shows a touchpoint's figures per team, case type, answer channel
and queue-wait band (:mod:`engine.breakdowns`), and the distribution of the
answers to each follow-up statement. A group is a smaller crowd than the
touchpoint: with a handful of answers one person's rating could be told
apart (a team of three, a case type seen twice a week). So the rule of the
open-data feed (:mod:`engine.opendata`) applies: a group with fewer than
``min_answers`` answers in the period is shown without figures, and so is a
statement with fewer answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from engine.breakdowns import DIMENSIONS, wait_bands
from engine.detection import wilson_interval
from schemas.responses import STATEMENT_HIGH, STATEMENT_LOW

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    from schemas.base import Scale

_Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True, slots=True)
class GroupAnswer:
    """The latest rating of one survey with the groups it counts in."""

    groups: tuple[tuple[str, str], ...]
    scale: Scale
    score: int
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One group's line; figures are None when suppressed."""

    dimension: str
    value: str
    suppressed: bool
    count: int | None = None
    mean: float | None = None
    csat_share: float | None = None
    csat_low: float | None = None
    csat_high: float | None = None


def _figures(dimension: str, value: str, scores: list[int], scale: Scale) -> GroupFigures:
    n = len(scores)
    top_two = sum(1 for score in scores if score >= scale.high - 1)
    low, high = wilson_interval(top_two, n, _Z95)
    return GroupFigures(
        dimension,
        value,
        suppressed=False,
        count=n,
        mean=sum(scores) / n,
        csat_share=top_two / n,
        csat_low=low,
        csat_high=high,
    )


def _order(dimension: str, values: Iterable[str], wait_limits: Sequence[int]) -> list[str]:
    if dimension == "queue_wait":
        bands = wait_bands(wait_limits)
        return sorted(values, key=lambda band: bands.index(band) if band in bands else len(bands))
    # "other" last, the named values alphabetically.
    return sorted(values, key=lambda value: (value == "other", value.casefold()))


def group_figures(
    answers: Iterable[GroupAnswer],
    *,
    since: datetime,
    until: datetime,
    min_answers: int,
    wait_limits: Sequence[int],
) -> list[GroupFigures]:
    """Figures per group of the answers in ``[since, until)``, on the latest answer's scale.

    Groups come in the console's order: the whole touchpoint, then each
    dimension of :data:`engine.breakdowns.DIMENSIONS` with its values.
    """
    chosen = sorted(
        (answer for answer in answers if since <= answer.answered_at < until),
        key=lambda answer: answer.answered_at,
    )
    if not chosen:
        return []
    scale = chosen[-1].scale
    counts: dict[tuple[str, str], dict[int, int]] = {}
    for answer in chosen:
        if answer.scale is not scale:
            continue
        for group in answer.groups:
            mine = counts.setdefault(group, {})
            mine[answer.score] = mine.get(answer.score, 0) + 1
    return group_lines(counts, scale, min_answers=min_answers, wait_limits=wait_limits)


def group_lines(
    counts: Mapping[tuple[str, str], Mapping[int, int]],
    scale: Scale,
    *,
    min_answers: int,
    wait_limits: Sequence[int],
) -> list[GroupFigures]:
    """Give each group's line from its answers per score, in the console's order.

    The whole touchpoint first, then each dimension of
    :data:`engine.breakdowns.DIMENSIONS`; a group without answers is left out.
    """
    lines = []
    for dimension in ("all", *DIMENSIONS):
        values = [
            value for (d, value), mine in counts.items() if d == dimension and any(mine.values())
        ]
        for value in _order(dimension, values, wait_limits):
            scores = [
                score for score, n in sorted(counts[(dimension, value)].items()) for _ in range(n)
            ]
            if len(scores) < min_answers:
                lines.append(GroupFigures(dimension, value, suppressed=True))
            else:
                lines.append(_figures(dimension, value, scores, scale))
    return lines


@dataclass(frozen=True, slots=True)
class StatementAnswer:
    """The latest agreement of one survey with one statement."""

    statement_index: int
    score: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StatementFigures:
    """One statement's distribution (agreement 1..5); empty when suppressed."""

    statement_index: int
    suppressed: bool
    count: int
    distribution: tuple[int, ...] = ()
    mean: float | None = None
    agree_share: float | None = None


def statement_figures(
    answers: Iterable[StatementAnswer],
    *,
    statements: int,
    since: datetime,
    until: datetime,
    min_answers: int,
) -> list[StatementFigures]:
    """Distribution of each of the touchpoint's ``statements`` over ``[since, until)``.

    ``agree_share`` is the share of 4 and 5 (agree, strongly agree).
    Answers to a statement index the touchpoint no longer has are left out.
    """
    counts = [[0] * (STATEMENT_HIGH - STATEMENT_LOW + 1) for _ in range(statements)]
    for answer in answers:
        if since <= answer.received_at < until and 0 <= answer.statement_index < statements:
            counts[answer.statement_index][answer.score - STATEMENT_LOW] += 1
    lines = []
    for index, distribution in enumerate(counts):
        n = sum(distribution)
        if n < min_answers:
            lines.append(StatementFigures(index, suppressed=True, count=n))
            continue
        total = sum((STATEMENT_LOW + i) * c for i, c in enumerate(distribution))
        lines.append(
            StatementFigures(
                index,
                suppressed=False,
                count=n,
                distribution=tuple(distribution),
                mean=total / n,
                agree_share=sum(distribution[-2:]) / n,
            )
        )
    return lines
