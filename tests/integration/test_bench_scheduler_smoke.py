"""The scheduler benchmark in its quick mode: every survey recovered, each due one sent once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from palaute.bench.scheduler import QUICK, acceptance, render, run, write_json

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_quick_run_recovers_every_survey_and_sends_each_due_one_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The memory and lag figures only mean something if the worker really held and sent them."""
    summary = run(QUICK, bootstrap=kafka_bootstrap, progress=None)
    empty, cold, warm = summary["starts"]
    assert empty["surveys"] == 0
    assert cold["surveys"] == QUICK.pending - QUICK.due_at_once
    assert warm["surveys"] == QUICK.pending
    assert all(start["rss_mib"] > 0 for start in summary["starts"])
    assert summary["lag_to_dispatching"]["count"] == QUICK.due_at_once
    assert summary["lag_to_sent"]["count"] == QUICK.due_at_once
    assert summary["failed"] == 0
    # One message per survey at the simulator: nothing sent twice, nothing else sent.
    assert summary["simulator_messages"] == QUICK.due_at_once
    assert isinstance(acceptance(summary), list)
    assert "due at once" in render(summary)
    target = tmp_path / "bench.json"
    write_json(summary, target)
    assert json.loads(target.read_text(encoding="utf-8"))["due_at_once"] == QUICK.due_at_once
