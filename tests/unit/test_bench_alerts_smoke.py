"""The alerts benchmark in its quick mode: every rule reported, figures sane."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from palaute.bench.alerts import (
    ORACLE_GRID,
    QUICK,
    RULES,
    WEEKDAY_LEVEL,
    acceptance,
    box_probabilities,
    level_shift,
    oracle_llr,
    page_cusum,
    render,
    run,
    write_json,
)
from palaute.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_quick_run_reports_every_rule_at_every_volume() -> None:
    """The table in docs/alerts.md is only comparable if every rule ran on the same streams."""
    summary = run(QUICK, progress=None)
    rows = summary["rows"]
    for per_day in QUICK.volumes:
        assert {row["rule"] for row in rows if row["per_day"] == per_day} == set(RULES)
    for row in rows:
        assert row["false_alarms_per_100_months"] >= 0.0
        assert 0.0 <= row["detected_share"] <= 1.0
        median, p90 = row["median_ratings_to_alert"], row["p90_ratings_to_alert"]
        assert median >= 1
        assert p90 >= median
        assert math.isinf(median) or median == int(median)
    table = render(summary)
    assert all(rule in table for rule in RULES)


def test_the_oracle_row_is_a_calibrated_threshold_at_every_volume() -> None:
    """The oracle is the floor the docs argue from; a row off its grid or budget would mislead."""
    summary = run(QUICK, progress=None)
    oracles = [row for row in summary["rows"] if row["rule"] == "oracle"]
    assert sorted(row["per_day"] for row in oracles) == sorted(QUICK.volumes)
    for row in oracles:
        assert float(row["setting"]) in ORACLE_GRID
        median = row["median_ratings_to_alert"]
        assert math.isinf(median) or (math.isfinite(median) and median >= 1)
        if row["within_budget"]:
            assert row["false_alarms_per_100_months"] <= summary["budget_per_100_months"]
        assert f"| {row['per_day']:g} | oracle | {row['setting']} |" in render(summary)


def test_the_oracle_likelihood_ratio_points_towards_the_drop() -> None:
    """A sign or weekday slip in the table would make the "bound" detect nothing, or rises."""
    level = 0.2
    shift = level_shift(level, 0.5)
    assert shift < 0
    table = oracle_llr(level, shift)
    assert len(table) == len(WEEKDAY_LEVEL)
    for weekday, row in enumerate(table):
        assert row == sorted(row, reverse=True)  # low scores are evidence of the drop
        assert row[0] > 0 > row[4]
        offset = WEEKDAY_LEVEL[weekday]
        before = box_probabilities(level + offset)
        after = box_probabilities(level + offset + shift)
        # The mean log-likelihood ratio is minus a divergence before and a divergence after.
        assert sum(p * llr for p, llr in zip(before, row, strict=True)) < 0
        assert sum(p * llr for p, llr in zip(after, row, strict=True)) > 0
    assert table[0] != table[5]  # the weekday's level is part of what the oracle knows


def test_page_cusum_clamps_at_zero_and_restarts_after_an_alarm() -> None:
    """The false-alarm count is only a run-length rate if every alarm starts afresh."""
    assert page_cusum([1.0, 1.0, -5.0, 2.0, 2.0, 2.0], 3.0) == [4]
    assert page_cusum([-10.0, 3.0], 3.0) == [1]  # no debt carried below zero
    assert page_cusum([3.0, 3.0, 3.0], 3.0) == [0, 1, 2]
    assert page_cusum([2.9, -0.1, 0.1], 3.0) == []


def test_acceptance_does_not_count_the_oracle_as_a_faster_rule() -> None:
    """The oracle knows the change; being slower than it is expected, not a failure."""

    def row(rule: str, median: float) -> dict[str, object]:
        return {
            "per_day": 5,
            "rule": rule,
            "median_ratings_to_alert": median,
            "false_alarms_per_100_months": 0.5,
        }

    summary = {"budget_per_100_months": 1.0, "rows": [row("detector", 50), row("oracle", 30)]}
    assert acceptance(summary) == []
    summary["rows"] = [row("detector", 50), row("last20", 30)]
    assert acceptance(summary) == ["5/day: last20 is faster"]


def test_the_command_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Users run the command line, not the module; its output is what the docs quote."""
    target = tmp_path / "bench.json"
    assert main(["bench", "alerts", "--quick", "--json", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "| ratings/day | rule |" in printed
    assert "acceptance targets" in printed
    written = json.loads(target.read_text(encoding="utf-8"))
    assert {row["rule"] for row in written["rows"]} == set(RULES)


def test_the_simulation_is_reproducible(tmp_path: Path) -> None:
    """A seeded run must give the same figures, or the docs could not be checked."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_json({"rows": run(QUICK, progress=None)["rows"]}, first)
    write_json({"rows": run(QUICK, progress=None)["rows"]}, second)
    assert first.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")
