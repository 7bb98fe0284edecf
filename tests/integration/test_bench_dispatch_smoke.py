"""The dispatch benchmark in its quick mode: every survey sent once, every request counted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from palaute.bench.dispatch import QUICK, largest_window, render, run, write_json

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_largest_window_counts_the_busiest_half_open_second() -> None:
    """The limit is judged by this count: a window of one second must not take in its end."""
    assert largest_window([]) == 0
    assert largest_window([0.0, 0.5, 0.99, 1.0]) == 3  # [0.0, 1.0) leaves 1.0 out
    assert largest_window([0.0, 0.5, 0.99, 1.0, 1.2]) == 4  # [0.5, 1.5) is the busiest
    assert largest_window([0.0, 1.0, 2.0]) == 1


@pytest.mark.slow
def test_quick_run_sends_every_survey_once_and_counts_every_request(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The rate figures only mean something if each survey reached the simulator exactly once."""
    summary = run(QUICK, bootstrap=kafka_bootstrap, progress=None)
    raw, limited = summary["rows"]
    assert raw["requests"] == QUICK.baseline_messages
    assert limited["requests"] == QUICK.messages
    assert summary["surveys_sent"] == QUICK.messages
    assert summary["surveys_failed"] == 0
    assert 1 <= limited["largest_1s_window"] <= QUICK.messages
    assert summary["limit_held"] == (limited["largest_1s_window"] <= QUICK.limit_per_second)
    assert "limit held" in render(summary)
    target = tmp_path / "bench.json"
    write_json(summary, target)
    assert json.loads(target.read_text(encoding="utf-8"))["surveys_sent"] == QUICK.messages
