"""The dashboard's acknowledgement form keeps the HTTP API's rules, and says what went wrong.

Served by the real web app on the test's own topics; the browser-side loop
is in test_alerts_browser.py, this covers what a browser's own checks let
through only when someone goes around them.
"""

from __future__ import annotations

import asyncio
import base64
import re

import aiohttp
import pytest

from connectors.web.alerts import ACKNOWLEDGEMENTS, KafkaAlertDirectory
from connectors.web.csrf import FIELD
from schemas.topics import ALERTS
from tests.integration.dashboard_harness import TOKEN, dashboard_env, firing_alert, now

pytestmark = pytest.mark.integration

BASIC = "Basic " + base64.b64encode(f"operator:{TOKEN}".encode()).decode()
HTML = {"Authorization": BASIC, "Accept": "text/html", "Sec-Fetch-Site": "same-origin"}


async def test_the_form_refuses_what_the_api_refuses_and_says_why(kafka_bootstrap: str) -> None:
    """An email address as a name, an unknown alert or no form token: 4xx with the reason."""
    async with dashboard_env(kafka_bootstrap) as env:
        alert = firing_alert("phone-service", at=now())
        await env.publish(ALERTS, alert.touchpoint_id, alert)
        await env.start()
        assert env.app is not None
        directory = env.app[ACKNOWLEDGEMENTS].directory
        assert isinstance(directory, KafkaAlertDirectory)
        async with asyncio.timeout(60):
            await directory.wait_ready()
        jar = aiohttp.CookieJar(unsafe=True)  # the test serves on 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.get(env.url("/dashboard/alerts?lang=en"), headers=HTML) as page:
                assert page.status == 200
                found = re.search(rf'name="{FIELD}" value="([^"]+)"', await page.text())
            assert found is not None
            token = found.group(1)
            ack = env.url(f"/dashboard/alerts/{alert.alert_id}/ack?lang=fi")

            form = {FIELD: token, "by": "duty@example.fi", "comment": "x"}
            async with session.post(ack, data=form, headers=HTML) as refused:
                assert refused.status == 422
                text = await refused.text()
            assert '<html lang="fi">' in text
            assert "Kuittausta ei tallennettu" in text
            assert "<code>by</code>: must be a name or handle, not an email address" in text

            unknown = env.url("/dashboard/alerts/drop-nothing-1/ack?lang=en")
            async with session.post(
                unknown, data={FIELD: token, "by": "duty"}, headers=HTML
            ) as gone:
                assert gone.status == 404
                assert "unknown_alert" in await gone.text()

            json_only = {"Authorization": BASIC}
            async with session.post(ack, data={"by": "duty"}, headers=json_only) as forged:
                assert forged.status == 403
                assert (await forged.json())["error"] == "csrf_token_missing"

            form = {FIELD: token, "by": "duty", "assigned_to": "Tiimi A", "comment": "Katsottu"}
            async with session.post(ack, data=form, headers=HTML, allow_redirects=False) as done:
                assert done.status == 303
                assert done.headers["Location"] == (
                    f"/dashboard/alerts?lang=fi#alert-{alert.alert_id}"
                )
            async with session.get(env.url("/dashboard/alerts?lang=fi"), headers=HTML) as after:
                page_text = await after.text()
        assert 'data-state="acknowledged"' in page_text
        assert "Kuittasi duty" in page_text
        assert "vastuussa Tiimi A" in page_text
