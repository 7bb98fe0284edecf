"""People sign in with a local OpenID Connect provider and act within their roles, in Chromium.

A viewer cannot acknowledge an alert (403); an operator can, and the alert
shows the name the provider gave; an admin edits a touchpoint's question,
sees the SMS preview with its segment count in each language, and saves it.
The web app runs on the real broker with its alerts and catalogue topics;
every page is checked with axe-core at 390 px (tests/tooling/accounts-browser.mjs).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.catalogue import seed_change
from ops.kafka import create_topic, delete_topics
from schemas.alerts import AlertAcknowledged
from schemas.catalogue_records import CatalogueChanged, change_key
from schemas.config import Settings
from schemas.topics import ALERTS, CATALOGUE
from tests.integration.dashboard_harness import (
    CATALOGUE as TOUCHPOINTS,
)
from tests.integration.dashboard_harness import (
    TOKEN,
    dashboard_env,
    firing_alert,
    metrics,
    now,
)
from tests.integration.oidc_harness import oidc_provider, oidc_settings, register_people
from tests.integration.test_dashboard_browser import TOOLING, _require_tooling

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.dashboard_harness import DashboardEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALERTING = "phone-service"
NEW_QUESTION = "How well were you served today, {low}-{high}?"


def _settings(env: DashboardEnv, issuer: str) -> Settings:
    return Settings.model_validate(
        {
            "kafka": {"bootstrap_servers": [env.bootstrap]},
            "secrets": {"pseudonymisation_key": "d" * 40, "link_signing_key": "e" * 40},
            "streams": {"topic_suffix": env.suffix, "partitions": 1},
            "web": {
                "public_base_url": f"http://127.0.0.1:{env.port}",
                "bind_port": env.port,
                "ops_token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()],
                "oidc": oidc_settings(issuer),
            },
            # The edited touchpoint sends a reminder, whose SMS is previewed too.
            "touchpoints": {
                **TOUCHPOINTS,
                ALERTING: {**TOUCHPOINTS[ALERTING], "reminder_delay": "1d"},
            },
        }
    )


async def _browse(node: str, base: str, tmp_path: Path) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(TOOLING / "accounts-browser.mjs"),
        base,
        ALERTING,
        NEW_QUESTION,
        str(tmp_path / "chromium-profile"),
        cwd=TOOLING,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(240):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def _records(env: DashboardEnv, base: str, marker: bytes) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        env.topic(base), bootstrap_servers=env.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    return [
        record.value
        for records in batches.values()
        for record in records
        if record.value is not None and marker in record.value
    ]


async def test_viewers_read_operators_acknowledge_and_admins_edit_with_a_preview(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The roles as people meet them: signed in with their own provider, each doing their part."""
    node = _require_tooling()
    with oidc_provider() as issuer:
        await register_people(issuer)
        async with dashboard_env(kafka_bootstrap) as env:
            env.settings = _settings(env, issuer)
            catalogue_topic = env.topic(CATALOGUE)
            create_topic(kafka_bootstrap, catalogue_topic, partitions=1)
            try:
                seed = seed_change(env.settings, datetime.now(UTC))
                await (
                    await env.producer.send(
                        catalogue_topic, value=seed.model_dump_json().encode(), key=change_key(seed)
                    )
                )
                at = now()
                await env.publish_metrics(
                    metrics(ALERTING, "24h", {5: 3, 4: 2, 2: 9, 1: 12}, sent=60, as_of=at)
                )
                alert = firing_alert(ALERTING, at=at)
                await env.publish(ALERTS, alert.touchpoint_id, alert)
                await env.start()
                result = await _browse(node, env.url(""), tmp_path)
                acks = [
                    AlertAcknowledged.model_validate_json(value)
                    for value in await _records(env, ALERTS, b'"AlertAcknowledged"')
                ]
                changes = [
                    CatalogueChanged.model_validate_json(value)
                    for value in await _records(env, CATALOGUE, b'"CatalogueChanged"')
                ]
            finally:
                await asyncio.to_thread(delete_topics, kafka_bootstrap, [catalogue_topic])

    _viewer_and_operator(result, acks, alert.alert_id)
    _admin(result, changes)
    for name, size in result["widths"].items():
        assert size["scroll"] <= size["client"], name
    for name, violations in result["violations"].items():
        assert violations == [], (name, violations)


def _viewer_and_operator(
    result: dict[str, Any], acks: list[AlertAcknowledged], alert_id: str
) -> None:
    viewer = result["viewer"]
    assert viewer["landed"] == "/dashboard/alerts?lang=en"
    assert "Veera Katselija (viewer)" in viewer["account"]
    assert viewer["ackStatus"] == 403
    assert "This needs the operator role; yours is viewer." in viewer["refusedPage"]
    assert viewer["stateAfter"] == "firing"
    assert "You have signed out." in result["signedOut"]

    operator = result["operator"]
    assert operator["state"] == "acknowledged"
    assert "Acknowledged by Olli Operaattori" in operator["text"]
    assert "Olli Operaattori (operator)" in operator["account"]
    assert operator["adminStatus"] == 403
    [ack] = acks  # the viewer's attempt wrote nothing
    assert (ack.alert_id, ack.acknowledged_by, ack.acknowledged_by_subject) == (
        alert_id,
        "Olli Operaattori",
        "operator-1",
    )


def _admin(result: dict[str, Any], changes: list[CatalogueChanged]) -> None:
    admin = result["admin"]
    assert admin["landed"] == "/admin?lang=en"
    asked = NEW_QUESTION.format(low=1, high=5)
    assert asked not in admin["smsBefore"]
    preview = admin["preview"]
    assert asked in preview["sms"]
    assert preview["segmentCount"] == "1"
    assert preview["segments"].startswith("1 segment(s), ")
    assert "/160 characters, GSM-7" in preview["segments"]
    assert asked in preview["email"]
    assert asked in preview["page"]
    assert asked not in preview["finnishSms"]  # only the English question was changed
    assert "GSM-7" in preview["swedishSegments"]
    assert asked in preview["reminderSms"]
    assert preview["reminderSms"] != preview["sms"]
    assert preview["reminderSegments"].startswith("1 segment(s), ")
    assert admin["saved"].startswith("Saved: version ")
    assert "Aino Ylläpitäjä (admin-1)" in admin["history"]
    assert "questions" in admin["history"]
    assert admin["question"] == NEW_QUESTION
    edits = [change for change in changes if change.action.value == "edit"]
    [edit] = edits
    assert (edit.by, edit.by_subject, edit.comment) == (
        "Aino Ylläpitäjä",
        "admin-1",
        "Shorter question",
    )
    entry = edit.touchpoints[ALERTING]
    assert entry is not None
    assert entry.entry["questions"]["en"] == NEW_QUESTION
