"""A touchpoint's breakdowns, its follow-up statements, and the downloads of its figures.

Routes (same access as the rest of the dashboard, whose check they use):

- ``GET /dashboard/touchpoints/{id}/breakdowns`` — figures per answer
  channel, team, case type and queue-wait band over a chosen window;
- ``GET /dashboard/touchpoints/{id}/statements`` — the distribution of the
  answers to each follow-up statement, the statements in the page language;
- ``GET /dashboard/touchpoints/{id}/export/figures.csv`` and ``.xlsx`` — a
  row per local day, dimension and group over the window;
- ``GET /dashboard/touchpoints/{id}/export/comments.csv`` — the redacted
  comments the console holds, received in the window.

``?window=`` is one of the metrics windows (``[metrics] windows``) that the
board's period (``[opendata] days``) covers; ``?lang=fi|sv|en``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import hdrs, web

from connectors.web import console_views as views
from connectors.web import dashboard_views
from connectors.web.console_export import (
    COMMENT_COLUMNS,
    FIGURE_COLUMNS,
    daily_rows,
    to_csv,
    to_xlsx,
)
from connectors.web.errors import ApiError
from engine.group_figures import group_figures, statement_figures
from engine.metrics import window_label
from schemas.base import Language

if TYPE_CHECKING:
    from collections.abc import Callable

    from connectors.web.board import Board
    from schemas.config import Settings

CONSOLE_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Console:
    """The handlers, around the board and the settings; ``authorise`` is the dashboard's."""

    def __init__(
        self,
        settings: Settings,
        board: Board,
        authorise: Callable[[web.Request], object],
        known: Callable[[str], bool],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.board = board
        self.authorise = authorise
        self.known = known
        self.clock = clock

    def windows(self) -> list[str]:
        """Give the metrics windows the board's period covers, shortest first."""
        longest = self.board.period
        return [window_label(w) for w in self.settings.metrics.windows if w <= longest]

    def _context(self, request: web.Request) -> tuple[str, str, str, timedelta]:
        self.authorise(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        if not self.known(touchpoint_id):
            raise ApiError(404, "unknown_touchpoint", "no figures or configuration for it")
        language = views.choose_language(
            request.query.get("lang"), request.headers.get(hdrs.ACCEPT_LANGUAGE, "")
        )
        windows = self.windows()
        chosen = request.query.get("window") or ("7d" if "7d" in windows else windows[-1])
        if chosen not in windows:
            raise ApiError(400, "unknown_window", f"window must be one of {', '.join(windows)}")
        length = dict(zip(windows, self.settings.metrics.windows, strict=False))[chosen]
        return touchpoint_id, language, chosen, length

    def _name(self, touchpoint_id: str, language: str) -> str:
        return dashboard_views.name_of(self.settings, touchpoint_id, language)

    def _base(self, touchpoint_id: str) -> str:
        return f"/dashboard/touchpoints/{quote(touchpoint_id, safe='')}"

    async def breakdowns(self, request: web.Request) -> web.Response:
        """GET /dashboard/touchpoints/{touchpoint_id}/breakdowns."""
        touchpoint_id, language, window, length = self._context(request)
        now = self.clock()
        minimum = self.settings.opendata.min_answers
        lines = group_figures(
            self.board.group_answers(touchpoint_id),
            since=now - length,
            until=now + timedelta(seconds=1),
            min_answers=minimum,
            wait_limits=self.settings.breakdowns.queue_wait_minutes,
        )
        base = self._base(touchpoint_id)
        body = (
            views.window_links(f"{base}/breakdowns", self.windows(), window, language)
            + views.breakdown_tables(lines, language, minimum)
            + views.downloads(base, window, language)
        )
        title = views.TEXT[language]["breakdowns"].format(name=self._name(touchpoint_id, language))
        return _html(
            views.page(
                title=title,
                language=language,
                body=body,
                here=f"{base}/breakdowns",
                back=f"{base}?lang={language}",
            )
        )

    async def statements(self, request: web.Request) -> web.Response:
        """GET /dashboard/touchpoints/{touchpoint_id}/statements."""
        touchpoint_id, language, window, length = self._context(request)
        now = self.clock()
        minimum = self.settings.opendata.min_answers
        config, _ = self.settings.touchpoint(touchpoint_id)
        texts = config.statements(Language(language))
        lines = statement_figures(
            self.board.statement_answers(touchpoint_id),
            statements=len(texts),
            since=now - length,
            until=now + timedelta(seconds=1),
            min_answers=minimum,
        )
        base = self._base(touchpoint_id)
        body = views.window_links(
            f"{base}/statements", self.windows(), window, language
        ) + views.statement_tables(lines, texts, language, minimum)
        title = views.TEXT[language]["statements"].format(name=self._name(touchpoint_id, language))
        return _html(
            views.page(
                title=title,
                language=language,
                body=body,
                here=f"{base}/statements",
                back=f"{base}?lang={language}",
            )
        )

    def _figure_rows(self, touchpoint_id: str, length: timedelta) -> list[tuple[object, ...]]:
        zone = ZoneInfo(self.settings.policy.time_zone)
        now = self.clock().astimezone(zone)
        rows = daily_rows(
            touchpoint_id,
            self.board.group_answers(touchpoint_id),
            first=(now - length).date(),
            last=now.date(),
            zone=zone,
            min_answers=self.settings.opendata.min_answers,
            wait_limits=self.settings.breakdowns.queue_wait_minutes,
        )
        return [row.values() for row in rows]

    def _comment_rows(self, touchpoint_id: str, length: timedelta) -> list[tuple[object, ...]]:
        zone = ZoneInfo(self.settings.policy.time_zone)
        since = self.clock() - length
        return [
            (touchpoint_id, comment.received_at.astimezone(zone), comment.text)
            for comment in self.board.comments.get(touchpoint_id, [])
            if comment.received_at >= since
        ]

    async def figures_csv(self, request: web.Request) -> web.Response:
        """GET .../export/figures.csv."""
        touchpoint_id, _, window, length = self._context(request)
        body = to_csv(FIGURE_COLUMNS, self._figure_rows(touchpoint_id, length))
        return _download(body, "text/csv", f"{touchpoint_id}-figures-{window}.csv")

    async def figures_xlsx(self, request: web.Request) -> web.Response:
        """GET .../export/figures.xlsx: the figures and the comments, a sheet each."""
        touchpoint_id, _, window, length = self._context(request)
        body = to_xlsx(
            [
                ("figures", FIGURE_COLUMNS, self._figure_rows(touchpoint_id, length)),
                ("comments", COMMENT_COLUMNS, self._comment_rows(touchpoint_id, length)),
            ]
        )
        return _download(body, XLSX, f"{touchpoint_id}-figures-{window}.xlsx")

    async def comments_csv(self, request: web.Request) -> web.Response:
        """GET .../export/comments.csv."""
        touchpoint_id, _, window, length = self._context(request)
        body = to_csv(COMMENT_COLUMNS, self._comment_rows(touchpoint_id, length))
        return _download(body, "text/csv", f"{touchpoint_id}-comments-{window}.csv")


def _html(body: str) -> web.Response:
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    safe = "".join(char if char.isalnum() or char in "-._" else "_" for char in filename)
    response = web.Response(body=body, content_type=content_type)
    response.headers[hdrs.CONTENT_DISPOSITION] = f'attachment; filename="{safe}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def setup(app: web.Application, console: Console) -> None:
    """Add the console's routes."""
    base = "/dashboard/touchpoints/{touchpoint_id}"
    app.router.add_get(f"{base}/breakdowns", console.breakdowns)
    app.router.add_get(f"{base}/statements", console.statements)
    app.router.add_get(f"{base}/export/figures.csv", console.figures_csv)
    app.router.add_get(f"{base}/export/figures.xlsx", console.figures_xlsx)
    app.router.add_get(f"{base}/export/comments.csv", console.comments_csv)
    stylesheet = (Path(__file__).parent / "static" / "console.css").read_bytes()

    async def serve_stylesheet(_request: web.Request) -> web.Response:
        return web.Response(body=stylesheet, content_type="text/css", charset="utf-8")

    app.router.add_get("/static/console.css", serve_stylesheet)
