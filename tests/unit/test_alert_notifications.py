"""Alert notifiers' pure parts: the chat text, the signature and the backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from connectors.notifiers import backoff_delays, signature, summary_text, webhook_body
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
    assert first == f"{head} warning drop alert on touchpoint walk-in"
    assert rest[-1] == "Dashboard: https://ops.example/tp/walk-in"


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
