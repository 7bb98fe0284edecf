"""Who is asking, and may they: sessions, operator tokens and the three roles.

Every page and endpoint for staff asks :meth:`Access.require` for the role it
needs and gets back a :class:`Principal`, the one record of who did it:

- a **signed-in person** (``[web.oidc]``; :mod:`connectors.web.oidc`): their
  name, subject and role from the session cookie;
- a **program or a browser with the operator token** (``[web]
  ops_token_sha256``), as ``Authorization: Bearer TOKEN`` or HTTP Basic with
  the token as the password: the operator role, recorded as
  ``token:`` and the first twelve hex digits of the token's SHA-256.

Without either, a browser asking for a page is sent to sign in (when sign-in
is configured), anything else gets 401 with a Basic challenge. With a role
too low: 403. A state-changing form is also checked against cross-site
request forgery (:mod:`connectors.web.csrf`), bound to the session or to the
token: :meth:`Access.check_form`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from aiohttp import hdrs, web

from connectors.web import csrf, oidc, pages_accounts
from connectors.web.errors import ApiError
from connectors.web.sessions import SessionCookies
from schemas.accounts import Actor, Role

if TYPE_CHECKING:
    from schemas.config import Settings

CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="palaute-operations", charset="UTF-8"'}
TOKEN_NAME: Final = "operator token"  # noqa: S105 - a label, not a secret
TOKEN_SUBJECT_DIGITS: Final = 12
MAX_TOKEN_LENGTH: Final = 256


class OperatorTokens:
    """The operators' bearer tokens, known by their SHA-256 only."""

    def __init__(self, digests: list[str]) -> None:
        self._digests = list(digests)

    def authenticate(self, presented: str | None) -> bool:
        """Tell whether the token is one of the configured ones (constant time each)."""
        return self.match(presented) is not None

    def match(self, presented: str | None) -> str | None:
        """Give the configured digest the token matches, or None (constant time each)."""
        if not presented or len(presented) > MAX_TOKEN_LENGTH:
            return None
        digest = hashlib.sha256(presented.encode()).hexdigest()
        found = None
        for known in self._digests:
            if hmac.compare_digest(digest, known):
                found = known
        return found


def presented_token(authorization: str) -> str | None:
    """Take the token out of a Bearer or Basic (password part) Authorization header."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, colon, password = decoded.partition(":")
        return password if colon else None
    return None


class RoleRefusedError(ApiError):
    """A person's role does not allow this: 403 with a page in their language."""

    def __init__(self, page: str) -> None:
        super().__init__(403, "forbidden", "the role of the signed-in person does not allow this")
        self.page = page

    def response(self) -> web.Response:
        """Answer with the page rather than the JSON error shape."""
        return web.Response(status=403, text=self.page, content_type="text/html", charset="utf-8")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from, how they proved it, and what CSRF tokens are bound to."""

    actor: Actor
    csrf_subject: str
    signed_in: bool

    def may(self, role: Role) -> bool:
        """Tell whether this principal holds ``role`` or a higher one."""
        return self.actor.role.includes(role)


class Access:
    """The web application's gatekeeper; one per application (``app[ACCESS]``)."""

    def __init__(
        self, tokens: OperatorTokens, cookies: SessionCookies | None, guard: csrf.CsrfGuard
    ) -> None:
        self.tokens = tokens
        self.cookies = cookies
        self.guard = guard

    @property
    def sign_in_enabled(self) -> bool:
        """True when people sign in with an identity provider."""
        return self.cookies is not None

    def identify(self, request: web.Request) -> Principal | None:
        """Give the request's principal: the operator token first, then the session."""
        token = presented_token(request.headers.get(hdrs.AUTHORIZATION, ""))
        digest = self.tokens.match(token)
        if token is not None and digest is not None:
            return Principal(
                actor=Actor(
                    name=TOKEN_NAME,
                    subject=f"token:{digest[:TOKEN_SUBJECT_DIGITS]}",
                    role=Role.OPERATOR,
                ),
                csrf_subject=csrf.credential_subject(token),
                signed_in=False,
            )
        session = None if self.cookies is None else self.cookies.read(request)
        if session is None:
            return None
        return Principal(actor=session.actor, csrf_subject=session.csrf_subject, signed_in=True)

    def require(self, request: web.Request, role: Role) -> Principal:
        """Give the principal if it holds ``role``; else 401, a redirect to sign in, or 403."""
        principal = self.identify(request)
        if principal is None:
            if self.sign_in_enabled and _wants_page(request):
                target = quote(request.path_qs, safe="")
                raise web.HTTPSeeOther(f"/signin?next={target}")
            raise ApiError(
                401, "unauthorized", "sign in or present an operator token", headers=CHALLENGE
            )
        if not principal.may(role):
            if "text/html" in request.headers.get(hdrs.ACCEPT, ""):
                raise RoleRefusedError(
                    pages_accounts.forbidden_page(
                        pages_accounts.language(request), role.value, principal.actor.role.value
                    )
                )
            raise ApiError(
                403,
                "forbidden",
                f"this needs the {role.value} role; yours is {principal.actor.role.value}",
            )
        return principal

    async def check_form(self, request: web.Request, principal: Principal) -> None:
        """Refuse (403) a state-changing request that is not provably from our own page.

        A program presenting the token in the Authorization header is not a
        browser acting on a cookie or remembered Basic credentials, so it is
        not asked for a form token.
        """
        if not principal.signed_in and request.headers.get(
            hdrs.AUTHORIZATION, ""
        ).lower().startswith("bearer "):
            return
        try:
            await self.guard.check(request, principal.csrf_subject)
        except csrf.CsrfRejected as rejection:
            raise ApiError(403, rejection.code, rejection.message) from None

    def form_token(self, request: web.Request, principal: Principal) -> str:
        """Give the CSRF token for this principal's forms (send it with :meth:`csrf_cookie`)."""
        return self.guard.token_for(request, principal.csrf_subject)

    def csrf_cookie(self, response: web.StreamResponse, token: str) -> None:
        """Set the double-submit cookie that goes with ``token``."""
        self.guard.set_cookie(response, token)


def _wants_page(request: web.Request) -> bool:
    return request.method == hdrs.METH_GET and "text/html" in request.headers.get(hdrs.ACCEPT, "")


ACCESS: Final = web.AppKey("access", Access)


async def _signout(request: web.Request) -> web.StreamResponse:
    access = request.app[ACCESS]
    principal = access.identify(request)
    if principal is not None and principal.signed_in:
        await access.check_form(request, principal)
    response = oidc.see_other(f"/signin/done?lang={pages_accounts.language(request)}")
    if access.cookies is not None:
        access.cookies.end(response)
    return response


def setup(app: web.Application, settings: Settings) -> Access:
    """Give the application its gatekeeper, and the sign-in routes when configured."""
    guard = app[csrf.CSRF] if csrf.CSRF in app else csrf.setup(app, settings)
    config = settings.web.oidc
    cookies = (
        None if config is None else SessionCookies(config, secure=oidc.secure_cookies(settings))
    )
    access = Access(OperatorTokens(settings.web.ops_token_sha256), cookies, guard)
    app[ACCESS] = access
    if config is not None and cookies is not None:
        routes = oidc.SignInRoutes(oidc.OidcProvider(config, oidc.redirect_uri(settings)), cookies)
        app.router.add_get("/signin", routes.signin)
        app.router.add_get(oidc.CALLBACK_PATH, routes.callback)
        app.router.add_post("/signout", _signout)
        app.router.add_get("/signin/done", pages_accounts.signed_out)
    return access
