"""A local OpenID Connect provider for the sign-in tests, and a person's way through it.

The provider is oidc-provider-mock (Authlib's server in Flask) in a thread on
127.0.0.1: it publishes discovery and keys, shows an authorization form, and
issues signed ID tokens carrying the claims a test gives each subject
(``PUT /users/{sub}``), such as the groups that make someone an operator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import aiohttp
import oidc_provider_mock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from aiohttp.test_utils import TestClient

SESSION_KEY = "k" * 48
GROUPS = {"palaute-viewers": "viewer", "palaute-operators": "operator", "palaute-admins": "admin"}
PEOPLE: dict[str, dict[str, Any]] = {
    "viewer-1": {"name": "Veera Katselija", "groups": ["palaute-viewers"]},
    "operator-1": {"name": "Olli Operaattori", "groups": ["palaute-viewers", "palaute-operators"]},
    "admin-1": {"name": "Aino Ylläpitäjä", "groups": ["palaute-admins"]},
    "outsider-1": {"name": "Ulla Ulkopuolinen", "groups": ["someone-else"]},
}


@contextlib.contextmanager
def oidc_provider() -> Iterator[str]:
    """Run the provider on a free port; give its issuer URL."""
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


async def register_people(issuer: str) -> None:
    """Give each test person their claims at the provider."""
    async with aiohttp.ClientSession() as http:
        for subject, claims in PEOPLE.items():
            async with http.put(f"{issuer}/users/{quote(subject)}", json=claims) as response:
                assert response.status == 204, await response.text()


def oidc_settings(issuer: str) -> dict[str, Any]:
    """Give the ``[web.oidc]`` section for the local provider."""
    return {
        "issuer": issuer,
        "client_id": "palaute-web",
        "client_secret": "not-checked-by-the-local-provider",
        "session_key": SESSION_KEY,
        "role_claim": "groups",
        "claim_roles": GROUPS,
    }


@dataclass(frozen=True)
class Landing:
    """Where the callback sent the browser (or the refusal's status) and the cookies it set."""

    status: int
    location: str | None
    set_cookies: list[str]


async def sign_in(
    client: TestClient[Any, Any], subject: str, next_path: str = "/dashboard"
) -> Landing:
    """Go through the whole code flow as a browser would; give where it lands."""
    started = await client.get(f"/signin?next={quote(next_path)}", allow_redirects=False)
    assert started.status == 302, await started.text()
    authorize = started.headers["Location"]
    async with (
        aiohttp.ClientSession() as provider,
        provider.post(authorize, data={"sub": subject}, allow_redirects=False) as chosen,
    ):
        assert chosen.status == 302, await chosen.text()
        back = urlsplit(chosen.headers["Location"])
    finished = await client.get(f"{back.path}?{back.query}", allow_redirects=False)
    return Landing(
        status=finished.status,
        location=finished.headers.get("Location"),
        set_cookies=finished.headers.getall("Set-Cookie", []),
    )
