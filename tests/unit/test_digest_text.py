"""The weekly digest's figures and words: the right week, small weeks hidden, three languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.digest import WORDS, DigestAnswer, digest_lines, digest_message
from schemas.base import Scale

END = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


def _answer(score: int, days_before_end: float, touchpoint: str = "phone") -> DigestAnswer:
    return DigestAnswer(touchpoint, Scale.CSAT_5, score, END - timedelta(days=days_before_end))


def test_the_week_is_the_seven_days_before_the_end_and_the_week_before_that() -> None:
    """An answer at the very end belongs to next week; one exactly a week back to this one."""
    answers = [_answer(5, 7), _answer(4, 0.01), _answer(3, 0), _answer(1, 7.5), _answer(2, 15)]
    (line,) = digest_lines(
        answers, [], touchpoints={"phone": "Puhelin"}, week_end=END, min_answers=1
    )
    assert (line.week.answers, line.week.mean) == (2, 4.5)
    assert (line.before.answers, line.before.mean) == (1, 1.0)


def test_a_week_below_the_minimum_has_a_count_but_no_figures() -> None:
    """Two answers could be told apart: the count is shown, the mean is not."""
    (line,) = digest_lines(
        [_answer(5, 1), _answer(1, 2)], [], touchpoints={"phone": "P"}, week_end=END, min_answers=3
    )
    assert (line.week.answers, line.week.mean, line.week.csat_share) == (2, None, None)


def test_alerts_count_in_the_week_they_started_and_other_touchpoints_are_left_out() -> None:
    """The team reads only its own touchpoints, and the alerts that began this week."""
    alerts = [("phone", END - timedelta(days=1)), ("phone", END - timedelta(days=8))]
    lines = digest_lines(
        [_answer(5, 1, "desk")], alerts, touchpoints={"phone": "P"}, week_end=END, min_answers=1
    )
    assert [(line.touchpoint_id, line.alerts, line.week.answers) for line in lines] == [
        ("phone", 1, 0)
    ]


@pytest.mark.parametrize("language", sorted(WORDS))
def test_every_language_says_every_part(language: str) -> None:
    """fi, sv and en have the same phrases, and the link names the touchpoint."""
    assert set(WORDS[language]) == set(WORDS["fi"])
    lines = digest_lines(
        [_answer(5, 1)] * 3,
        [("phone", END)],
        touchpoints={"phone": "P"},
        week_end=END,
        min_answers=3,
    )
    subject, body = digest_message(
        lines,
        language=language,
        team="T",
        week_end=END,
        min_answers=3,
        link="https://x/{touchpoint_id}",
    )
    assert "30.11." in subject
    assert "06.12.2026" in subject
    assert "https://x/phone" in body
    assert ("5.00" if language == "en" else "5,00") in body
