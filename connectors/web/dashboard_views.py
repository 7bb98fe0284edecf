"""HTML of the operations dashboard, rendered on the server from the board.

Charts are inline SVG drawn here, each with a text alternative (a label or a
table), so the pages need no script to be read and nothing from elsewhere.
The live region's fragments are the same functions the full pages use, so an
update over server-sent events shows exactly what a reload would.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from connectors.web.dashboard_alerts import alert_list, alerting_touchpoints
from engine.alert_text import local_time, touchpoint_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from connectors.web.board import Board, TrendPoint
    from schemas.config import Settings
    from schemas.metrics import TouchpointMetrics

LANGUAGES: Final = ("fi", "sv", "en")
#: How each language names itself, for the language links.
LANGUAGE_NAMES: Final = {"fi": "Suomeksi", "sv": "På svenska", "en": "In English"}
TEXT: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "title": "Palaute \N{EN DASH} toiminnan näkymä",
        "detail_title": "Kosketuspiste {name}",
        "touchpoints": "Kosketuspisteet",
        "touchpoint": "Kosketuspiste",
        "target": "KPI-tavoite",
        "response_rate": "Vastausaste ({window})",
        "trend": "Keskiarvon kehitys ({window})",
        "window": "Jakso {window}: keskiarvo, vastauksia, tyytyväisiä",
        "alerts": "Hälytykset",
        "no_alerts": "Ei hälytyksiä.",
        "no_figures": "Ei lukuja vielä.",
        "distribution": "Vastausten jakauma ({window})",
        "score": "Arvosana",
        "count": "Vastauksia",
        "comments": "Viimeisimmät kommentit (poistettu yhteystiedot)",
        "no_comments": "Ei kommentteja.",
        "back": "Kaikki kosketuspisteet",
        "updated": "Päivitetty",
        "trend_label": "Keskiarvo {first} → {last}, {points} mittausta",
        "no_trend": "Ei kehitystietoa",
        "live": "Näkymä päivittyy itsestään.",
        "languages": "Kieli",
        "alerting": "Hälytys käynnissä",
    },
    "sv": {
        "title": "Palaute \N{EN DASH} driftöversikt",
        "detail_title": "Kontaktpunkt {name}",
        "touchpoints": "Kontaktpunkter",
        "touchpoint": "Kontaktpunkt",
        "target": "KPI-mål",
        "response_rate": "Svarsfrekvens ({window})",
        "trend": "Medelvärdets utveckling ({window})",
        "window": "Period {window}: medelvärde, svar, nöjda",
        "alerts": "Larm",
        "no_alerts": "Inga larm.",
        "no_figures": "Inga siffror ännu.",
        "distribution": "Svarens fördelning ({window})",
        "score": "Betyg",
        "count": "Svar",
        "comments": "Senaste kommentarer (kontaktuppgifter borttagna)",
        "no_comments": "Inga kommentarer.",
        "back": "Alla kontaktpunkter",
        "updated": "Uppdaterad",
        "trend_label": "Medelvärde {first} → {last}, {points} mätningar",
        "no_trend": "Ingen utveckling ännu",
        "live": "Vyn uppdateras automatiskt.",
        "languages": "Språk",
        "alerting": "Larm pågår",
    },
    "en": {
        "title": "Palaute \N{EN DASH} operations dashboard",
        "detail_title": "Touchpoint {name}",
        "touchpoints": "Touchpoints",
        "touchpoint": "Touchpoint",
        "target": "KPI target",
        "response_rate": "Response rate ({window})",
        "trend": "Mean trend ({window})",
        "window": "Window {window}: mean, answers, satisfied",
        "alerts": "Alerts",
        "no_alerts": "No alerts.",
        "no_figures": "No figures yet.",
        "distribution": "Distribution of answers ({window})",
        "score": "Score",
        "count": "Answers",
        "comments": "Latest comments (contact details removed)",
        "no_comments": "No comments.",
        "back": "All touchpoints",
        "updated": "Updated",
        "trend_label": "Mean {first} → {last} over {points} readings",
        "no_trend": "No trend yet",
        "live": "This view updates by itself.",
        "languages": "Language",
        "alerting": "Alert active",
    },
}
ALERTING: Final = ' class="alerting"'
TEXT_NAV: Final = {"fi": "Päävalikko", "sv": "Huvudmeny", "en": "Main menu"}
SPARK_WIDTH: Final = 120
SPARK_HEIGHT: Final = 28
SPARK_MARGIN: Final = 0.25


def choose_language(query: str | None, accept_language: str) -> str:
    """Use ?lang= when given, else the first of fi/sv/en the browser names, else Finnish."""
    if query in LANGUAGES:
        return query
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "fi"


def number(value: float | None, language: str, digits: int = 2) -> str:
    """Format a figure the way the language writes decimals; a dash for none."""
    if value is None:
        return "\N{EN DASH}"
    text = f"{value:.{digits}f}"
    return text if language == "en" else text.replace(".", ",")


def percent(value: float | None, language: str) -> str:
    """Format a share as a whole percentage."""
    if value is None:
        return "\N{EN DASH}"
    return f"{value * 100:.0f}%" if language == "en" else f"{value * 100:.0f}\N{NO-BREAK SPACE}%"


def primary_window(windows: Sequence[str]) -> str | None:
    """Pick the window the response rate and the trend are shown for: 24h when there is one."""
    if "24h" in windows:
        return "24h"
    return windows[0] if windows else None


def sparkline(points: Sequence[TrendPoint], language: str, low: float, high: float) -> str:
    """Draw an inline SVG polyline of the mean, labelled with its first and last value."""
    text = TEXT[language]
    means = [(point.mean) for point in points if point.mean is not None]
    if len(means) < 2:  # noqa: PLR2004 - a line needs two points
        return f'<span class="muted">{text["no_trend"]}</span>'
    # Around the data, not the whole scale, so that a change of a tenth shows.
    low = max(low, min(means) - SPARK_MARGIN)
    high = min(high, max(means) + SPARK_MARGIN)
    span = (high - low) or 1.0
    step = SPARK_WIDTH / (len(means) - 1)
    coordinates = " ".join(
        f"{index * step:.1f},{SPARK_HEIGHT - 2 - (mean - low) / span * (SPARK_HEIGHT - 4):.1f}"
        for index, mean in enumerate(means)
    )
    label = text["trend_label"].format(
        first=number(means[0], language), last=number(means[-1], language), points=len(means)
    )
    return (
        f'<svg class="spark" role="img" aria-label="{html.escape(label)}" '
        f'width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" '
        f'viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}"><title>{html.escape(label)}</title>'
        f'<polyline points="{coordinates}"/></svg>'
    )


def _target(settings: Settings, touchpoint_id: str, language: str) -> str:
    entry = settings.catalogue.touchpoints.get(touchpoint_id)
    parts = []
    if entry is not None and entry.kpi_target is not None:
        parts.append(number(entry.kpi_target, language))
    csat = settings.catalogue.csat_targets.get(touchpoint_id)
    if csat is not None:
        parts.append(percent(csat, language))
    return " / ".join(parts) or "\N{EN DASH}"


def name_of(settings: Settings, touchpoint_id: str, language: str) -> str:
    """Name a touchpoint in the page's language where the catalogue has it."""
    entry = settings.catalogue.touchpoints.get(touchpoint_id)
    return touchpoint_name(entry, touchpoint_id, language)


def _figures(metrics: TouchpointMetrics, language: str) -> str:
    return (
        f'<span class="mean">{number(metrics.mean, language)}</span> '
        f'<span class="count">n={metrics.count}</span> '
        f'<span class="csat">{percent(metrics.csat_share, language)}</span>'
    )


def _cell(label: str, content: str) -> str:
    """Render a cell that names its column, for the stacked layout of narrow screens."""
    return f'<td data-label="{html.escape(label)}">{content}</td>'


def _window_cell(metrics: TouchpointMetrics | None, language: str, label: str = "") -> str:
    if metrics is None:
        return _cell(label, "\N{EN DASH}")
    return (
        f'<td data-label="{html.escape(label)}" '
        f'data-window="{html.escape(metrics.window)}" data-count="{metrics.count}" '
        f'data-mean="{"" if metrics.mean is None else metrics.mean}" '
        f'data-csat="{"" if metrics.csat_share is None else metrics.csat_share}">'
        f"{_figures(metrics, language)}</td>"
    )


def overview_table(board: Board, settings: Settings, language: str) -> str:
    """Render the touchpoints table: one row per touchpoint, a cell per window."""
    text = TEXT[language]
    windows = board.windows()
    touchpoints = board.touchpoints()
    if not touchpoints:
        return f"<p>{text['no_figures']}</p>"
    main = primary_window(windows) or ""
    head = "".join(
        f'<th scope="col">{html.escape(text["window"].format(window=window))}</th>'
        for window in windows
    )
    rows = []
    alerting = alerting_touchpoints(board)
    for touchpoint_id in touchpoints:
        cells = "".join(
            _window_cell(
                board.metrics.get((touchpoint_id, window)),
                language,
                text["window"].format(window=window),
            )
            for window in windows
        )
        primary = board.metrics.get((touchpoint_id, main))
        low, high = (primary.scale.low, primary.scale.high) if primary is not None else (0.0, 1.0)
        trend = sparkline(board.trends.get((touchpoint_id, main), []), language, low, high)
        link = f"/dashboard/touchpoints/{quote(touchpoint_id, safe='')}?lang={language}"
        flag = (
            f' <span class="flag">\N{WARNING SIGN} {text["alerting"]}</span>'
            if touchpoint_id in alerting
            else ""
        )
        name = html.escape(name_of(settings, touchpoint_id, language))
        rows.append(
            f'<tr data-touchpoint="{html.escape(touchpoint_id)}"{ALERTING if flag else ""}>'
            '<th scope="row">'
            f'<a href="{html.escape(link)}">{name}</a>{flag} '
            f'<span class="muted">{html.escape(touchpoint_id)}</span></th>'
            f"{_cell(text['target'], _target(settings, touchpoint_id, language))}{cells}"
            + _cell(
                text["response_rate"].format(window=main),
                percent(None if primary is None else primary.response_rate, language),
            )
            + f"{_cell(text['trend'].format(window=main), trend)}</tr>"
        )
    return (
        f'<table class="stack"><caption class="visually-hidden">{text["touchpoints"]}</caption>'
        "<thead><tr>"
        f'<th scope="col">{text["touchpoint"]}</th><th scope="col">{text["target"]}</th>'
        f'{head}<th scope="col">{html.escape(text["response_rate"].format(window=main))}</th>'
        f'<th scope="col">{html.escape(text["trend"].format(window=main))}</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def overview_live(board: Board, settings: Settings, language: str) -> str:
    """Render the overview's live region: alerts, then the touchpoints table."""
    text = TEXT[language]
    return (
        f"<h2>{text['alerts']}</h2>{alert_list(board, settings, language)}"
        f"<h2>{text['touchpoints']}</h2>{overview_table(board, settings, language)}"
    )


def distribution_chart(metrics: TouchpointMetrics, language: str) -> str:
    """Draw bars of the count of each score, as SVG, with the same figures in a table."""
    text = TEXT[language]
    scores = list(range(metrics.scale.low, metrics.scale.high + 1))
    counts = [metrics.distribution.get(str(score), 0) for score in scores]
    tallest = max(counts) or 1
    bar, gap, height = 28, 8, 100
    bars = "".join(
        f'<rect x="{index * (bar + gap)}" y="{height - count / tallest * height:.1f}" '
        f'width="{bar}" height="{count / tallest * height:.1f}"/>'
        f'<text x="{index * (bar + gap) + bar / 2}" y="{height + 16}">{score}</text>'
        for index, (score, count) in enumerate(zip(scores, counts, strict=True))
    )
    width = len(scores) * (bar + gap)
    caption = html.escape(text["distribution"].format(window=metrics.window))
    rows = "".join(
        f'<tr><th scope="row">{score}</th><td>{count}</td></tr>'
        for score, count in zip(scores, counts, strict=True)
    )
    return (
        f'<figure><svg class="bars" aria-hidden="true" width="{width}" height="{height + 20}" '
        f'viewBox="0 0 {width} {height + 20}">{bars}</svg>'
        f"<table><caption>{caption}</caption><thead><tr>"
        f'<th scope="col">{text["score"]}</th><th scope="col">{text["count"]}</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></figure>"
    )


def detail_live(board: Board, settings: Settings, touchpoint_id: str, language: str) -> str:
    """Render the detail page's live region: figures per window, distribution, alerts, comments."""
    text = TEXT[language]
    windows = [w for w in board.windows() if (touchpoint_id, w) in board.metrics]
    figures = "".join(
        f"<li>{html.escape(text['window'].format(window=window))}: "
        f"{_figures(board.metrics[(touchpoint_id, window)], language)}</li>"
        for window in windows
    )
    main = primary_window(windows)
    chart = (
        distribution_chart(board.metrics[(touchpoint_id, main)], language)
        if main is not None
        else f"<p>{text['no_figures']}</p>"
    )
    comments = list(reversed(board.comments.get(touchpoint_id, [])))
    comment_list = (
        '<ul class="comments">'
        + "".join(
            f'<li><time datetime="{c.received_at.isoformat()}">'
            f"{local_time(c.received_at, settings.policy.zone, language)}</time> "
            f"{html.escape(c.text)}</li>"
            for c in comments
        )
        + "</ul>"
        if comments
        else f"<p>{text['no_comments']}</p>"
    )
    return (
        f'<ul class="figures">{figures}</ul><p>{text["target"]}: '
        f"{_target(settings, touchpoint_id, language)}</p>{chart}"
        f"<h2>{text['alerts']}</h2>{alert_list(board, settings, language, touchpoint_id)}"
        f"<h2>{text['comments']}</h2>{comment_list}"
    )


def language_links(language: str, here: str) -> str:
    """Link to this page in the two other languages, each named in its own language."""
    joiner = "&" if "?" in here else "?"
    links = "".join(
        f'<li><a href="{html.escape(f"{here}{joiner}lang={code}")}" lang="{code}" '
        f'hreflang="{code}">{LANGUAGE_NAMES[code]}</a></li>'
        for code in LANGUAGES
        if code != language
    )
    return f'<ul class="languages">{links}</ul>'


def page(
    *,
    title: str,
    language: str,
    live: str,
    switch_href: str,
    events: str | None,
) -> str:
    """Render a whole dashboard page around its live region (live only with ``events``).

    ``switch_href`` is this page's address; its ``lang`` parameter is replaced
    in the language links.
    """
    text = TEXT[language]
    here = re.sub(r"[?&]lang=[a-z]*", "", switch_href)
    nav = (
        f'<nav aria-label="{TEXT_NAV[language]}"><ul class="nav">'
        f'<li><a href="/dashboard?lang={language}">{text["touchpoints"]}</a></li>'
        f'<li><a href="/dashboard/alerts?lang={language}">{text["alerts"]}</a></li></ul>'
        f"{language_links(language, here)}</nav>"
    )
    status = (
        f'<p class="muted">{text["live"]} <span id="updated" role="status" '
        f'data-label="{text["updated"]}"></span></p>'
        if events
        else ""
    )
    source = f' data-events="{html.escape(events)}"' if events else ""
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script src="/static/dashboard.js" defer></script></head>'
        f"<body><header>{nav}</header>"
        f"<main><h1>{html.escape(title)}</h1>{status}"
        f'<div id="live"{source}>{live}</div></main></body></html>'
    )
