"""Sign-in with a real OpenID Connect provider: the code flow, the session and the roles.

The provider is a local oidc-provider-mock; the web app runs on a real
socket. No broker is needed: these pages and refusals come before any topic
is read.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from itsdangerous import URLSafeTimedSerializer

from connectors.web import create_web_app
from connectors.web.open_surveys import SurveyIndex
from connectors.web.sessions import SESSION_COOKIE, SIGNIN_COOKIE
from schemas.config import Settings
from tests.integration.oidc_harness import oidc_provider, oidc_settings, register_people, sign_in

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator

    from aiohttp import web

TOKEN = secrets.token_urlsafe(32)
PAGE = {"Accept": "text/html"}


class _Producer:
    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        raise AssertionError(f"nothing should be written ({topic}, {key!r}, {value!r}, {headers})")


def _app(issuer: str) -> web.Application:
    settings = Settings.model_validate(
        {
            "kafka": {"bootstrap_servers": ["127.0.0.1:9"]},
            "secrets": {"pseudonymisation_key": "p" * 40, "link_signing_key": "l" * 40},
            "web": {
                "ops_token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()],
                "oidc": oidc_settings(issuer),
            },
        }
    )
    return create_web_app(
        settings, producer=_Producer(), survey_index=SurveyIndex(secret=b"x" * 32)
    )


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    """Serve the web app against a fresh local identity provider."""
    with oidc_provider() as issuer:
        await register_people(issuer)
        async with TestClient(TestServer(_app(issuer), host="127.0.0.1")) as test_client:
            yield test_client


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_a_program_gets_401(
    client: TestClient[Any, Any],
) -> None:
    """People get the sign-in page; scripts get a status they can act on."""
    page = await client.get("/dashboard?lang=sv", headers=PAGE, allow_redirects=False)
    assert page.status == 303
    location = urlsplit(page.headers["Location"])
    assert (location.path, parse_qs(location.query)) == (
        "/signin",
        {"next": ["/dashboard?lang=sv"]},
    )
    api = await client.get("/dashboard/api/overview", allow_redirects=False)
    assert api.status == 401


async def test_the_authorization_request_uses_pkce_a_nonce_and_our_callback(
    client: TestClient[Any, Any],
) -> None:
    """PKCE (S256) and the nonce stop a stolen code or a replayed token from signing anyone in."""
    started = await client.get("/signin", allow_redirects=False)
    query = parse_qs(urlsplit(started.headers["Location"]).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43  # base64url of a SHA-256, unpadded
    assert query["nonce"][0]
    assert query["state"][0]
    assert query["scope"] == ["openid profile email"]
    assert query["redirect_uri"] == ["http://127.0.0.1:8080/auth/callback"]
    cookie = started.cookies[SIGNIN_COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    challenge = query["code_challenge"][0]
    assert challenge == challenge.rstrip("=")
    assert base64.urlsafe_b64decode(challenge + "=")  # well-formed


@pytest.mark.parametrize(
    ("subject", "reads", "acknowledges"),
    # 503: past the role and CSRF checks, at the lookup of alerts (no broker here).
    [("viewer-1", 200, 403), ("operator-1", 200, 503), ("admin-1", 200, 503)],
)
async def test_each_role_reads_the_dashboard_and_only_operators_acknowledge(
    client: TestClient[Any, Any], subject: str, reads: int, acknowledges: int
) -> None:
    """Viewers read; an operator's acknowledgement gets past the role check (to the lookup)."""
    landed = await sign_in(client, subject)
    assert landed.location == "/dashboard"
    [cookie] = [value for value in landed.set_cookies if value.startswith(SESSION_COOKIE + "=")]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on localhost; Secure with https
    assert (await client.get("/dashboard/api/overview")).status == reads
    page = await client.get("/dashboard", headers=PAGE)
    token = page.cookies["palaute_csrf"].value if "palaute_csrf" in page.cookies else None
    ack = await client.post(
        "/v1/alerts/drop-unknown/ack",
        json={"comment": "katson"},
        headers={"X-CSRF-Token": token or ""},
    )
    assert ack.status == acknowledges, await ack.text()


async def test_someone_without_a_role_gets_no_session(client: TestClient[Any, Any]) -> None:
    """Being known to the provider is not enough: a role must be configured for them."""
    assert (await sign_in(client, "outsider-1")).status == 403
    assert SESSION_COOKIE not in client.session.cookie_jar.filter_cookies(client.make_url("/"))
    assert (await client.get("/dashboard/api/overview")).status == 401


async def test_a_callback_without_the_matching_state_is_refused(
    client: TestClient[Any, Any],
) -> None:
    """A code pushed into someone's browser by another site must not sign them in."""
    await client.get("/signin", allow_redirects=False)
    forged = await client.get("/auth/callback?code=abc&state=forged", allow_redirects=False)
    assert forged.status == 400
    client.session.cookie_jar.clear()
    stale = await client.get("/auth/callback?code=abc&state=x", allow_redirects=False)
    assert stale.status == 400


async def test_an_altered_or_forged_session_cookie_is_worthless(
    client: TestClient[Any, Any],
) -> None:
    """The role is in the cookie, so the cookie must be tamper-proof."""
    await sign_in(client, "viewer-1")
    jar = client.session.cookie_jar
    value = jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    payload, _, signature = value.rpartition(".")
    altered = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    claims = {"sid": "x", "name": "Mallory", "subject": "viewer-1", "role": "admin"}
    forged = URLSafeTimedSerializer("a guessed key, not ours" * 2, salt="palaute.session")
    jar.clear()
    statuses = []
    for cookie in (value, altered, forged.dumps(claims)):
        response = await client.get(
            "/dashboard/api/overview",
            headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
            allow_redirects=False,
        )
        statuses.append(response.status)
    assert statuses == [200, 401, 401]


async def test_signing_out_needs_the_forms_token_then_ends_the_session(
    client: TestClient[Any, Any],
) -> None:
    """Another site must not be able to sign a person out, and signing out must work."""
    await sign_in(client, "operator-1")
    refused = await client.post("/signout", data={}, allow_redirects=False)
    assert refused.status == 403
    page = await client.get("/dashboard", headers=PAGE)
    token = page.cookies["palaute_csrf"].value
    done = await client.post("/signout", data={"csrf_token": token}, allow_redirects=False)
    assert done.status == 303
    assert (await client.get("/dashboard/api/overview")).status == 401


async def test_the_operator_token_still_works_for_programs(client: TestClient[Any, Any]) -> None:
    """Sign-in is for people; the scripts that read the figures keep their token."""
    response = await client.get(
        "/dashboard/api/overview", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 200


async def test_a_role_too_low_gets_a_page_in_the_persons_language(
    client: TestClient[Any, Any],
) -> None:
    """A viewer who opens the admin page learns why not, in words, not in JSON."""
    await sign_in(client, "viewer-1")
    page = await client.get("/admin?lang=sv", headers=PAGE)
    assert page.status == 403
    text = await page.text()
    assert '<html lang="sv">' in text
    assert "Det här kräver rollen administratör; din roll är läsare." in text
    api = await client.get("/admin", headers={"Accept": "application/json"})
    assert api.status == 403
    assert (await api.json())["error"] == "forbidden"


async def test_the_catalogue_api_takes_a_session_and_only_an_admin_changes(
    client: TestClient[Any, Any],
) -> None:
    """People read the catalogue with their session; changing it is for admins only."""
    await sign_in(client, "operator-1")
    path = "/v1/catalogue/touchpoints/phone-service"
    assert (await client.get("/v1/catalogue/touchpoints")).status == 200
    refused = await client.patch(path, json={"touchpoint": {"name": "Puhelin"}})
    assert refused.status == 403
    assert (await refused.json())["error"] == "forbidden"
