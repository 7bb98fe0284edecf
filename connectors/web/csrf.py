"""Protection of the operators' forms against cross-site request forgery.

A browser sends HTTP Basic credentials (and, later, a sign-in session's
cookie) with every request to this service, including a form that another
site submits. A form POST is therefore accepted only when all of these hold:

1. **the browser says it is same-origin**: ``Sec-Fetch-Site``, when sent, is
   ``same-origin`` (or ``none``, typed by the person); from a browser too old
   to send it, ``Origin``, when sent, is this service's own (``[web]
   public_base_url`` or the request's host);
2. **the form carries a token this service signed** for the same operator:
   ``nonce.issued.mac`` where ``mac`` is HMAC-SHA256 over the subject, the
   nonce and the time of issue. The subject is whatever identifies the signed
   in operator: today a digest of the Basic credential (:func:`credential_subject`),
   with sessions the session id. A token taken from one operator's page is
   worthless for another, and it expires after ``max_age``;
3. **the same token is in the cookie** (double submit): another site can
   neither read the page's token nor set this service's cookie.

The key is ``[secrets] csrf_key``. Without it each process draws a random
key at start: forms then stop working after a restart (the person reloads
the page) and, with several web processes behind one address, a form must
go back to the process that served it; configure the key for that case.

A refusal is a 403 with a reason: the JSON error shape of
:mod:`connectors.web.errors` for programs, a short page in the person's
language for a browser form (:func:`rejection_response`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
from typing import TYPE_CHECKING, Final

from aiohttp import hdrs, web

from connectors.web.errors import error_response

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from schemas.config import Settings

FIELD: Final = "csrf_token"
HEADER: Final = "X-CSRF-Token"
COOKIE: Final = "palaute_csrf"
MAX_AGE: Final = 12 * 3600
_NONCE_BYTES: Final = 16
_MAX_TOKEN_LENGTH: Final = 200
_SAME_SITE_FETCHES: Final = frozenset({"same-origin", "none"})


class CsrfRejected(Exception):  # noqa: N818 - a refusal, read as "the request was rejected"
    """A request refused for CSRF reasons; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def credential_subject(credential: str) -> str:
    """Name an operator by their credential without keeping it: its SHA-256 in hex."""
    return hashlib.sha256(credential.encode()).hexdigest()


def origin_of(url: str) -> str:
    """Reduce a URL to its origin, ``scheme://host[:port]``, as browsers send in ``Origin``."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].lower()
    scheme = scheme.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default is not None and host.endswith(default):
        host = host.removesuffix(default)
    return f"{scheme}://{host}"


class CsrfGuard:
    """Issues and checks the signed tokens; one per web application."""

    def __init__(
        self,
        key: bytes | None = None,
        *,
        origins: Iterable[str] = (),
        max_age: int = MAX_AGE,
        secure_cookie: bool = False,
    ) -> None:
        """Use ``key``, else a random key for this process's lifetime."""
        self._key = key or secrets.token_bytes(32)
        self._origins = frozenset(origin_of(origin) for origin in origins)
        self._max_age = max_age
        self._secure = secure_cookie

    def _mac(self, subject: str, nonce: str, issued: int) -> str:
        message = f"{subject}\x00{nonce}\x00{issued}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, subject: str, *, now: float | None = None) -> str:
        """Sign a fresh token for the operator named by ``subject``."""
        issued = int(time.time() if now is None else now)
        nonce = secrets.token_urlsafe(_NONCE_BYTES)
        return f"{nonce}.{issued}.{self._mac(subject, nonce, issued)}"

    def valid(self, token: str, subject: str, *, now: float | None = None) -> bool:
        """Tell whether ``token`` was signed here for ``subject`` and is not too old."""
        try:
            self.check_token(token, subject, now=now)
        except CsrfRejected:
            return False
        return True

    def check_token(self, token: str, subject: str, *, now: float | None = None) -> None:
        """Raise :class:`CsrfRejected` unless ``token`` is signed for ``subject`` and fresh."""
        parts = token.split(".") if len(token) <= _MAX_TOKEN_LENGTH else []
        if len(parts) != 3 or not parts[1].isdigit():  # noqa: PLR2004 - nonce, issued, mac
            raise CsrfRejected("csrf_token_invalid", "the form's security token is malformed")
        nonce, issued_text, mac = parts
        issued = int(issued_text)
        if not hmac.compare_digest(mac, self._mac(subject, nonce, issued)):
            raise CsrfRejected(
                "csrf_token_invalid", "the form's security token was not issued to this operator"
            )
        age = (time.time() if now is None else now) - issued
        if age > self._max_age or age < -60:  # noqa: PLR2004 - a minute of clock skew
            raise CsrfRejected(
                "csrf_token_expired", "the form has expired; reload the page and send it again"
            )

    def token_for(self, request: web.Request, subject: str) -> str:
        """Give the token to put in the page's forms: the cookie's when still valid, else new."""
        current = request.cookies.get(COOKIE, "")
        return current if current and self.valid(current, subject) else self.issue(subject)

    def set_cookie(self, response: web.StreamResponse, token: str) -> None:
        """Send the token as the double-submit cookie (script cannot read it)."""
        response.set_cookie(
            COOKIE,
            token,
            max_age=self._max_age,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self._secure,
        )

    def check_origin(self, headers: Mapping[str, str], own_origin: str) -> None:
        """Raise :class:`CsrfRejected` when the browser says the request came from elsewhere."""
        fetch_site = headers.get("Sec-Fetch-Site")
        if fetch_site is not None:
            # The browser's own word, which no page can forge; it decides alone, because
            # a page sent with Referrer-Policy: no-referrer posts its forms with Origin: null.
            if fetch_site.lower() not in _SAME_SITE_FETCHES:
                raise CsrfRejected(
                    "cross_site_request", f"the browser reports a {fetch_site} request; refused"
                )
            return
        origin = headers.get(hdrs.ORIGIN)
        if origin is not None and origin_of(origin) not in {*self._origins, origin_of(own_origin)}:
            raise CsrfRejected("origin_mismatch", "the request comes from another site's page")

    async def check(self, request: web.Request, subject: str) -> None:
        """Check a state-changing request: origin, then the form's (or header's) token.

        Reads the form body when the token is not in the ``X-CSRF-Token``
        header; the handler can still call ``request.post()``, which aiohttp
        keeps.
        """
        self.check_origin(request.headers, f"{request.scheme}://{request.host}")
        presented = request.headers.get(HEADER)
        if presented is None and request.content_type in {
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        }:
            value = (await request.post()).get(FIELD)
            presented = value if isinstance(value, str) else None
        if not presented:
            raise CsrfRejected("csrf_token_missing", f"the form has no {FIELD}; reload the page")
        cookie = request.cookies.get(COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), presented.encode()):
            raise CsrfRejected(
                "csrf_cookie_mismatch",
                "the form's token does not match this browser's; reload the page",
            )
        self.check_token(presented, subject)


def hidden_field(token: str) -> str:
    """Give the ``<input type="hidden">`` a form carries its token in."""
    return f'<input type="hidden" name="{FIELD}" value="{html.escape(token)}">'


_PAGE: Final = {
    "fi": (
        "Lomaketta ei hyväksytty",
        (
            "Lomake on vanhentunut tai se lähetettiin toiselta sivustolta. "
            "Palaa sivulle, lataa se uudelleen ja lähetä lomake uudestaan."
        ),
        "Takaisin",
    ),
    "sv": (
        "Formuläret godtogs inte",
        (
            "Formuläret har gått ut eller skickades från en annan webbplats. "
            "Gå tillbaka, ladda om sidan och skicka formuläret på nytt."
        ),
        "Tillbaka",
    ),
    "en": (
        "The form was not accepted",
        (
            "The form has expired or was sent from another site. "
            "Go back, reload the page and send the form again."
        ),
        "Back",
    ),
}


def rejection_response(
    request: web.Request, rejection: CsrfRejected, language: str, back: str = "/dashboard"
) -> web.Response:
    """Answer 403: a page for a browser's form, the JSON error shape for anything else."""
    if "text/html" not in request.headers.get(hdrs.ACCEPT, ""):
        return error_response(403, rejection.code, rejection.message)
    title, explanation, back_label = _PAGE.get(language, _PAGE["en"])
    body = (
        f'<!doctype html><html lang="{language if language in _PAGE else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><title>{title}</title>'
        '<link rel="stylesheet" href="/static/dashboard.css"></head><body><main>'
        f"<h1>{title}</h1><p>{explanation}</p>"
        f'<p class="muted"><code>{html.escape(rejection.code)}</code>: '
        f"{html.escape(rejection.message)}</p>"
        f'<p><a href="{html.escape(back)}">{back_label}</a></p></main></body></html>'
    )
    return web.Response(status=403, text=body, content_type="text/html", charset="utf-8")


CSRF: Final = web.AppKey("csrf_guard", CsrfGuard)


def setup(app: web.Application, settings: Settings) -> CsrfGuard:
    """Give the application its guard (``app[CSRF]``), keyed by ``[secrets] csrf_key``."""
    key = settings.secrets.csrf_key
    base = settings.web.public_base_url
    guard = CsrfGuard(
        key.get_secret_value().encode() if key is not None else None,
        origins=[str(base)],
        secure_cookie=base.scheme == "https",
    )
    app[CSRF] = guard
    return guard
