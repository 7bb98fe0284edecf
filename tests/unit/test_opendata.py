"""The public feed's figures: suppression, confidence intervals and the CSV shape."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta

import pytest

from connectors.web.opendata import CSV_COLUMNS, embed_html, feed_document, scores_csv
from engine.detection import wilson_interval
from engine.opendata import Answer, mean_interval, open_scores, t_quantile
from schemas.base import Scale
from schemas.config import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _answers(
    touchpoint: str, scores: list[int], *, age: timedelta = timedelta(days=1)
) -> list[Answer]:
    return [Answer(touchpoint, Scale.CSAT_5, score, NOW - age) for score in scores]


def _settings(min_answers: int = 10) -> Settings:
    return Settings.model_validate(
        {
            "secrets": {"pseudonymisation_key": "p" * 40, "link_signing_key": "l" * 40},
            "opendata": {"min_answers": min_answers, "publisher": "Hyvinvointialue"},
        }
    )


@pytest.mark.parametrize(
    ("freedom", "table"),
    [(4, 2.776), (5, 2.571), (9, 2.262), (29, 2.045), (120, 1.980)],
)
def test_t_quantile_matches_the_printed_tables(freedom: int, table: float) -> None:
    """The mean's interval is only as honest as its t quantile, with no SciPy to lean on."""
    assert t_quantile(0.975, freedom) == pytest.approx(table, abs=0.001)


def test_a_touchpoint_below_min_answers_is_listed_without_any_figure() -> None:
    """Nine answers could single out a person; the line stays, its figures do not."""
    answers = _answers("small", [5] * 9) + _answers("large", [4] * 6 + [5] * 4)
    lines = {
        line.touchpoint_id: line
        for line in open_scores(answers, now=NOW, days=30, min_answers=10, catalogue={})
    }
    small, large = lines["small"], lines["large"]
    assert small.suppressed
    assert (small.count, small.mean, small.csat_share, small.mean_low, small.csat_low) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert not large.suppressed
    assert large.count == 10


def test_catalogued_touchpoints_without_answers_are_listed_suppressed() -> None:
    """Readers see that a touchpoint exists even when it has nothing publishable."""
    lines = open_scores([], now=NOW, days=30, min_answers=10, catalogue={"quiet": "Hiljainen"})
    assert [(line.touchpoint_id, line.name, line.suppressed) for line in lines] == [
        ("quiet", "Hiljainen", True)
    ]


def test_answers_older_than_the_period_do_not_count() -> None:
    """The feed promises the last 30 days, not everything ever answered."""
    answers = _answers("desk", [5] * 10) + _answers("desk", [1] * 5, age=timedelta(days=31))
    (line,) = open_scores(answers, now=NOW, days=30, min_answers=10, catalogue={})
    assert (line.count, line.mean) == (10, 5.0)


def test_the_csat_interval_is_wilsons_and_the_mean_interval_is_students_t() -> None:
    """Published intervals must be the methods the feed names, computed on its figures."""
    scores = [5, 5, 4, 4, 4, 3, 2, 5, 1, 4, 5, 3]
    (line,) = open_scores(_answers("desk", scores), now=NOW, days=30, min_answers=10, catalogue={})
    top_two = sum(1 for score in scores if score >= 4)
    assert line.csat_share == top_two / len(scores)
    assert (line.csat_low, line.csat_high) == wilson_interval(
        top_two, len(scores), 1.959963984540054
    )
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
    half = t_quantile(0.975, len(scores) - 1) * spread / math.sqrt(len(scores))
    assert line.mean == pytest.approx(mean)
    assert line.mean_low == pytest.approx(mean - half)
    assert line.mean_high == pytest.approx(mean + half)


def test_the_mean_interval_stays_within_the_scale() -> None:
    """An interval past the top of a 1-5 scale would claim an impossible score."""
    interval = mean_interval([5] * 11 + [1], Scale.CSAT_5)
    assert interval is not None
    assert interval[1] == 5.0
    assert 1.0 <= interval[0] < interval[1]
    assert mean_interval([4], Scale.CSAT_5) is None


def test_the_csv_has_the_header_and_empty_cells_for_suppressed_lines() -> None:
    """Spreadsheets and scripts read the columns by name; empty is how CSV says null."""
    answers = _answers("large", [4] * 6 + [5] * 4) + _answers("small", [5] * 3)
    lines = open_scores(answers, now=NOW, days=30, min_answers=10, catalogue={})
    rows = list(csv.DictReader(io.StringIO(scores_csv(lines))))
    assert tuple(rows[0]) == CSV_COLUMNS
    large, small = rows
    assert (large["touchpoint_id"], large["suppressed"], large["count"]) == ("large", "false", "10")
    assert float(large["mean"]) == pytest.approx(4.4)
    assert float(large["csat_share"]) == pytest.approx(1.0)
    assert small["suppressed"] == "true"
    assert [small[column] for column in CSV_COLUMNS[4:]] == [""] * 7


def test_the_json_feed_names_its_version_period_and_methods() -> None:
    """A public feed is read by programs that must know what they are reading."""
    settings = _settings(min_answers=3)
    lines = open_scores(_answers("desk", [5, 4, 4]), now=NOW, days=30, min_answers=3, catalogue={})
    document = feed_document(lines, settings=settings, now=NOW)
    assert document["version"] == "1.0"
    assert (document["period_days"], document["min_answers"]) == (30, 3)
    assert document["publisher"] == "Hyvinvointialue"
    assert document["methods"] == {"csat_ci": "wilson", "mean_ci": "student-t"}
    (line,) = document["touchpoints"]
    assert line["count"] == 3
    assert line["mean_ci"][0] <= line["mean"] <= line["mean_ci"][1]


def test_the_embed_is_self_contained_and_in_the_asked_language() -> None:
    """Other sites frame the snippet; it must not fetch anything or need a script."""
    lines = open_scores(_answers("desk", [5] * 10), now=NOW, days=30, min_answers=10, catalogue={})
    page = embed_html(lines, settings=_settings(), now=NOW, language="en")
    assert '<html lang="en">' in page
    for outside in ("src=", "href=", "<script", "@import", "url("):
        assert outside not in page
    assert ">10<" in page
