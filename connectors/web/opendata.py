"""The public open-data feed: per-touchpoint scores of the last 30 days.

``GET /open/v1/scores.json``, ``/open/v1/scores.csv`` and ``/open/v1/embed.html``
need no credential: they carry aggregates only, and a touchpoint with fewer
answers than ``[opendata] min_answers`` is listed with ``suppressed`` true and
no figures. The version is in the path (``v1``) and in the JSON's ``version``
field; a field that changes meaning gets a new path.

The JSON and CSV may be fetched from any origin (``Access-Control-Allow-Origin:
*``); the embed is a self-contained page (no request leaves it) that other
sites may frame. Until the ratings topic has been read up to where it ended at
start-up the feed answers 503 rather than publish figures that are too low.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web

from connectors.web.board import FOLLOWER, board_of
from connectors.web.errors import ApiError
from engine.opendata import CONFIDENCE, FEED_VERSION, OpenScore, open_scores

if TYPE_CHECKING:
    from schemas.config import Settings

PREFIX: Final = "/open/v1"
SCHEMA: Final = "palaute-open-scores/1"
CACHE: Final = "public, max-age=300"
RETRY_AFTER: Final = 5
CSV_COLUMNS: Final = (
    "touchpoint_id",
    "name",
    "scale",
    "suppressed",
    "count",
    "mean",
    "mean_low",
    "mean_high",
    "csat_share",
    "csat_low",
    "csat_high",
)
_EMBED_STYLE: Final = (
    "body{font:16px/1.4 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff}"
    "table{border-collapse:collapse;width:100%}caption{text-align:left;font-weight:600;"
    "padding:.5em 0}th,td{border-bottom:1px solid #767676;padding:.4em;text-align:left}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}p{font-size:.875em}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_EMBED_STYLE.encode()).digest()).decode()
EMBED_CSP: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors *; base-uri 'none'"
)
_TEXT: Final = {
    "fi": {
        "title": "Asiakaskokemus kosketuspisteittäin",
        "touchpoint": "Kosketuspiste",
        "answers": "Vastauksia",
        "mean": "Keskiarvo (95 % luottamusväli)",
        "csat": "Tyytyväisiä (95 % luottamusväli)",
        "suppressed": "alle {n} vastausta",
        "period": "{days} päivää {end} asti. Julkaisija: {publisher}.",
    },
    "en": {
        "title": "Customer experience by touchpoint",
        "touchpoint": "Touchpoint",
        "answers": "Answers",
        "mean": "Mean (95% confidence interval)",
        "csat": "Satisfied (95% confidence interval)",
        "suppressed": "fewer than {n} answers",
        "period": "{days} days up to {end}. Publisher: {publisher}.",
    },
}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _pair(low: float | None, high: float | None) -> list[float | None] | None:
    return None if low is None or high is None else [_round(low), _round(high)]


def score_line(score: OpenScore) -> dict[str, Any]:
    """Give one touchpoint's line of the JSON feed."""
    return {
        "touchpoint_id": score.touchpoint_id,
        "name": score.name,
        "scale": None if score.scale is None else score.scale.value,
        "suppressed": score.suppressed,
        "count": score.count,
        "mean": _round(score.mean),
        "mean_ci": _pair(score.mean_low, score.mean_high),
        "csat_share": _round(score.csat_share),
        "csat_ci": _pair(score.csat_low, score.csat_high),
    }


def feed_document(scores: list[OpenScore], *, settings: Settings, now: datetime) -> dict[str, Any]:
    """Give the whole JSON feed: what, when, by whom, how, and the lines."""
    days = settings.opendata.days
    return {
        "version": FEED_VERSION,
        "schema": SCHEMA,
        "publisher": settings.opendata.publisher,
        "generated_at": now.isoformat(),
        "period_days": days,
        "min_answers": settings.opendata.min_answers,
        "confidence": CONFIDENCE,
        "methods": {"csat_ci": "wilson", "mean_ci": "student-t"},
        "touchpoints": [score_line(score) for score in scores],
    }


def scores_csv(scores: list[OpenScore]) -> str:
    """Render the feed as CSV (RFC 4180, a header row, empty cells for suppressed figures)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for score in scores:
        cells = [
            score.touchpoint_id,
            score.name or "",
            "" if score.scale is None else score.scale.value,
            "true" if score.suppressed else "false",
            "" if score.count is None else str(score.count),
            *(
                "" if value is None else str(_round(value))
                for value in (
                    score.mean,
                    score.mean_low,
                    score.mean_high,
                    score.csat_share,
                    score.csat_low,
                    score.csat_high,
                )
            ),
        ]
        writer.writerow(cells)
    return out.getvalue()


def _format(value: float | None, language: str, *, percent: bool = False) -> str:
    if value is None:
        return "&#8211;"
    text = f"{value * 100:.0f} %" if percent else f"{value:.2f}"
    return text.replace(".", ",") if language == "fi" else text.replace(" %", "%")


def embed_html(scores: list[OpenScore], *, settings: Settings, now: datetime, language: str) -> str:
    """Render a self-contained table of the feed, for other sites to frame."""
    text = _TEXT[language]
    rows = []
    for score in scores:
        name = html.escape(score.name or score.touchpoint_id)
        if score.suppressed:
            note = html.escape(text["suppressed"].format(n=settings.opendata.min_answers))
            rows.append(f'<tr><th scope="row">{name}</th><td colspan="3">{note}</td></tr>')
            continue
        mean = (
            f"{_format(score.mean, language)} "
            f"({_format(score.mean_low, language)}&#8211;{_format(score.mean_high, language)})"
        )
        csat = (
            f"{_format(score.csat_share, language, percent=True)} "
            f"({_format(score.csat_low, language, percent=True)}&#8211;"
            f"{_format(score.csat_high, language, percent=True)})"
        )
        rows.append(
            f'<tr><th scope="row">{name}</th><td class="n">{score.count}</td>'
            f'<td class="n">{mean}</td><td class="n">{csat}</td></tr>'
        )
    period = text["period"].format(
        days=settings.opendata.days,
        end=now.date().isoformat(),
        publisher=settings.opendata.publisher,
    )
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(text['title'])}</title><style>{_EMBED_STYLE}</style></head>"
        f"<body><main><table><caption>{html.escape(text['title'])}</caption>"
        f'<thead><tr><th scope="col">{text["touchpoint"]}</th>'
        f'<th scope="col">{text["answers"]}</th><th scope="col">{text["mean"]}</th>'
        f'<th scope="col">{text["csat"]}</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table><p>{html.escape(period)}</p></main></body></html>"
    )


class OpenData:
    """The handlers, around the shared board and the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _scores(self, request: web.Request) -> tuple[list[OpenScore], datetime]:
        follower = request.app[FOLLOWER]
        if not follower.ready:
            raise ApiError(
                503,
                "feed_loading",
                "the figures are still loading; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        now = datetime.now(UTC)
        board = board_of(request.app, self.settings)
        catalogue = {
            touchpoint_id: entry.name
            for touchpoint_id, entry in self.settings.catalogue.touchpoints.items()
            if not entry.sensitive
        }
        scores = open_scores(
            board.answers.values(),
            now=now,
            days=self.settings.opendata.days,
            min_answers=self.settings.opendata.min_answers,
            catalogue=catalogue,
        )
        return scores, now

    async def json(self, request: web.Request) -> web.Response:
        """GET /open/v1/scores.json."""
        scores, now = self._scores(request)
        body = orjson.dumps(feed_document(scores, settings=self.settings, now=now))
        return web.Response(
            body=body,
            content_type="application/json",
            headers={"Cache-Control": CACHE, "Access-Control-Allow-Origin": "*"},
        )

    async def csv(self, request: web.Request) -> web.Response:
        """GET /open/v1/scores.csv."""
        scores, _ = self._scores(request)
        return web.Response(
            text=scores_csv(scores),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Cache-Control": CACHE,
                "Access-Control-Allow-Origin": "*",
                "Content-Disposition": 'inline; filename="palaute-scores-v1.csv"',
            },
        )

    async def embed(self, request: web.Request) -> web.Response:
        """GET /open/v1/embed.html?lang=fi|en."""
        language = "en" if request.query.get("lang") == "en" else "fi"
        scores, now = self._scores(request)
        return web.Response(
            text=embed_html(scores, settings=self.settings, now=now, language=language),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": CACHE, "Content-Security-Policy": EMBED_CSP},
        )


def setup(app: web.Application, settings: Settings) -> None:
    """Add the three public routes, following the ratings topic while the app runs."""
    board_of(app, settings)
    feed = OpenData(settings)
    app.router.add_get(f"{PREFIX}/scores.json", feed.json)
    app.router.add_get(f"{PREFIX}/scores.csv", feed.csv)
    app.router.add_get(f"{PREFIX}/embed.html", feed.embed)
