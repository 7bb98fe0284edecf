"""The intake benchmark in its quick mode: every reader reads every event, every event decided."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from palaute.bench.intake import QUICK, render, run, write_json

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

READERS = ("(a) aiokafka", "(b) Java ConsumerPerformance", "(c) palaute worker", "(d) in-process")


@pytest.mark.slow
def test_quick_run_reads_and_decides_every_event_on_one_broker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The ratios in docs/performance.md only mean something if all readers saw the same events."""
    summary = run(QUICK, bootstrap=kafka_bootstrap, progress=None)
    rows = summary["rows"]
    assert [row["reader"][: len(name)] for row, name in zip(rows, READERS, strict=True)] == list(
        READERS
    )
    # The worker's row counts distinct contact ids decided: all of them, none twice.
    assert [row["records"] for row in rows] == [QUICK.events] * len(READERS)
    assert all(row["per_second"] >= 0 for row in rows)
    assert summary["worker_survey_records"] >= QUICK.events
    assert summary["ratio_c_a"] >= 0.0
    assert summary["ratio_c_b"] >= 0.0
    table = render(summary)
    assert all(name in table for name in READERS)
    assert "c/a = " in table
    assert "c/d = " in table
    assert summary["ratio_c_d"] > 0.0
    target = tmp_path / "bench.json"
    write_json(summary, target)
    assert json.loads(target.read_text(encoding="utf-8"))["events"] == QUICK.events
