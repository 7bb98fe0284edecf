"""Sign-in sessions in a signed cookie: who the person is and their role, nothing else.

The cookie holds the person's subject, name and role and a random session
id, signed and time-stamped with itsdangerous under ``[web.oidc]
session_key``: a browser can read it but cannot change it, and it ends after
``session_hours`` whatever the browser does. It is HttpOnly (no script reads
it), SameSite=Lax (another site's form does not carry it; a link to the
dashboard does) and Secure whenever the service is served over HTTPS, which
``public_base_url`` requires outside localhost. The role is the one given at
sign-in: a change of groups at the provider takes effect at the next sign-in.

The sign-in's own short-lived state (OAuth ``state``, the OIDC ``nonce``, the
PKCE verifier and where to go back to) travels in a second signed cookie
that lives ten minutes and is removed once the provider has answered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import ValidationError

from schemas.accounts import Actor

if TYPE_CHECKING:
    from aiohttp import web

    from schemas.accounts import OidcConfig

SESSION_COOKIE: Final = "palaute_session"
SIGNIN_COOKIE: Final = "palaute_signin"
SIGNIN_SECONDS: Final = 600
MAX_COOKIE_LENGTH: Final = 4096


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person and the id of this sign-in (what CSRF tokens are bound to)."""

    session_id: str
    actor: Actor

    @property
    def csrf_subject(self) -> str:
        """What this session's form tokens are signed for."""
        return f"session:{self.session_id}"


@dataclass(frozen=True, slots=True)
class SignIn:
    """A sign-in under way: what the callback must find again."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str


class SessionCookies:
    """Writes and reads the two signed cookies."""

    def __init__(self, config: OidcConfig, *, secure: bool) -> None:
        key = config.session_key.get_secret_value()
        self._sessions = URLSafeTimedSerializer(key, salt="palaute.session")
        self._signins = URLSafeTimedSerializer(key, salt="palaute.signin")
        self._max_age = int(config.session_hours * 3600)
        self._secure = secure

    def new_session(self, actor: Actor) -> Session:
        """Start a session for ``actor`` with a fresh id."""
        return Session(session_id=secrets.token_urlsafe(16), actor=actor)

    def write(self, response: web.StreamResponse, session: Session) -> None:
        """Set the session cookie."""
        value = self._sessions.dumps({"sid": session.session_id, **session.actor.model_dump()})
        self._set(response, SESSION_COOKIE, value, self._max_age)

    def read(self, request: web.Request) -> Session | None:
        """Give the request's session, or None when absent, altered or expired."""
        raw = request.cookies.get(SESSION_COOKIE)
        data = self._load(self._sessions, raw, self._max_age)
        if data is None or not isinstance(data.get("sid"), str):
            return None
        session_id = data.pop("sid")
        try:
            actor = Actor.model_validate(data)
        except ValidationError:
            return None
        return Session(session_id=session_id, actor=actor)

    def end(self, response: web.StreamResponse) -> None:
        """Remove the session cookie (signing out)."""
        response.del_cookie(SESSION_COOKIE, path="/")

    def write_signin(self, response: web.StreamResponse, signin: SignIn) -> None:
        """Keep the sign-in's state until the provider sends the person back."""
        value = self._signins.dumps(
            {
                "state": signin.state,
                "nonce": signin.nonce,
                "verifier": signin.code_verifier,
                "next": signin.next_path,
            }
        )
        self._set(response, SIGNIN_COOKIE, value, SIGNIN_SECONDS)

    def read_signin(self, request: web.Request) -> SignIn | None:
        """Give the sign-in under way, or None when absent, altered or older than ten minutes."""
        data = self._load(self._signins, request.cookies.get(SIGNIN_COOKIE), SIGNIN_SECONDS)
        if data is None:
            return None
        fields = (data.get("state"), data.get("nonce"), data.get("verifier"), data.get("next"))
        if not all(isinstance(value, str) for value in fields):
            return None
        state, nonce, verifier, next_path = (str(value) for value in fields)
        return SignIn(state=state, nonce=nonce, code_verifier=verifier, next_path=next_path)

    def end_signin(self, response: web.StreamResponse) -> None:
        """Remove the sign-in's state: a code is exchanged once."""
        response.del_cookie(SIGNIN_COOKIE, path="/")

    def _set(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self._secure,
        )

    @staticmethod
    def _load(
        serializer: URLSafeTimedSerializer, raw: str | None, max_age: int
    ) -> dict[str, Any] | None:
        if not raw or len(raw) > MAX_COOKIE_LENGTH:
            return None
        try:
            data = serializer.loads(raw, max_age=max_age)
        except BadSignature:  # SignatureExpired is one too
            return None
        return data if isinstance(data, dict) else None
