"""The alerts benchmark in its quick mode: every rule and family reported, figures sane."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from palaute.bench.alerts import (
    DROP_FAMILIES,
    MIN_BASELINE,
    NULL_FAMILIES,
    ORACLE_GRID,
    QUICK,
    RULES,
    Scenario,
    acceptance,
    generate,
    oracle_path,
    poisson_interval,
    render,
    run,
    scenarios,
    self_starting_path,
    self_starting_reference,
    simulate,
    write_json,
)
from palaute.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

DAY = 86_400.0


@cache
def quick() -> dict[str, Any]:
    return run(QUICK, progress=None)


def test_quick_run_reports_every_rule_for_every_family_at_every_volume() -> None:
    """The table in docs/alerts.md is only comparable if every rule ran on the same streams."""
    rows = quick()["rows"]
    for per_day in QUICK.volumes:
        for family in DROP_FAMILIES:
            same = [r for r in rows if r["per_day"] == per_day and r["family"] == family]
            assert {row["rule"] for row in same} == set(RULES)
    for row in rows:
        assert row["false_alarms_per_100_months"] >= 0.0
        assert row["false_alarms_low"] <= row["false_alarms_per_100_months"]
        assert row["false_alarms_per_100_months"] <= row["false_alarms_high"]
        assert 0.0 <= row["detected_share"] <= 1.0
        median, p90 = row["median_ratings_to_alert"], row["p90_ratings_to_alert"]
        assert median >= 1
        assert p90 >= median
        assert math.isinf(median) or median == int(median)
    nulls = {(row["family"], row["per_day"]) for row in quick()["nulls"]}
    assert nulls == {(family, per_day) for family in NULL_FAMILIES for per_day in QUICK.volumes}
    table = render(quick())
    assert all(rule in table for rule in RULES)


def test_the_oracle_row_is_a_calibrated_threshold() -> None:
    """The oracle is the bound the docs argue from; a row off its grid or budget would mislead."""
    for row in quick()["rows"]:
        if row["rule"] != "oracle":
            continue
        assert float(row["setting"]) in ORACLE_GRID
        if row["within_budget"]:
            assert row["false_alarms_per_100_months"] <= quick()["budget_per_100_months"]


def test_the_null_streams_vary_from_day_to_day_beyond_chance() -> None:
    """Streams of independent ratings are what hid the bad-day alarms; these must not be."""
    stream = generate(Scenario(500, "day-effects", 11))
    days = (stream.times // DAY).astype(int)
    means = np.bincount(days, weights=stream.scores) / np.maximum(np.bincount(days), 1)
    sampling = stream.sd / math.sqrt(500)
    assert np.std(means[np.bincount(days) > 0]) > 2 * sampling


def test_the_oracle_statistic_rises_after_the_change_only() -> None:
    """A sign slip would make the bound detect nothing, or rises."""
    stream = generate(Scenario(50, "step", 12))
    assert stream.change_at is not None
    path = oracle_path(stream, stream.change_points)
    first = int(np.searchsorted(stream.times, stream.change_at))
    assert path[first:].max() > 3 * max(path[:first].max(), 1.0)


def test_the_interval_is_the_exact_poisson_one() -> None:
    """No alarm in 100 months is not proof of none: the interval says how few there may be."""
    low, high = poisson_interval(0, 100.0)
    assert low == 0.0
    assert abs(high - 3.689) < 0.01
    low, high = poisson_interval(10, 100.0)
    assert abs(low - 4.795) < 0.01
    assert abs(high - 18.39) < 0.01


def test_acceptance_does_not_count_the_oracle_as_a_faster_rule() -> None:
    """The bounds know the change; being slower than them is expected, not a failure."""

    def row(rule: str, median: float) -> dict[str, object]:
        return {
            "per_day": 5,
            "family": "drift",
            "rule": rule,
            "median_ratings_to_alert": median,
            "false_alarms_per_100_months": 0.5,
        }

    summary: dict[str, Any] = {
        "budget_per_100_months": 1.0,
        "rows": [row("detector", 50), row("oracle", 30), row("self-start", 35)],
    }
    assert acceptance(summary) == []
    summary["rows"] = [row("detector", 50), row("last20", 30)]
    assert acceptance(summary) == ["drift 5/day: last20 is faster"]


def test_the_command_prints_the_tables_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Users run the command line, not the module; its output is what the docs quote."""
    target = tmp_path / "bench.json"
    assert main(["bench", "alerts", "--quick", "--json", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "| family | ratings/day | rule |" in printed
    assert "| null family | ratings/day | alert |" in printed
    assert "acceptance targets" in printed
    written = json.loads(target.read_text(encoding="utf-8"))
    assert {row["rule"] for row in written["rows"]} == set(RULES)


def test_the_simulation_is_reproducible(tmp_path: Path) -> None:
    """A seeded run must give the same figures, or the docs could not be checked."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_json({"rows": quick()["rows"]}, first)
    write_json({"rows": run(QUICK, progress=None)["rows"]}, second)
    assert first.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")


def test_calibration_streams_are_nulls_the_detector_does_not_run_on() -> None:
    """A threshold chosen on 22 touchpoint-months may alarm 27 times in 100: more nulls fix it."""
    plan = replace(QUICK, volumes={5: (1, 1)}, calibration=3)
    extra = [s for s in scenarios(plan) if s.calibration]
    # Only the null families the changes happen on, up to the plan's count.
    assert sorted({s.family for s in extra}) == sorted(set(DROP_FAMILIES.values()))
    assert len(extra) == 2 * len(set(DROP_FAMILIES.values()))
    assert len({s.seed for s in scenarios(plan)}) == len(scenarios(plan))
    outcome = simulate(extra[0])
    assert not any(name.startswith("detector") for name in outcome.alarms)
    assert any(name.startswith("oracle@") for name in outcome.alarms)
    assert any(name.startswith("self-start@") for name in outcome.alarms)
    # The detector's false alarms are counted on its own null streams only.
    summary = quick()
    nulls = {row["family"]: row["months"] for row in summary["nulls"] if row["per_day"] == 5}
    detector = next(r for r in summary["rows"] if r["rule"] == "detector" and r["per_day"] == 5
                    and r["family"] == "step")  # fmt: skip
    oracle = next(r for r in summary["rows"] if r["rule"] == "oracle" and r["per_day"] == 5
                  and r["family"] == "step")  # fmt: skip
    assert detector["null_months"] == nulls["seasonal"]
    assert oracle["null_months"] > detector["null_months"]


def test_the_self_starting_bound_learns_the_level_from_days_a_week_old() -> None:
    """The bound must face what the detector faces: no level before it has one, none from today."""
    stream = generate(Scenario(50, "step", 13))
    reference = self_starting_reference(stream)
    days = (stream.times // DAY).astype(int)
    learnt = np.array([(days <= d - 8).sum() for d in days])
    assert np.isnan(reference[learnt < MIN_BASELINE]).all()
    assert not np.isnan(reference[learnt >= MIN_BASELINE]).any()
    path = self_starting_path(stream, stream.change_points)
    assert not path[learnt < MIN_BASELINE].any()
    # Ratings of the last week do not move the level a rating is judged by; older ones do.
    today = int(days[-1])
    for span, moves in (((today - 7, today), False), ((today - 9, today - 8), True)):
        changed = replace(stream, scores=stream.scores.copy())
        changed.scores[(days >= span[0]) & (days <= span[1])] = stream.low
        last = days == today
        assert np.allclose(self_starting_reference(changed)[last], reference[last]) is not moves
    # Told the seasonality but not the level, it still finds the step, after the change only.
    assert stream.change_at is not None
    first = int(np.searchsorted(stream.times, stream.change_at))
    assert path[first:].max() > 3 * max(path[:first].max(), 1.0)
