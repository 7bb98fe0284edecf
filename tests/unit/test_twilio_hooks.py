"""Twilio signatures are checked against the public URL, wherever the service really listens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from connectors.web import create_web_app
from connectors.web.open_surveys import SurveyIndex
from schemas.config import Settings

if TYPE_CHECKING:
    import asyncio

TOKEN = "unit-test-auth-token"
PUBLIC = "https://palaute.example.fi"
SETTINGS = Settings.model_validate(
    {
        "secrets": {"pseudonymisation_key": "p" * 40, "link_signing_key": "l" * 40},
        "web": {"public_base_url": PUBLIC},
        "twilio": {
            "account_sid": "AC" + "2" * 32,
            "auth_token": TOKEN,
            "from_number": "+358451234567",
        },
    }
)
FORM = {"From": "+358401234567", "Body": "apua", "MessageSid": "SM" + "3" * 32}


class _Producer:
    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        raise AssertionError(f"nothing should be written ({topic}, {key!r}, {value!r}, {headers})")


async def _post(path: str, signed_url: str) -> tuple[int, str]:
    app = create_web_app(SETTINGS, producer=_Producer(), survey_index=SurveyIndex(secret=b"x" * 32))
    signature = RequestValidator(TOKEN).compute_signature(signed_url, FORM)
    async with TestClient(TestServer(app)) as client:
        headers = {"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https"}
        async with client.post(path, data=FORM, headers=headers) as response:
            return response.status, await response.text()


async def test_a_signature_over_the_public_url_is_accepted_behind_a_proxy() -> None:
    """A TLS proxy forwards to a private address; Twilio signed the public one."""
    status, body = await _post("/twilio/inbound?route=a", PUBLIC + "/twilio/inbound?route=a")
    assert status == 200
    assert "<Response><Message>" in body


async def test_a_signature_over_the_internal_url_or_another_path_is_refused() -> None:
    """The URL is part of what is signed: a request replayed elsewhere must fail."""
    internal, _ = await _post("/twilio/inbound", "http://127.0.0.1:8080/twilio/inbound")
    other_path, _ = await _post("/twilio/inbound", PUBLIC + "/twilio/status")
    dropped_query, _ = await _post("/twilio/inbound?route=a", PUBLIC + "/twilio/inbound")
    assert (internal, other_path, dropped_query) == (403, 403, 403)
