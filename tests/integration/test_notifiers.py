"""Alert notifiers against real receivers: an aiohttp server and an SMTP server on 127.0.0.1."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from connectors.notifiers import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertWording,
    EmailNotifier,
    WebhookNotifier,
    WebhookRejectedError,
    signature,
)
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity
from schemas.config import SmtpConfig
from tests.integration.smtp_server import smtp_sink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.integration.smtp_server import SmtpSink

__all__ = ["smtp_sink"]

pytestmark = pytest.mark.integration

SECRET = b"webhook-secret-for-the-integration-test"


def _alert(state: AlertState = AlertState.FIRING) -> ScoreDropAlert:
    return ScoreDropAlert(
        alert_id="drop-0123456789abcdef0123",
        touchpoint_id="phone-service",
        kind=AlertKind.DROP,
        state=state,
        severity=Severity.CRITICAL,
        started_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        resolved_at=datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
        if state is AlertState.RESOLVED
        else None,
        before=4.3,
        after=3.4,
        sample_size=40,
        evidence=Evidence(method="cusum", statistic=12.5, threshold=9.8),
        summary="mean score dropped: 3.40 over the last 40 ratings against a baseline of 4.30",
        dashboard_url="https://ops.example/dashboard/touchpoints/phone-service",
    )


@dataclass
class Receiver:
    """A webhook receiver that answers from a script and keeps what it got."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """Serve the receiver on a free loopback port."""
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


async def _no_wait(_seconds: float) -> None:
    return None


def _notifier(url: str, attempts: int = 4) -> WebhookNotifier:
    return WebhookNotifier(url, SECRET, timeout=5.0, attempts=attempts, sleep=_no_wait)


async def test_the_webhook_body_is_signed_and_carries_a_chat_text(receiver: Receiver) -> None:
    """Receivers must be able to prove the alert came from us, and chats show the text."""
    await _notifier(receiver.url).notify(_alert())
    [(headers, body)] = receiver.requests
    expected = signature(SECRET, headers[TIMESTAMP_HEADER], body)
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    assert not hmac.compare_digest(headers[SIGNATURE_HEADER], signature(b"other", "0", body))
    payload = json.loads(body)
    assert payload["alert_id"] == "drop-0123456789abcdef0123"
    assert payload["state"] == "firing"
    assert payload["text"].startswith("[FIRING] Mean score dropped: phone-service (urgent, active)")
    assert "fell from 4.30 to 3.40 over the latest 40 answers" in payload["text"]
    assert "https://ops.example/dashboard/touchpoints/phone-service" in payload["text"]


async def test_the_webhook_retries_a_503_until_it_succeeds(receiver: Receiver) -> None:
    """A receiver restarting must not cost operations an alert."""
    receiver.statuses = [503, 503]
    await _notifier(receiver.url).notify(_alert(AlertState.RESOLVED))
    assert len(receiver.requests) == 3
    assert len({body for _, body in receiver.requests}) == 1


async def test_the_webhook_never_retries_a_400(receiver: Receiver) -> None:
    """A receiver that refuses the body will refuse it again; retrying only adds noise."""
    receiver.statuses = [400]
    with pytest.raises(WebhookRejectedError) as refused:
        await _notifier(receiver.url).notify(_alert())
    assert refused.value.status == 400
    assert not refused.value.retriable
    assert len(receiver.requests) == 1


async def test_the_alert_email_reaches_the_operations_mailbox(smtp_sink: SmtpSink) -> None:
    """Email is the channel of last resort for operations; it must arrive and be readable."""
    smtp = SmtpConfig(
        host=smtp_sink.host, port=smtp_sink.port, security="none", sender="palaute@example.fi"
    )
    await EmailNotifier(smtp, "ops@example.fi").notify(_alert())
    [mail] = smtp_sink.received
    assert mail.rcpt_tos == ("ops@example.fi",)
    message = mail.message()
    assert message["Subject"] == "[Palaute FIRING] Mean score dropped: phone-service (urgent)"
    body = message.get_content()
    assert "The mean score fell from 4.30 to 3.40 over the latest 40 answers." in body
    assert "drop-0123456789abcdef0123" in body


async def test_a_finnish_alert_email_is_finnish_throughout(smtp_sink: SmtpSink) -> None:
    """The configured language names the touchpoint and writes local times, details included."""
    smtp = SmtpConfig(
        host=smtp_sink.host, port=smtp_sink.port, security="none", sender="palaute@example.fi"
    )
    wording = AlertWording("fi", ZoneInfo("Europe/Helsinki"), lambda _tp, _lang: "Puhelinpalvelu")
    await EmailNotifier(smtp, "ops@example.fi", wording=wording).notify(_alert())
    [mail] = smtp_sink.received
    message = mail.message()
    assert message["Subject"] == "[Palaute FIRING] Keskiarvo laski: Puhelinpalvelu (kiireellinen)"
    body = message.get_content()
    assert "Keskiarvo laski 4,30:stä 3,40:een viimeisimmissä 40 vastauksessa." in body
    assert "Alkoi 2.3.2026 klo 14.00." in body
    assert "alkoi: 2026-03-02T14:00+02:00" in body
    for english in ("state", "started", "sample", "method", "cusum", "critical", "firing:"):
        assert english not in body.lower()
