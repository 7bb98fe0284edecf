"""A touchpoint's breakdowns, its follow-up statements, and the downloads of its figures.

Routes (same access as the rest of the dashboard, whose check they use):

- ``GET /dashboard/touchpoints/{id}/breakdowns`` — figures per answer
  channel, team, case type and queue-wait band over a chosen window;
- ``GET /dashboard/touchpoints/{id}/statements`` — the distribution of the
  answers to each follow-up statement, the statements in the page language;
- ``GET /dashboard/touchpoints/{id}/export/figures.csv`` and ``.xlsx`` — a
  row per local day, dimension and group over the window;
- ``GET /dashboard/touchpoints/{id}/export/comments.csv`` — the redacted
  comments received in the window, read from the comments topic by time
  (erased ones left out), with the survey's score where the board has it.

``?window=`` is one of the touchpoint page's ranges: ``24h`` and ``7d`` (the
last hours, from the hourly history), ``28d``, ``90d`` and ``13m`` (the last
local days, from the daily history); ``?lang=fi|sv|en``. Breakdowns and
figures read the history topic's counts (:mod:`connectors.web.history`);
statements and comments, which the history does not count, the board's own
answers of the open-data period (``[opendata] days``), so their longer
ranges hold at most that period.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import hdrs, web
from aiokafka.errors import KafkaError

from connectors.kafka_range import records_since
from connectors.web import console_views as views
from connectors.web import dashboard_views
from connectors.web.console_export import (
    COMMENT_COLUMNS,
    FIGURE_COLUMNS,
    daily_rows,
    live_comments,
    to_csv,
    to_xlsx,
)
from connectors.web.errors import ApiError
from connectors.web.history import hour_number
from engine.group_figures import GroupFigures, group_lines, statement_figures
from schemas.base import Language
from schemas.history import Period

if TYPE_CHECKING:
    from connectors.web.board import Board
    from schemas.config import Settings

CONSOLE_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
KeyValue = tuple[bytes | None, bytes | None]
#: Reads the comments topic's records (key, value) from a time on.
CommentReader = Callable[[datetime], Awaitable[list[KeyValue]]]
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The touchpoint page's ranges; up to a week is read by the hour, longer by the local day.
RANGES: Final = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "28d": timedelta(days=28),
    "90d": timedelta(days=90),
    "13m": timedelta(days=396),
}
HOURLY_UP_TO: Final = timedelta(days=7)


class Console:
    """The handlers, around the board and the settings; ``authorise`` is the dashboard's."""

    def __init__(
        self,
        settings: Settings,
        board: Board,
        authorise: Callable[[web.Request], object],
        known: Callable[[str], bool],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        comments_since: CommentReader | None = None,
    ) -> None:
        self.settings = settings
        self.board = board
        self.authorise = authorise
        self.known = known
        self.clock = clock
        self.comments_since = comments_since or self._comments_topic_since

    async def _comments_topic_since(self, since: datetime) -> list[KeyValue]:
        return await records_since(self.settings.kafka, self.settings.topics.comments, since)

    def windows(self) -> list[str]:
        """Give the ranges offered, shortest first."""
        return list(RANGES)

    def _context(self, request: web.Request) -> tuple[str, str, str, timedelta]:
        self.authorise(request)
        touchpoint_id = request.match_info["touchpoint_id"]
        if not self.known(touchpoint_id):
            raise ApiError(404, "unknown_touchpoint", "no figures or configuration for it")
        language = dashboard_views.choose_language(
            request.query.get("lang"), request.headers.get(hdrs.ACCEPT_LANGUAGE, "")
        )
        windows = self.windows()
        chosen = request.query.get("window") or "7d"
        if chosen not in windows:
            raise ApiError(400, "unknown_window", f"window must be one of {', '.join(windows)}")
        return touchpoint_id, language, chosen, RANGES[chosen]

    def _name(self, touchpoint_id: str, language: str) -> str:
        return dashboard_views.name_of(self.settings, touchpoint_id, language)

    def _base(self, touchpoint_id: str) -> str:
        return f"/dashboard/touchpoints/{quote(touchpoint_id, safe='')}"

    async def breakdowns(self, request: web.Request) -> web.Response:
        """GET /dashboard/touchpoints/{touchpoint_id}/breakdowns."""
        touchpoint_id, language, window, length = self._context(request)
        now = self.clock()
        minimum = self.settings.opendata.min_answers
        lines = self._group_lines(touchpoint_id, length, now)
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

    def _group_lines(
        self, touchpoint_id: str, length: timedelta, now: datetime
    ) -> list[GroupFigures]:
        history = self.board.history
        scale = history.scale(touchpoint_id)
        if scale is None:
            return []
        if length <= HOURLY_UP_TO:
            last = hour_number(now)
            first, period = last - int(length / timedelta(hours=1)) + 1, Period.HOUR
        else:
            today = now.astimezone(ZoneInfo(self.settings.policy.time_zone)).date()
            last = today.toordinal()
            first, period = last - length.days + 1, Period.DAY
        counts = {
            group: history.of(touchpoint_id, group, scale).tally(period, first, last).scores
            for group in history.groups(touchpoint_id)
        }
        return group_lines(
            counts,
            scale,
            min_answers=self.settings.opendata.min_answers,
            wait_limits=self.settings.breakdowns.queue_wait_minutes,
        )

    def _figure_rows(self, touchpoint_id: str, length: timedelta) -> list[tuple[object, ...]]:
        zone = ZoneInfo(self.settings.policy.time_zone)
        today = self.clock().astimezone(zone).date()
        history = self.board.history
        scale = history.scale(touchpoint_id)
        if scale is None:
            return []
        rows = daily_rows(
            touchpoint_id,
            {
                group: history.of(touchpoint_id, group, scale)
                for group in history.groups(touchpoint_id)
            },
            scale,
            first=today - timedelta(days=max(1, length.days) - 1),
            last=today,
            min_answers=self.settings.opendata.min_answers,
            wait_limits=self.settings.breakdowns.queue_wait_minutes,
        )
        return [row.values() for row in rows]

    async def _comment_rows(
        self, touchpoint_id: str, length: timedelta
    ) -> list[tuple[object, ...]]:
        zone = ZoneInfo(self.settings.policy.time_zone)
        since = self.clock() - length
        try:
            records = await self.comments_since(since)
        except KafkaError:
            raise ApiError(503, "kafka_unavailable", "the comments cannot be read now") from None
        return [
            (
                touchpoint_id,
                comment.received_at.astimezone(zone),
                self.board.score_of(comment.survey_id),
                comment.text,
            )
            for comment in live_comments(records)
            if comment.received_at >= since
            and self.board.touchpoint_of(comment.survey_id) == touchpoint_id
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
                ("comments", COMMENT_COLUMNS, await self._comment_rows(touchpoint_id, length)),
            ]
        )
        return _download(body, XLSX, f"{touchpoint_id}-figures-{window}.xlsx")

    async def comments_csv(self, request: web.Request) -> web.Response:
        """GET .../export/comments.csv."""
        touchpoint_id, _, window, length = self._context(request)
        body = to_csv(COMMENT_COLUMNS, await self._comment_rows(touchpoint_id, length))
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
