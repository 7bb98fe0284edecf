"""No input to the public endpoints makes the service answer 5xx, and none records a vote by GET."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from connectors.web import create_web_app
from connectors.web.open_surveys import SurveyIndex
from connectors.web.pages import link_signer
from engine.tokens import TokenPayload, TokenPurpose
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import Settings
from schemas.surveys import SurveyScheduled, SurveySent

NOW = datetime.now(UTC)
TOKEN = "property-auth-token"
SETTINGS = Settings.model_validate(
    {
        "secrets": {"pseudonymisation_key": "p" * 40, "link_signing_key": "l" * 40},
        "ingress": {"max_body_bytes": 4096},
        "touchpoints": {"tp": {"follow_up_statements": ["Sain apua.", "Asiointi oli helppoa."]}},
        "twilio": {
            "account_sid": "AC" + "1" * 32,
            "auth_token": TOKEN,
            "from_number": "+358451234567",
        },
    }
)


class _Producer:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        del topic, key, headers
        self.values.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _index() -> SurveyIndex:
    index = SurveyIndex(secret=b"s" * 32)
    common: dict[str, Any] = {
        "survey_id": "s-1",
        "citizen_key": "ab" * 32,
        "contact_id": "c-1",
        "touchpoint_id": "tp",
    }
    index.apply(
        SurveyScheduled(
            **common,
            occurred_at=NOW,
            channel=SurveyChannel.EMAIL,
            language=Language.EN,
            scale=Scale.CSAT_5,
            contact_ended_at=NOW,
            send_at=NOW,
            expires_at=NOW + timedelta(days=3),
        )
    )
    index.apply(SurveySent(**common, occurred_at=NOW, channel=SurveyChannel.EMAIL))
    return index


GOOD = link_signer(SETTINGS).sign(
    TokenPayload("s-1", TokenPurpose.SCORE, NOW + timedelta(days=2), 3), NOW
)
tokens = st.one_of(
    st.text(st.characters(codec="ascii", exclude_characters="/?#%"), min_size=1, max_size=60),
    st.builds(
        lambda cut, extra: GOOD[:cut] + extra, st.integers(0, len(GOOD)), st.text(max_size=3)
    ),
    st.just(GOOD),
)
forms = st.dictionaries(
    st.sampled_from(
        ["score", "mode", "comment", "List-Unsubscribe", "Body", "From", "statement-0", "x"]
    ),
    st.text(max_size=200),
    max_size=4,
)


async def _exercise(path_token: str, form: dict[str, str], body: bytes) -> list[tuple[str, int]]:
    producer = _Producer()
    app = create_web_app(SETTINGS, producer=producer, survey_index=_index())
    statuses: list[tuple[str, int]] = []
    async with TestClient(TestServer(app)) as client:
        for method, path in (
            ("GET", f"/r/{path_token}"),
            ("HEAD", f"/r/{path_token}"),
            ("GET", f"/u/{path_token}"),
            ("GET", f"/h/{path_token}"),
            ("HEAD", f"/h/{path_token}"),
        ):
            async with client.request(method, path) as response:
                statuses.append((f"{method} {path}", response.status))
        assert producer.values == [], "a GET or HEAD recorded something"
        for path in (
            f"/r/{path_token}",
            f"/r/{path_token}/comment",
            f"/r/{path_token}/statements",
            f"/u/{path_token}",
        ):
            async with client.post(path, data=form) as response:
                statuses.append((f"POST {path}", response.status))
            async with client.post(path, data=body) as response:
                statuses.append((f"POST raw {path}", response.status))
        url = str(client.make_url("/twilio/inbound"))
        signature = RequestValidator(TOKEN).compute_signature(url, form)
        headers = {"X-Twilio-Signature": signature}
        for hook in ("/twilio/inbound", "/twilio/status"):
            async with client.post(hook, data=form, headers=headers) as response:
                statuses.append((f"POST {hook}", response.status))
    return statuses


@settings(max_examples=60, deadline=None)
@given(path_token=tokens, form=forms, body=st.binary(max_size=5000))
def test_no_input_to_the_public_endpoints_gets_a_5xx(
    path_token: str, form: dict[str, str], body: bytes
) -> None:
    """Citizens' phones, scanners and attackers send anything; the answer is never a crash."""
    statuses = asyncio.run(_exercise(path_token, form, body))
    assert all(status < 500 for _, status in statuses), statuses
