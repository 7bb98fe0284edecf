"""Sign-in with OpenID Connect: the authorization code flow with PKCE, through Authlib.

Routes (only when ``[web.oidc]`` is configured):

- ``GET /signin?next=/dashboard`` — sends the browser to the provider with a
  fresh ``state``, ``nonce`` and PKCE challenge (S256), kept in a signed
  cookie for ten minutes;
- ``GET /auth/callback`` — the provider sends the person back here: the state
  must match, the code is exchanged for tokens (with the PKCE verifier), the
  ID token's signature, issuer, audience, expiry and nonce are checked by
  Authlib, and the person's role comes from :mod:`engine.roles`. A person
  without a role gets a 403 page, not a session;
- ``POST /signout`` — ends the session (CSRF-checked like every form; see
  :mod:`connectors.web.access`).

The provider's discovery document and keys are fetched on first use and
kept; a key the provider rotates in is fetched when an ID token names it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from aiohttp import web
from authlib.integrations.base_client import BaseApp, OAuthError
from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc.errors import JoseError

from connectors.web import pages_accounts
from connectors.web.sessions import SessionCookies, SignIn
from engine.roles import Refused, actor_of

if TYPE_CHECKING:
    from schemas.accounts import OidcConfig
    from schemas.config import Settings

logger = logging.getLogger(__name__)

CALLBACK_PATH: Final = "/auth/callback"
DEFAULT_NEXT: Final = "/dashboard"
PROVIDER_TIMEOUT: Final = 10.0


class _ProviderApp(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):  # type: ignore[misc]
    """Authlib's framework-free OAuth 2 / OpenID client over httpx."""

    client_cls = AsyncOAuth2Client


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where to send the browser to sign in, and what to remember until it is back."""

    url: str
    signin: SignIn


class OidcProvider:
    """The organisation's identity provider, as this service's relying party."""

    def __init__(self, config: OidcConfig, redirect_uri: str) -> None:
        self.config = config
        self.redirect_uri = redirect_uri
        issuer = str(config.issuer).rstrip("/")
        secret = config.client_secret
        self._app = _ProviderApp(
            None,
            name="palaute",
            client_id=config.client_id,
            client_secret=None if secret is None else secret.get_secret_value(),
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": " ".join(config.scopes),
                "code_challenge_method": "S256",
                "timeout": PROVIDER_TIMEOUT,
                **({} if secret is not None else {"token_endpoint_auth_method": "none"}),
            },
        )

    async def _check_issuer(self) -> None:
        """Refuse a discovery document that names another issuer (OIDC Discovery 4.3)."""
        metadata = await self._app.load_server_metadata()
        published = str(metadata.get("issuer", "")).rstrip("/")
        if published != str(self.config.issuer).rstrip("/"):
            raise OAuthError(
                error="issuer_mismatch",
                description="the provider's discovery document names another issuer",
            )

    async def start(self, next_path: str) -> Redirect:
        """Make the authorization request: state, nonce and PKCE challenge."""
        await self._check_issuer()
        created = cast(
            "dict[str, str]", await self._app.create_authorization_url(self.redirect_uri)
        )
        return Redirect(
            url=created["url"],
            signin=SignIn(
                state=created["state"],
                nonce=created["nonce"],
                code_verifier=created["code_verifier"],
                next_path=next_path,
            ),
        )

    async def finish(self, code: str, signin: SignIn) -> dict[str, Any]:
        """Exchange the code and give the ID token's verified claims.

        Raises OAuthError, JoseError or httpx's errors when the provider says
        no, cannot be reached, or sends a token that does not verify.
        """
        await self._check_issuer()
        token = await self._app.fetch_access_token(
            redirect_uri=self.redirect_uri, code=code, code_verifier=signin.code_verifier
        )
        claims = await self._app.parse_id_token(token, nonce=signin.nonce)
        if claims is None:
            raise OAuthError(error="missing_id_token", description="no ID token was returned")
        return dict(claims)


def see_other(location: str, *, status: int = 303) -> web.Response:
    """Redirect with a response of our own, so that cookies can be set on it."""
    return web.Response(status=status, headers={"Location": location})


def safe_next(value: str | None) -> str:
    """Keep a return path on this site: a path of our own, never another host."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    return value


class SignInRoutes:
    """The three handlers around the provider and the cookies."""

    def __init__(self, provider: OidcProvider, cookies: SessionCookies) -> None:
        self.provider = provider
        self.cookies = cookies

    async def signin(self, request: web.Request) -> web.StreamResponse:
        """GET /signin: off to the provider."""
        try:
            redirect = await self.provider.start(safe_next(request.query.get("next")))
        except Exception as error:  # noqa: BLE001 - any failure to reach the provider
            logger.warning("sign-in: the identity provider cannot be used (%s)", error)
            return pages_accounts.problem(request, 503, "provider_unreachable")
        response = see_other(redirect.url, status=302)
        self.cookies.write_signin(response, redirect.signin)
        return response

    async def callback(self, request: web.Request) -> web.StreamResponse:
        """GET /auth/callback: check, exchange, verify, then start the session."""
        signin = self.cookies.read_signin(request)
        state, code = request.query.get("state"), request.query.get("code")
        if signin is None or state != signin.state:
            return pages_accounts.problem(request, 400, "signin_expired")
        if request.query.get("error") or not code:
            return pages_accounts.problem(request, 403, "provider_refused")
        try:
            claims = await self.provider.finish(code, signin)
        except (OAuthError, JoseError, ValueError) as error:
            logger.warning("sign-in refused: %s", type(error).__name__)
            return pages_accounts.problem(request, 403, "token_invalid")
        except Exception as error:  # noqa: BLE001 - the provider's network failures
            logger.warning("sign-in: token exchange failed (%s)", error)
            return pages_accounts.problem(request, 503, "provider_unreachable")
        actor = actor_of(claims, self.provider.config)
        if isinstance(actor, Refused):
            logger.info("sign-in refused: %s", actor.reason)
            response = pages_accounts.problem(request, 403, "no_role")
            self.cookies.end_signin(response)
            return response
        session = self.cookies.new_session(actor)
        logger.info("signed in: %s as %s", actor.subject, actor.role.value)
        response = see_other(signin.next_path, status=302)
        self.cookies.end_signin(response)
        self.cookies.write(response, session)
        return response


def secure_cookies(settings: Settings) -> bool:
    """Mark cookies Secure whenever the service is served over HTTPS."""
    return settings.web.public_base_url.scheme == "https"


def redirect_uri(settings: Settings) -> str:
    """Give the callback address to register at the provider."""
    return str(settings.web.public_base_url).rstrip("/") + CALLBACK_PATH
