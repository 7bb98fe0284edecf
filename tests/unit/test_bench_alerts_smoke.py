"""The alerts benchmark in its quick mode: every rule reported, figures sane."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from palaute.bench.alerts import QUICK, RULES, render, run, write_json
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
