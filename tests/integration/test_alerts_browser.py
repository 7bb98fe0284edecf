"""Alerts as work items in headless Chromium: seen, understood and acknowledged, at 390 px.

``tests/tooling/alerts-browser.mjs`` drives Debian's Chromium through the
overview, a touchpoint's page and the alerts page in Swedish on a phone-sized
screen, acknowledges the alert from the page, and checks each page with
axe-core. The acknowledgement goes through the real web app to the real
alerts topic.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer

from schemas.alerts import AlertAcknowledged
from schemas.topics import ALERTS
from tests.integration.dashboard_harness import TOKEN, dashboard_env, firing_alert, metrics, now
from tests.integration.test_dashboard_browser import TOOLING, _require_tooling

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.dashboard_harness import DashboardEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALERTING = "health-centre"


async def _browse(node: str, base: str, tmp_path: Path) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(TOOLING / "alerts-browser.mjs"),
        base,
        TOKEN,
        ALERTING,
        str(tmp_path / "chromium-profile"),
        cwd=TOOLING,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(180):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def _acknowledgements(env: DashboardEnv) -> list[AlertAcknowledged]:
    consumer = AIOKafkaConsumer(
        env.topic(ALERTS), bootstrap_servers=env.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    return [
        AlertAcknowledged.model_validate_json(record.value)
        for records in batches.values()
        for record in records
        if record.value is not None and b'"AlertAcknowledged"' in record.value
    ]


async def test_an_operator_acknowledges_an_alert_from_the_page_in_swedish_on_a_phone(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The work item loop: see the alert, read it in plain words, acknowledge and assign it."""
    node = _require_tooling()
    async with dashboard_env(kafka_bootstrap) as env:
        at = now()
        for touchpoint, counts in {
            "phone-service": {5: 14, 4: 9, 3: 2, 2: 3, 1: 4},
            ALERTING: {5: 3, 4: 2, 2: 9, 1: 12},
        }.items():
            await env.publish_metrics(
                metrics(touchpoint, "24h", counts, sent=60, as_of=at - timedelta(hours=1))
            )
            await env.publish_metrics(metrics(touchpoint, "24h", counts, sent=60, as_of=at))
        alert = firing_alert(ALERTING, at=at)
        await env.publish(ALERTS, alert.touchpoint_id, alert)
        await env.start()
        result = await _browse(node, env.url(""), tmp_path)
        stored = await _acknowledgements(env)

    overview = result["overview"]
    assert overview["lang"] == "sv"
    assert overview["title"] == "Palaute \N{EN DASH} driftöversikt"
    assert overview["alerting"] == [ALERTING]
    assert "Larm pågår" in overview["alertingText"]
    assert "Hälsostationen" in overview["names"]  # the catalogue's Swedish name
    assert "Medelvärdet sjönk från 4,40 till 2,90 i de senaste 31 svaren." in overview["alert"]
    for english in ("drop", "critical", "firing", "cusum", "statistic", "threshold"):
        assert english not in overview["alert"].lower()
    assert result["detail"]["lang"] == "sv"

    assert result["before"]["state"] == "firing"
    assert result["forged"]["status"] == 403
    assert result["forged"]["body"]["error"] == "csrf_token_missing"
    assert result["prefilled"] == "operator"  # the name the browser signed in with

    after = result["after"]
    assert after["state"] == "acknowledged"
    assert after["section"].startswith("Kvitterade")
    assert "Kvitterat av operator" in after["text"]
    assert "ansvarig Tiimi A" in after["text"]
    assert "Jonotilanne tarkistettu" in after["text"]
    assert "\N{CHECK MARK}" in after["text"]  # a symbol too, not colour alone
    assert result["overviewAfter"]["lang"] == "fi"
    assert result["overviewAfter"]["state"] == "acknowledged"
    assert "kuitattu" in result["overviewAfter"]["text"]

    [ack] = stored
    assert (ack.alert_id, ack.touchpoint_id) == (alert.alert_id, ALERTING)
    assert (ack.acknowledged_by, ack.assigned_to) == ("operator", "Tiimi A")

    for name, size in result["widths"].items():
        assert size["scroll"] <= size["client"], name
    for name, violations in result["violations"].items():
        assert violations == [], name
    assert all(url.startswith(env.url("")) for url in result["requests"])
