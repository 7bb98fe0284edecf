"""The operators' forms refuse requests another site's page makes, and accept their own."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors.web.csrf import (
    COOKIE,
    FIELD,
    HEADER,
    CsrfGuard,
    CsrfRejected,
    credential_subject,
    hidden_field,
    origin_of,
    rejection_response,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ALICE = credential_subject("alice-token")
BOB = credential_subject("bob-token")
KEY = b"k" * 32


def test_a_token_is_valid_for_its_operator_only() -> None:
    """A token lifted from one operator's page must not let anyone else's request through."""
    guard = CsrfGuard(KEY)
    token = guard.issue(ALICE)
    assert guard.valid(token, ALICE)
    assert not guard.valid(token, BOB)


def test_a_token_from_another_key_is_refused() -> None:
    """Tokens are signed: one made up, or signed by another deployment, is worthless."""
    token = CsrfGuard(b"x" * 32).issue(ALICE)
    with pytest.raises(CsrfRejected) as refused:
        CsrfGuard(KEY).check_token(token, ALICE)
    assert refused.value.code == "csrf_token_invalid"


def test_without_a_key_each_process_draws_its_own() -> None:
    """The documented fallback: a restart (a new guard) invalidates the open forms."""
    token = CsrfGuard().issue(ALICE)
    assert not CsrfGuard().valid(token, ALICE)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.1.c.d", "n.12x.mac", "." * 300],
)
def test_malformed_tokens_are_refused_without_error(token: str) -> None:
    """Whatever arrives in the field is refused as a reason, never as an exception."""
    with pytest.raises(CsrfRejected) as refused:
        CsrfGuard(KEY).check_token(token, ALICE)
    assert refused.value.code == "csrf_token_invalid"


def test_an_old_token_expires() -> None:
    """A form left open for longer than max_age asks for a reload."""
    guard = CsrfGuard(KEY, max_age=3600)
    token = guard.issue(ALICE, now=1_000_000)
    guard.check_token(token, ALICE, now=1_000_000 + 3599)
    with pytest.raises(CsrfRejected) as refused:
        guard.check_token(token, ALICE, now=1_000_000 + 3601)
    assert refused.value.code == "csrf_token_expired"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Palaute.example.fi/dashboard", "https://palaute.example.fi"),
        ("https://palaute.example.fi:443/", "https://palaute.example.fi"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:80/x", "http://localhost"),
    ],
)
def test_origins_compare_as_browsers_write_them(url: str, origin: str) -> None:
    """A configured base URL with a path or default port still matches the Origin header."""
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Sec-Fetch-Site": "cross-site"}, "cross_site_request"),
        ({"Sec-Fetch-Site": "same-site"}, "cross_site_request"),
        ({"Origin": "https://evil.example"}, "origin_mismatch"),
        (
            {"Sec-Fetch-Site": "cross-site", "Origin": "https://palaute.example.fi"},
            "cross_site_request",
        ),
        ({"Origin": "null"}, "origin_mismatch"),
    ],
)
def test_the_browsers_word_on_where_a_request_came_from_is_believed(
    headers: dict[str, str], code: str
) -> None:
    """A sibling subdomain or a sandboxed frame is another site too."""
    guard = CsrfGuard(KEY, origins=["https://palaute.example.fi"])
    with pytest.raises(CsrfRejected) as refused:
        guard.check_origin(headers, "http://internal:8080")
    assert refused.value.code == code


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://palaute.example.fi"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://internal:8080"},
        # A page under Referrer-Policy: no-referrer posts with Origin: null; the fetch
        # metadata still tells.
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    ],
)
def test_own_pages_and_old_browsers_pass_the_origin_check(headers: dict[str, str]) -> None:
    """Our address, or the host asked; without either header the token decides."""
    CsrfGuard(KEY, origins=["https://palaute.example.fi/"]).check_origin(
        headers, "http://internal:8080"
    )


def test_the_hidden_field_escapes_the_token() -> None:
    """The token goes into HTML; nothing in it may break out of the attribute."""
    assert hidden_field('a"b') == f'<input type="hidden" name="{FIELD}" value="a&quot;b">'


# A form round trip through a real aiohttp server.

GUARD = web.AppKey("guard", CsrfGuard)


async def _form(request: web.Request) -> web.Response:
    guard = request.app[GUARD]
    token = guard.token_for(request, ALICE)
    response = web.Response(
        text=f'<form method="post">{hidden_field(token)}</form>', content_type="text/html"
    )
    guard.set_cookie(response, token)
    return response


async def _post(request: web.Request) -> web.Response:
    try:
        await request.app[GUARD].check(request, ALICE)
    except CsrfRejected as rejected:
        return rejection_response(request, rejected, request.query.get("lang", "fi"))
    form = await request.post()
    return web.json_response({"comment": form.get("comment")})


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app[GUARD] = CsrfGuard(KEY)
    app.router.add_get("/form", _form)
    app.router.add_post("/form", _post)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _token(client: TestClient[web.Request, web.Application]) -> str:
    page = await (await client.get("/form")).text()
    found = re.search(r'value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_the_pages_own_form_is_accepted_and_its_body_still_readable(
    client: TestClient[web.Request, web.Application],
) -> None:
    """The guard reads the form; the handler must still see every field after it."""
    token = await _token(client)
    response = await client.post(
        "/form",
        data={FIELD: token, "comment": "katsottu"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert response.status == 200
    assert await response.json() == {"comment": "katsottu"}


async def test_the_token_stays_the_same_while_the_cookie_is_valid(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Two tabs of the dashboard must not invalidate each other's forms."""
    assert await _token(client) == await _token(client)


async def test_a_script_may_send_the_token_in_a_header(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Programs and scripts on the page send JSON, not forms."""
    token = await _token(client)
    response = await client.post("/form", json={}, headers={HEADER: token})
    assert response.status == 200


async def test_a_form_without_its_token_is_403_with_the_json_error_shape(
    client: TestClient[web.Request, web.Application],
) -> None:
    """The reason is named, in the shape every other error of the service has."""
    await _token(client)
    response = await client.post("/form", data={"comment": "x"})
    assert response.status == 403
    assert await response.json() == {
        "error": "csrf_token_missing",
        "message": f"the form has no {FIELD}; reload the page",
        "errors": [],
    }


async def test_a_token_without_its_cookie_is_refused(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Double submit: a token copied into another browser's form does not go with its cookie."""
    token = await _token(client)
    client.session.cookie_jar.clear()
    response = await client.post("/form", data={FIELD: token})
    assert response.status == 403
    assert (await response.json())["error"] == "csrf_cookie_mismatch"


async def test_a_cross_site_form_gets_a_page_in_the_persons_language(
    client: TestClient[web.Request, web.Application],
) -> None:
    """A person who lands on the refusal reads why, in Swedish here, with a way back."""
    token = await _token(client)
    response = await client.post(
        "/form?lang=sv",
        data={FIELD: token},
        headers={"Sec-Fetch-Site": "cross-site", "Accept": "text/html"},
    )
    assert response.status == 403
    page = await response.text()
    assert '<html lang="sv">' in page
    assert "Formuläret godtogs inte" in page
    assert "cross_site_request" in page


async def test_the_cookie_is_strict_and_hidden_from_scripts(
    client: TestClient[web.Request, web.Application],
) -> None:
    """SameSite=Strict keeps the cookie off other sites' requests, HttpOnly off scripts."""
    response = await client.get("/form")
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
