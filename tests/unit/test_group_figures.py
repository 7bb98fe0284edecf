"""Figures per breakdown group and per statement: counted once, small groups suppressed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.group_figures import (
    GroupAnswer,
    StatementAnswer,
    group_figures,
    statement_figures,
)
from schemas.base import Scale

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LIMITS = [1, 5, 15, 30]


def _answer(score: int, *groups: tuple[str, str], hours: int = 1) -> GroupAnswer:
    return GroupAnswer((("all", "all"), *groups), Scale.CSAT_5, score, T0 - timedelta(hours=hours))


def _figures(answers: list[GroupAnswer], min_answers: int = 3) -> dict[tuple[str, str], object]:
    lines = group_figures(
        answers, since=T0 - timedelta(days=1), until=T0, min_answers=min_answers, wait_limits=LIMITS
    )
    return {(line.dimension, line.value): line for line in lines}


def test_each_group_has_the_figures_of_its_own_answers() -> None:
    """A team's mean is its answers' mean, not the touchpoint's."""
    answers = [_answer(5, ("team", "A")) for _ in range(3)] + [
        _answer(1, ("team", "B")) for _ in range(3)
    ]
    lines = _figures(answers)
    team_a, team_b, whole = lines[("team", "A")], lines[("team", "B")], lines[("all", "all")]
    assert (team_a.mean, team_a.count, team_a.csat_share) == (5.0, 3, 1.0)  # type: ignore[attr-defined]
    assert (team_b.mean, team_b.csat_share) == (1.0, 0.0)  # type: ignore[attr-defined]
    assert (whole.mean, whole.count) == (3.0, 6)  # type: ignore[attr-defined]


def test_a_group_below_the_minimum_is_listed_without_figures() -> None:
    """Two answers of a team could be told apart: the open data's rule applies."""
    answers = [_answer(5, ("team", "A")) for _ in range(3)] + [_answer(1, ("team", "B"))] * 2
    small = _figures(answers)[("team", "B")]
    assert small.suppressed  # type: ignore[attr-defined]
    assert small.count is None  # type: ignore[attr-defined]
    assert small.mean is None  # type: ignore[attr-defined]


def test_answers_outside_the_period_are_not_counted() -> None:
    """The period is [since, until): a day-old answer is out of the last 24 hours."""
    lines = _figures([_answer(5, hours=1), _answer(1, hours=25), _answer(3, hours=0)], 1)
    assert lines[("all", "all")].count == 1  # type: ignore[attr-defined]


def test_wait_bands_come_in_order_and_other_comes_last() -> None:
    """The console reads the bands from the shortest wait; 'other' closes a list."""
    answers = [
        _answer(4, ("queue_wait", band), ("team", team))
        for band, team in [("30+", "other"), ("0-1", "Zeta"), ("5-15", "alpha")]
    ]
    lines = group_figures(
        answers, since=T0 - timedelta(days=1), until=T0, min_answers=1, wait_limits=LIMITS
    )
    order = [(line.dimension, line.value) for line in lines]
    assert order == [
        ("all", "all"),
        ("team", "alpha"),
        ("team", "Zeta"),
        ("team", "other"),
        ("queue_wait", "0-1"),
        ("queue_wait", "5-15"),
        ("queue_wait", "30+"),
    ]


def test_each_statement_has_its_distribution_and_small_ones_are_suppressed() -> None:
    """Agreement 1..5 per statement; a statement answered twice shows no distribution."""
    at = T0 - timedelta(hours=1)
    answers = [StatementAnswer(0, score, at) for score in (5, 4, 4, 2)] + [
        StatementAnswer(1, 3, at),
        StatementAnswer(1, 3, at),
        StatementAnswer(5, 1, at),  # a statement the touchpoint no longer has
    ]
    first, second = statement_figures(
        answers, statements=2, since=T0 - timedelta(days=1), until=T0, min_answers=3
    )
    assert first.distribution == (0, 1, 0, 2, 1)
    assert first.mean == pytest.approx(3.75)
    assert first.agree_share == pytest.approx(0.75)
    assert second.suppressed
    assert (second.distribution, second.count) == ((), 2)
