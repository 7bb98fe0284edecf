"""The console benchmark, small: every kind of request answered and timed, live updates received."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from palaute.bench.console import Plan, render, run, write_json

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

TINY = Plan(touchpoints=3, days=10, hours=24, requests=2, streams=2, updates=2)


@pytest.mark.slow
def test_a_tiny_run_times_every_request_and_every_live_update(tmp_path: Path) -> None:
    """The figures in docs/performance.md are only as good as the run that counts them."""
    summary = run(TINY, progress=lambda _line: None)
    timed = summary["ms"]
    for name in ("overview", "touchpoint", "chart_drawn", "chart_cached"):
        assert timed[name]["n"] == TINY.requests, name
        assert 0 < timed[name]["p50"] <= timed[name]["max"], name
    # Each update reached each stream, re-rendered.
    assert timed["live"]["n"] == TINY.updates * TINY.streams
    assert summary["buckets"] == TINY.touchpoints * 3 * (TINY.days + TINY.hours)
    assert "touchpoint page" in render(summary)
    target = tmp_path / "bench.json"
    write_json(summary, target)
    assert json.loads(target.read_text())["plan"]["touchpoints"] == TINY.touchpoints
