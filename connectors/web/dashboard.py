"""The operations dashboard: touchpoints, scores, alerts and comments, live.

Routes (all under ``/dashboard``, none public):

- ``GET /dashboard`` — every touchpoint with each window's mean, answer count
  and CSAT share, its KPI target, response rate and a trend sparkline, and
  the active and recent alerts with their evidence;
- ``GET /dashboard/touchpoints/{touchpoint_id}`` — the touchpoint console
  (:mod:`connectors.web.timeline_views`): ``?range=24h|7d|28d|90d|13m``
  of the history against the period before, with 95 % intervals, the
  alerts marked on the time axis, and the comments with their scores
  (``?score=``); its chart is ``.../chart.svg`` with the same query;
- ``GET /dashboard/events`` — server-sent events: ``update`` with the page's
  live region re-rendered whenever the board changes (``?touchpoint=`` for
  the detail page);
- ``GET /dashboard/api/overview`` — the same figures as JSON;
- ``GET /dashboard/alerts`` — firing, acknowledged and resolved alerts, each
  open one with a form to acknowledge it with a comment and assign it
  (``POST /dashboard/alerts/{alert_id}/ack``, CSRF-checked, see
  :mod:`connectors.web.dashboard_alerts`).

Access: the viewer role or higher (:mod:`connectors.web.access`): a person
signed in with the organisation's identity provider, or the operators'
tokens of ``[web] ops_token_sha256``, either as ``Authorization: Bearer
TOKEN`` for programs or through HTTP Basic authentication for browsers, with
any user name and the token as the password. Basic must run over HTTPS
outside localhost, as ``public_base_url`` already requires. A browser
without either is sent to sign in when sign-in is configured; anything else
is 401 with a Basic challenge. Acknowledging needs the operator role.
Language: ``?lang=fi|sv|en``, else Accept-Language.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import html
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

import orjson
from aiohttp import hdrs, web

from connectors.web import (
    charts,
    console,
    console_views,
    csrf,
    dashboard_alerts,
    pages_accounts,
    timeline_views,
)
from connectors.web import dashboard_views as views
from connectors.web.access import ACCESS, Principal
from connectors.web.access import CHALLENGE as CHALLENGE  # noqa: PLC0414 - re-exported
from connectors.web.access import presented_token as presented_token  # noqa: PLC0414
from connectors.web.alerts import ACKNOWLEDGEMENTS, ack_request
from connectors.web.board import BOARD, Board, board_of
from connectors.web.csrf import CSRF, CsrfRejected, rejection_response
from connectors.web.errors import ApiError
from connectors.web.timeline import chart_data
from engine.alert_text import touchpoint_name
from schemas.accounts import Role

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from schemas.config import Settings

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
DASHBOARD_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The chart is an image of its own: its styles inline, nothing else at all.
CHART_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'"
KEEP_ALIVE: Final = 15.0
SETTLE: Final = 0.25
_STOPPING: Final = web.AppKey("dashboard_stopping", asyncio.Event)


def basic_user(request: web.Request) -> str | None:
    """Give the user name of HTTP Basic credentials, the default name of who acknowledges."""
    scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user = decoded.partition(":")[0].strip()
    return user[:100] or None


class Dashboard:
    """The handlers, around the board, the settings and the operators' tokens."""

    def __init__(self, settings: Settings, board: Board) -> None:
        self.settings = settings
        self.board = board

    def authorise(self, request: web.Request, role: Role = Role.VIEWER) -> Principal:
        """Let in a signed-in person or the token holding ``role``; else 401, sign-in or 403."""
        return request.app[ACCESS].require(request, role)

    async def alerts(self, request: web.Request) -> web.Response:
        """GET /dashboard/alerts: firing, acknowledged and resolved alerts, with the forms."""
        principal = self.authorise(request)
        language = self._language(request)
        guard = request.app[CSRF]
        token = guard.token_for(request, principal.csrf_subject)
        if principal.signed_in:
            by = principal.actor.name
        else:
            by = "" if (user := basic_user(request)) is None or "@" in user else user
        body = views.page(
            title=dashboard_alerts.TEXT[language]["alerts_title"],
            language=language,
            live=dashboard_alerts.alerts_page(self.board, self.settings, language, token, by),
            switch_href="/dashboard/alerts",
            events=None,
        )
        response = self._respond(request, principal, body, language, token)
        guard.set_cookie(response, token)
        return response

    async def acknowledge(self, request: web.Request) -> web.StreamResponse:
        """POST /dashboard/alerts/{alert_id}/ack: the form's acknowledgement, then back (303)."""
        principal = self.authorise(request, Role.OPERATOR)
        language = self._language(request)
        try:
            await request.app[CSRF].check(request, principal.csrf_subject)
        except CsrfRejected as rejected:
            return rejection_response(
                request, rejected, language, f"/dashboard/alerts?lang={language}"
            )
        form = await request.post()
        fields = {
            name: value.strip()
            for name in ("by", "comment", "assigned_to")
            if isinstance(value := form.get(name), str) and value.strip()
        }
        alert_id = request.match_info["alert_id"]
        try:
            event = await request.app[ACKNOWLEDGEMENTS].acknowledge(
                alert_id, ack_request(fields), principal
            )
        except ApiError as error:
            if "text/html" not in request.headers.get(hdrs.ACCEPT, ""):
                raise
            return dashboard_alerts.not_saved(error, language)
        # The board learns it from the alerts topic too; applying it now shows it at once.
        self.board.apply(event)
        await self.board.notify()
        location = f"/dashboard/alerts?lang={language}#alert-{quote(alert_id, safe='')}"
        raise web.HTTPSeeOther(location)

    def _language(self, request: web.Request) -> str:
        return views.choose_language(
            request.query.get("lang"), request.headers.get(hdrs.ACCEPT_LANGUAGE, "")
        )

    def known(self, touchpoint_id: str) -> bool:
        """Tell whether a touchpoint has figures or is in the catalogue."""
        return touchpoint_id in self.settings.catalogue.touchpoints or any(
            key == touchpoint_id for key, _ in self.board.metrics
        )

    async def overview(self, request: web.Request) -> web.Response:
        """GET /dashboard."""
        principal = self.authorise(request)
        language = self._language(request)
        body = views.page(
            title=views.TEXT[language]["title"],
            language=language,
            live=views.overview_live(self.board, self.settings, language),
            switch_href="/dashboard",
            events=f"/dashboard/events?lang={language}",
        )
        return self._respond(request, principal, body, language)

    async def touchpoint(self, request: web.Request) -> web.Response:
        """GET /dashboard/touchpoints/{touchpoint_id}."""
        principal = self.authorise(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        if not self.known(touchpoint_id):
            raise ApiError(404, "unknown_touchpoint", "no figures or configuration for it")
        language = self._language(request)
        quoted = quote(touchpoint_id, safe="")
        shown = views.name_of(self.settings, touchpoint_id, language)
        name = html.escape(shown)
        body = views.page(
            title=views.TEXT[language]["detail_title"].format(name=shown),
            language=language,
            live=self._live(language, touchpoint_id, request.query),
            switch_href=f"/dashboard/touchpoints/{quoted}?"
            + urlencode({k: v for k, v in request.query.items() if k != "lang"}),
            events="/dashboard/events?"
            + urlencode({**request.query, "lang": language, "touchpoint": touchpoint_id}),
        )
        back = (
            f'<p><a href="/dashboard?lang={language}">{views.TEXT[language]["back"]}</a> '
            f'<span class="muted">{name}</span></p>'
            + console_views.touchpoint_links(f"/dashboard/touchpoints/{quoted}", language)
        )
        return self._respond(
            request, principal, body.replace("<main>", f"<main>{back}", 1), language
        )

    def _respond(
        self,
        request: web.Request,
        principal: Principal,
        body: str,
        language: str,
        token: str | None = None,
    ) -> web.Response:
        """Send a page; a signed-in person's pages say who they are and let them sign out."""
        if not principal.signed_in:
            return _html(body)
        access = request.app[ACCESS]
        token = token or access.form_token(request, principal)
        bar = pages_accounts.account_bar(
            language, principal.actor.name, principal.actor.role.value, csrf.hidden_field(token)
        )
        response = _html(body.replace("</header>", f"{bar}</header>", 1))
        access.csrf_cookie(response, token)
        return response

    def _live(
        self, language: str, touchpoint_id: str | None, query: Mapping[str, str] | None = None
    ) -> str:
        if touchpoint_id is None:
            return views.overview_live(self.board, self.settings, language)
        now = datetime.now(UTC)
        return timeline_views.region(
            self.board, self.settings, touchpoint_id, language, query or {}, now
        )

    async def chart(self, request: web.Request) -> web.Response:
        """GET /dashboard/touchpoints/{touchpoint_id}/chart.svg: the console's chart."""
        self.authorise(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        if not self.known(touchpoint_id):
            raise ApiError(404, "unknown_touchpoint", "no figures or configuration for it")
        language = self._language(request)
        range_key, _ = timeline_views.chosen(request.query)
        view = timeline_views.view_of(
            self.board, self.settings, touchpoint_id, range_key, datetime.now(UTC)
        )
        data = chart_data(view, timeline_views.words(language))
        # Tens of milliseconds of drawing: off the loop that serves the live updates.
        svg = await asyncio.to_thread(charts.render, data)
        response = web.Response(body=svg, content_type="image/svg+xml")
        response.headers["Content-Security-Policy"] = CHART_CSP
        response.headers["Cache-Control"] = "private, max-age=60"
        return response

    async def events(self, request: web.Request) -> web.StreamResponse:
        """GET /dashboard/events: the live region, sent again after every change."""
        self.authorise(request)
        language = self._language(request)
        touchpoint_id = request.query.get("touchpoint")
        if touchpoint_id is not None and not self.known(touchpoint_id):
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
                        {
                            "version": sent,
                            "live": self._live(language, touchpoint_id, request.query),
                        }
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
    """Give the overview as JSON: the latest figures per touchpoint and window, and alerts.

    Each touchpoint has its ``names`` in fi, sv and en (as the pages show
    them); each alert its ``status``: firing, acknowledged or resolved.
    """
    touchpoints = []
    for touchpoint_id in board.touchpoints():
        entry = settings.catalogue.touchpoints.get(touchpoint_id)
        touchpoints.append(
            {
                "touchpoint_id": touchpoint_id,
                "name": None if entry is None else entry.name,
                "names": {
                    language: touchpoint_name(entry, touchpoint_id, language)
                    for language in views.LANGUAGES
                },
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
        "alerts": [
            {**alert.model_dump(mode="json"), "status": dashboard_alerts.state_of(board, alert)}
            for alert in board.touchpoint_alerts()
        ],
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
    app.router.add_get("/dashboard/touchpoints/{touchpoint_id}/chart.svg", dashboard.chart)
    app.router.add_get("/dashboard/events", dashboard.events)
    app.router.add_get("/dashboard/alerts", dashboard.alerts)
    app.router.add_post("/dashboard/alerts/{alert_id}/ack", dashboard.acknowledge)
    app.router.add_get("/dashboard/api/overview", dashboard.api_overview)
    console.setup(
        app, console.Console(settings, dashboard.board, dashboard.authorise, dashboard.known)
    )
    app.router.add_get("/static/dashboard.js", _static("dashboard.js", "text/javascript"))
    app.router.add_get("/static/dashboard.css", _static("dashboard.css", "text/css"))


async def _stop_streams(app: web.Application) -> None:
    """Let open event streams end, so that shutdown does not wait for them."""
    app[_STOPPING].set()
    await app[BOARD].notify()
