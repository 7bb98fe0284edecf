"""The operations dashboard: touchpoints, scores, alerts and comments, live.

Routes (all under ``/dashboard``, none public):

- ``GET /dashboard`` — every touchpoint with each window's mean, answer count
  and CSAT share, its KPI target, response rate and a trend sparkline, and
  the active and recent alerts with their evidence;
- ``GET /dashboard/touchpoints/{touchpoint_id}`` — the distribution of
  scores, the alerts and the latest redacted comments of one touchpoint;
- ``GET /dashboard/events`` — server-sent events: ``update`` with the page's
  live region re-rendered whenever the board changes (``?touchpoint=`` for
  the detail page);
- ``GET /dashboard/api/overview`` — the same figures as JSON.

Access: the operators' tokens of ``[web] ops_token_sha256`` (the ones that
acknowledge alerts), either as ``Authorization: Bearer TOKEN`` for programs
or through HTTP Basic authentication for browsers, with any user name and the
token as the password. Basic needs no form, cookie or session key, and the
browser's own dialog is accessible; it must run over HTTPS outside
localhost, as ``public_base_url`` already requires. Anything else is 401
with a Basic challenge. Language: ``?lang=fi|en``, else Accept-Language.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import orjson
from aiohttp import hdrs, web

from connectors.web import dashboard_views as views
from connectors.web.alerts import OperatorTokens
from connectors.web.board import BOARD, Board, board_of
from connectors.web.errors import ApiError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from schemas.config import Settings

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="palaute-operations", charset="UTF-8"'}
DASHBOARD_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
KEEP_ALIVE: Final = 15.0
SETTLE: Final = 0.25
_STOPPING: Final = web.AppKey("dashboard_stopping", asyncio.Event)


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


class Dashboard:
    """The handlers, around the board, the settings and the operators' tokens."""

    def __init__(self, settings: Settings, board: Board) -> None:
        self.settings = settings
        self.board = board
        self.tokens = OperatorTokens(settings.web.ops_token_sha256)

    def authorise(self, request: web.Request) -> None:
        """Refuse with 401 unless an operator's token came with the request."""
        token = presented_token(request.headers.get(hdrs.AUTHORIZATION, ""))
        if not self.tokens.authenticate(token):
            raise ApiError(401, "unauthorized", "operator credential required", headers=CHALLENGE)

    def _language(self, request: web.Request) -> str:
        return views.choose_language(
            request.query.get("lang"), request.headers.get(hdrs.ACCEPT_LANGUAGE, "")
        )

    def _known(self, touchpoint_id: str) -> bool:
        return touchpoint_id in self.settings.catalogue.touchpoints or any(
            key == touchpoint_id for key, _ in self.board.metrics
        )

    async def overview(self, request: web.Request) -> web.Response:
        """GET /dashboard."""
        self.authorise(request)
        language = self._language(request)
        other = "en" if language == "fi" else "fi"
        body = views.page(
            title=views.TEXT[language]["title"],
            language=language,
            live=views.overview_live(self.board, self.settings, language),
            switch_href=f"/dashboard?lang={other}",
            events=f"/dashboard/events?lang={language}",
        )
        return _html(body)

    async def touchpoint(self, request: web.Request) -> web.Response:
        """GET /dashboard/touchpoints/{touchpoint_id}."""
        self.authorise(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        if not self._known(touchpoint_id):
            raise ApiError(404, "unknown_touchpoint", "no figures or configuration for it")
        language = self._language(request)
        other = "en" if language == "fi" else "fi"
        quoted = quote(touchpoint_id, safe="")
        name = html.escape(self._name(touchpoint_id))
        body = views.page(
            title=views.TEXT[language]["detail_title"].format(name=self._name(touchpoint_id)),
            language=language,
            live=views.detail_live(self.board, self.settings, touchpoint_id, language),
            switch_href=f"/dashboard/touchpoints/{quoted}?lang={other}",
            events=f"/dashboard/events?lang={language}&touchpoint={quoted}",
        )
        back = (
            f'<p><a href="/dashboard?lang={language}">{views.TEXT[language]["back"]}</a> '
            f'<span class="muted">{name}</span></p>'
        )
        return _html(body.replace("<main>", f"<main>{back}", 1))

    def _name(self, touchpoint_id: str) -> str:
        entry = self.settings.catalogue.touchpoints.get(touchpoint_id)
        return entry.name if entry is not None and entry.name else touchpoint_id

    def _live(self, language: str, touchpoint_id: str | None) -> str:
        if touchpoint_id is None:
            return views.overview_live(self.board, self.settings, language)
        return views.detail_live(self.board, self.settings, touchpoint_id, language)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """GET /dashboard/events: the live region, sent again after every change."""
        self.authorise(request)
        language = self._language(request)
        touchpoint_id = request.query.get("touchpoint")
        if touchpoint_id is not None and not self._known(touchpoint_id):
            raise ApiError(404, "unknown_touchpoint", "no figures or configuration for it")
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: "text/event-stream; charset=utf-8",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        stopping = request.app[_STOPPING]
        changed = self.board.condition()
        sent = -1
        with contextlib.suppress(ConnectionError):
            while not stopping.is_set():
                if self.board.version != sent:
                    sent = self.board.version
                    data = orjson.dumps(
                        {"version": sent, "live": self._live(language, touchpoint_id)}
                    )
                    await response.write(b"event: update\ndata: " + data + b"\n\n")
                else:
                    await response.write(b": keep-alive\n\n")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KEEP_ALIVE), changed:
                        await changed.wait()
                await asyncio.sleep(SETTLE)  # one update for a burst of records
        return response

    async def api_overview(self, request: web.Request) -> web.Response:
        """GET /dashboard/api/overview."""
        self.authorise(request)
        return web.json_response(overview_document(self.board, self.settings))


def overview_document(board: Board, settings: Settings) -> dict[str, Any]:
    """Give the overview as JSON: the latest figures per touchpoint and window, and alerts."""
    touchpoints = []
    for touchpoint_id in board.touchpoints():
        entry = settings.catalogue.touchpoints.get(touchpoint_id)
        touchpoints.append(
            {
                "touchpoint_id": touchpoint_id,
                "name": None if entry is None else entry.name,
                "kpi_target": None if entry is None else entry.kpi_target,
                "csat_target": settings.catalogue.csat_targets.get(touchpoint_id),
                "windows": {
                    window: metrics.model_dump(mode="json")
                    for (key, window), metrics in board.metrics.items()
                    if key == touchpoint_id
                },
            }
        )
    return {
        "version": board.version,
        "touchpoints": touchpoints,
        "alerts": [alert.model_dump(mode="json") for alert in board.touchpoint_alerts()],
    }


def _html(body: str) -> web.Response:
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = DASHBOARD_CSP
    return response


def _static(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = (STATIC_DIR / name).read_bytes()

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    return serve


def setup(app: web.Application, settings: Settings) -> None:
    """Add the dashboard's routes and its static files."""
    dashboard = Dashboard(settings, board_of(app, settings))
    app[_STOPPING] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)
    app.router.add_get("/dashboard", dashboard.overview)
    app.router.add_get("/dashboard/touchpoints/{touchpoint_id}", dashboard.touchpoint)
    app.router.add_get("/dashboard/events", dashboard.events)
    app.router.add_get("/dashboard/api/overview", dashboard.api_overview)
    app.router.add_get("/static/dashboard.js", _static("dashboard.js", "text/javascript"))
    app.router.add_get("/static/dashboard.css", _static("dashboard.css", "text/css"))


async def _stop_streams(app: web.Application) -> None:
    """Let open event streams end, so that shutdown does not wait for them."""
    app[_STOPPING].set()
    await app[BOARD].notify()
