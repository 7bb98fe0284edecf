"""Alert notifiers' pure parts: the chat text, the signature and the backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.notifiers import (
    AlertWording,
    backoff_delays,
    signature,
    summary_text,
    webhook_body,
)
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity


def _alert(state: AlertState, url: str | None = "https://ops.example/tp/walk-in") -> ScoreDropAlert:
    return ScoreDropAlert(
        alert_id="drop-0123456789abcdef0123",
        touchpoint_id="walk-in",
        kind=AlertKind.DROP,
        state=state,
        severity=Severity.WARNING,
        started_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        sample_size=25,
        evidence=Evidence(method="cusum", statistic=9.5, threshold=8.0),
        summary="mean score dropped: 3.60 over the last 25 ratings against a baseline of 4.20",
        dashboard_url=url,
    )


@pytest.mark.parametrize(
    ("state", "head"), [(AlertState.FIRING, "[FIRING]"), (AlertState.RESOLVED, "[RESOLVED]")]
)
def test_the_chat_text_says_the_state_the_touchpoint_and_the_link(
    state: AlertState, head: str
) -> None:
    """Someone reading a chat notification must see at once what happened where."""
    text = summary_text(_alert(state))
    first, *rest = text.splitlines()
    assert first.startswith(f"{head} Mean score dropped: walk-in (warning, ")
    assert rest[-1] == "Dashboard: https://ops.example/tp/walk-in"


def test_the_chat_text_is_the_pages_plain_words_in_the_configured_language() -> None:
    """The webhook and the email tell the alert as the dashboard does: named, local, Finnish."""
    alert = _alert(AlertState.FIRING).model_copy(update={"before": 4.2, "after": 3.6})
    wording = AlertWording("fi", ZoneInfo("Europe/Helsinki"), lambda _tp, _lang: "Asiakaspalvelu")
    lines = summary_text(alert, wording).splitlines()
    assert lines == [
        "[FIRING] Keskiarvo laski: Asiakaspalvelu (varoitus, käynnissä)",
        (
            "Keskiarvo laski 4,20:stä 3,60:een viimeisimmissä 25 vastauksessa. "
            "Muutos on liian suuri ja pitkäkestoinen ollakseen tavallista vaihtelua."
        ),
        "Alkoi 2.3.2026 klo 14.00.",
        "Hallintanäkymä: https://ops.example/tp/walk-in",
    ]
    assert json.loads(webhook_body(alert, wording))["text"] == "\n".join(lines)


def test_an_alert_without_a_dashboard_has_no_link_line() -> None:
    """An empty link would be a dead end in the chat."""
    assert "Dashboard" not in summary_text(_alert(AlertState.FIRING, url=None))


def test_the_body_holds_every_alert_field_and_the_text() -> None:
    """Incident tools key on alert_id and state; chats show the text."""
    alert = _alert(AlertState.FIRING)
    payload = json.loads(webhook_body(alert))
    assert payload.pop("text") == summary_text(alert)
    assert payload == alert.model_dump(mode="json")


def test_the_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    """Receivers implement the check from the docs; it must be exactly this."""
    body = b'{"a":1}'
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(b"secret", "1700000000", body) == f"sha256={expected}"
    assert signature(b"secret", "1700000001", body) != signature(b"secret", "1700000000", body)


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_full() -> None:
    """Workers failing together must not retry together, nor wait without bound."""
    assert backoff_delays(1) == []
    low = backoff_delays(6, base=1.0, cap=8.0, rng=lambda: 0.0)
    high = backoff_delays(6, base=1.0, cap=8.0, rng=lambda: 1.0)
    assert high == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert low == [d / 2 for d in high]
