"""The latency benchmark in its quick mode: every rating counted, the drop alerted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from palaute.bench.latency import QUICK, render, run, write_json

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_quick_run_counts_every_rating_and_alerts_on_the_drop(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A latency is only measured for a rating the metrics counted, and an alert that came."""
    summary = run(QUICK, bootstrap=kafka_bootstrap, progress=None)
    (row,) = summary["rows"]
    expected = round(QUICK.rates[0] * QUICK.seconds)
    assert row["ratings"] == expected
    assert row["counted"] == expected
    assert row["rating_to_metric"]["count"] == expected
    assert row["round_trip"]["count"] >= 1
    alert = row["drop_alert"]
    assert alert is not None
    assert alert["detection_ratings"] >= 1
    assert alert["latency_s"] >= 0
    assert "aiokafka" in render(summary)
    target = tmp_path / "bench.json"
    write_json(summary, target)
    assert json.loads(target.read_text(encoding="utf-8"))["rows"][0]["counted"] == expected
