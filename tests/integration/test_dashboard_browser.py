"""The operations dashboard in headless Chromium, on figures produced to real topics.

Chromium (Debian's ``chromium``) is driven by Playwright's core library from
``tests/tooling/dashboard-browser.mjs``; the operator logs in with HTTP Basic
and the token; axe-core checks the overview and a touchpoint's console, whose
chart shows a drop with the alert's start marked, at 1,400 and 390 pixels
wide. The screenshots are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from schemas.base import Scale
from schemas.history import HistoryCounts, Period
from schemas.topics import ALERTS
from tests.integration.dashboard_harness import (
    TOKEN,
    dashboard_env,
    firing_alert,
    metrics,
    now,
)

if TYPE_CHECKING:
    from schemas.metrics import TouchpointMetrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ROOT / "tests" / "tooling"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
LATE = "late-touchpoint"
HOUR = timedelta(hours=1)


def _require_tooling() -> str:
    node = shutil.which("node")
    if not CHROMIUM.exists() or node is None:
        pytest.fail(
            "headless Chromium is needed: apt-get install -y chromium chromium-driver nodejs",
            pytrace=False,
        )
    for package in ("playwright-core", "axe-core"):
        if not (TOOLING / "node_modules" / package).is_dir():
            pytest.fail(f"{package} is missing: run npm ci in {TOOLING}", pytrace=False)
    return node


def _produced() -> list[TouchpointMetrics]:
    at = now()
    distributions = {
        "phone-service": ({5: 14, 4: 9, 3: 2, 2: 3, 1: 4}, 60),
        "health-centre": ({5: 20, 4: 11, 3: 1}, 45),
        "library-desk": ({4: 5, 3: 2}, 11),
        "social-office": ({5: 3, 4: 4, 3: 3, 2: 2}, 30),
        "web-booking": ({5: 40, 4: 25, 1: 2}, 100),
    }
    figures = []
    for touchpoint, (counts, sent) in distributions.items():
        # An hour earlier, one more top answer: the sparkline has two points.
        earlier = {**counts, 5: counts.get(5, 0) + 1}
        figures.append(metrics(touchpoint, "24h", earlier, sent=sent, as_of=at - HOUR))
        figures.append(metrics(touchpoint, "24h", counts, sent=sent, as_of=at))
        weekly = {score: n * 3 for score, n in counts.items()}
        figures.append(metrics(touchpoint, "7d", weekly, sent=sent * 3, as_of=at))
    return figures


def _history() -> list[HistoryCounts]:
    """Four weeks of phone-service's days, the last three dropped, and today's hours."""
    zone = ZoneInfo("Europe/Helsinki")
    at = now()
    produced = []
    for back in range(28):
        day = (at - timedelta(days=back)).astimezone(zone).date().isoformat()
        scores = {"2": 5, "3": 5} if back < 3 else {"4": 6, "5": 4}
        produced.append(_bucket(Period.DAY, day, scores, sent=40))
    for back in range(6):
        hour = (at - timedelta(hours=back)).strftime("%Y-%m-%dT%H")
        produced.append(_bucket(Period.HOUR, hour, {"1": 2, "2": 1}, sent=9))
    return produced


def _bucket(period: Period, start: str, scores: dict[str, int], *, sent: int) -> HistoryCounts:
    return HistoryCounts(
        touchpoint_id="phone-service",
        dimension="all",
        value="all",
        scale=Scale.CSAT_5,
        period=period,
        start=start,
        scores=scores,
        sent=sent,
    )


async def _browse(node: str, base: str, tmp_path: Path, publish_late: Any) -> dict[str, Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        node,
        str(TOOLING / "dashboard-browser.mjs"),
        base,
        TOKEN,
        LATE,
        str(ARTIFACTS / "dashboard.png"),
        str(tmp_path / "chromium-profile"),
        cwd=TOOLING,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with asyncio.timeout(120):
            first = await process.stdout.readline()
            if first.strip() == b"loaded":
                await publish_late()
            out = await process.stdout.read()
            err = await process.stderr.read()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def test_an_operator_sees_every_touchpoint_the_alert_and_live_updates_accessibly(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The dashboard's promise: the metrics topic's figures, the alert, live, for everyone."""
    node = _require_tooling()
    async with dashboard_env(kafka_bootstrap) as env:
        produced = _produced()
        for figures in produced:
            await env.publish_metrics(figures)
        for counts in _history():
            await env.publish_history(counts)
        alert = firing_alert("phone-service", at=now() - timedelta(days=2))
        await env.publish(ALERTS, alert.touchpoint_id, alert)
        await env.start()

        async def publish_late() -> None:
            await env.publish_metrics(metrics(LATE, "24h", {5: 2, 4: 1}, sent=4, as_of=now()))

        result = await _browse(node, env.url(""), tmp_path, publish_late)

    assert result["refused"] == 401
    assert result["lang"] == "en"
    latest = {(figures.key, figures.window): figures for figures in produced}
    shown = {
        (row["touchpoint"], cell["window"]): cell for row in result["rows"] for cell in row["cells"]
    }
    assert {row["touchpoint"] for row in result["rows"]} == {key for key, _ in latest}
    assert all("Mean 4." in row["text"] or "Mean 3." in row["text"] for row in result["rows"])
    for figures in latest.values():
        cell = shown[(figures.key, figures.window)]
        assert int(cell["count"]) == figures.count
        assert float(cell["mean"]) == figures.mean
        assert float(cell["csat"]) == figures.csat_share
        assert f"{figures.mean:.2f}" in cell["text"]
        assert f"n={figures.count}" in cell["text"]
        assert f"{figures.csat_share * 100:.0f}%" in cell["text"]
    (shown_alert,) = result["alerts"]
    assert shown_alert["id"] == alert.alert_id
    assert "firing" in shown_alert["classes"]
    assert "The mean score fell from 4.40 to 2.90 over the latest 31 answers" in shown_alert["text"]
    assert "Puhelinpalvelu" in shown_alert["text"]
    assert "n=3" in result["late"]
    detail = result["detail"]
    assert detail["alerts"] == 1
    # The console's default week, per hour: the chart image loaded, its table, the alert's start.
    assert detail["chart"]["loaded"]
    assert "/dashboard/touchpoints/phone-service/chart.svg" in detail["chart"]["src"]
    assert detail["ranges"] == ["24 h", "7 days", "28 days", "90 days", "13 months"]
    assert detail["markers"] == [["start", alert.alert_id]]
    assert detail["rows"] == 7 * 24
    # Four weeks per day: the drop of the last three days is in the table, against the target.
    month = result["month"]
    assert month["rows"] == 28
    assert month["first"][1].startswith("2.50")
    assert month["last"][1].startswith("4.40")
    assert month["figures"]["previous"] != month["figures"]["current"]
    for width, overflow in result["overflow"].items():
        assert overflow["scroll"] <= overflow["client"], width
    for page, violations in result["violations"].items():
        serious = [v for v in violations if v["impact"] in {"serious", "critical"}]
        assert serious == [], page
    assert all(url.startswith(env.url("")) for url in result["requests"])
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 0
