"""HTML of the touchpoint console, in Finnish, Swedish and English.

The live region holds the range picker (links, so the browser's own
keyboard handling and history work), the range's figures against the
period before with their 95 % intervals, the chart (an image, see
:mod:`connectors.web.charts`) with the same figures as a table, the alerts
and the comments with their scores, filterable by score. The table sits in
a focusable scrolling region, so a keyboard reaches all of it and a narrow
screen scrolls the table, not the page.
"""

from __future__ import annotations

import html
from datetime import UTC
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode

from connectors.web import dashboard_views
from connectors.web.dashboard_alerts import alert_list
from connectors.web.timeline import DEFAULT_RANGE, RANGES, assemble
from engine.alert_text import local_time
from schemas.base import Scale

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime, tzinfo

    from connectors.web.board import Board
    from connectors.web.timeline import ConsoleView
    from engine.history_figures import Estimate, Figures
    from schemas.config import Settings

WORDS: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "range": "Aikaväli",
        "24h": "24 h",
        "7d": "7 vrk",
        "28d": "28 vrk",
        "90d": "90 vrk",
        "13m": "13 kk",
        "headline_mean": "Keskiarvo",
        "headline_nps": "NPS",
        "headline_ces": "CES (vaivattomuus 1\N{EN DASH}7)",
        "share_csat": "Tyytyväisten osuus (CSAT)",
        "share_easy": "Helpoksi kokeneet (5\N{EN DASH}7)",
        "band": "95 %:n luottamusväli",
        "previous": "Edellinen jakso",
        "previous_year": "Vuotta aiemmin",
        "target": "Tavoite",
        "volume": "Vastauksia",
        "rate": "Vastausaste",
        "sent": "Lähetettyjä",
        "start": "Hälytys alkoi",
        "ack": "Hälytys kuitattu",
        "end": "Hälytys päättyi",
        "this_period": "Tämä jakso",
        "period": "Aika",
        "figures": "Luvut",
        "chart": "Kaavio: {headline}, {share}, vastauksia ja vastausaste, {range}",
        "table": "Luvut taulukkona",
        "comments": "Kommentit arvosanoineen (yhteystiedot poistettu)",
        "score": "Arvosana",
        "all_scores": "Kaikki",
        "filter": "Näytä arvosanan mukaan",
        "no_comments": "Ei kommentteja.",
        "no_score": "ei arvosanaa",
        "none": "\N{EN DASH}",
        "markers": "Hälytykset aikavälillä",
        "no_markers": "Ei hälytyksiä aikavälillä.",
    },
    "sv": {
        "range": "Tidsintervall",
        "24h": "24 h",
        "7d": "7 dygn",
        "28d": "28 dygn",
        "90d": "90 dygn",
        "13m": "13 mån",
        "headline_mean": "Medelvärde",
        "headline_nps": "NPS",
        "headline_ces": "CES (ansträngning 1\N{EN DASH}7)",
        "share_csat": "Andel nöjda (CSAT)",
        "share_easy": "Andel som tyckte det var lätt (5\N{EN DASH}7)",
        "band": "95 % konfidensintervall",
        "previous": "Föregående period",
        "previous_year": "Ett år tidigare",
        "target": "Mål",
        "volume": "Svar",
        "rate": "Svarsfrekvens",
        "sent": "Skickade",
        "start": "Larmet började",
        "ack": "Larmet kvitterat",
        "end": "Larmet upphörde",
        "this_period": "Denna period",
        "period": "Tid",
        "figures": "Siffror",
        "chart": "Diagram: {headline}, {share}, svar och svarsfrekvens, {range}",
        "table": "Siffrorna som tabell",
        "comments": "Kommentarer med betyg (kontaktuppgifter borttagna)",
        "score": "Betyg",
        "all_scores": "Alla",
        "filter": "Visa efter betyg",
        "no_comments": "Inga kommentarer.",
        "no_score": "inget betyg",
        "none": "\N{EN DASH}",
        "markers": "Larm under intervallet",
        "no_markers": "Inga larm under intervallet.",
    },
    "en": {
        "range": "Range",
        "24h": "24 h",
        "7d": "7 days",
        "28d": "28 days",
        "90d": "90 days",
        "13m": "13 months",
        "headline_mean": "Mean",
        "headline_nps": "NPS",
        "headline_ces": "CES (effort 1\N{EN DASH}7)",
        "share_csat": "Satisfied share (CSAT)",
        "share_easy": "Found it easy (5\N{EN DASH}7)",
        "band": "95 % interval",
        "previous": "Previous period",
        "previous_year": "A year earlier",
        "target": "Target",
        "volume": "Answers",
        "rate": "Response rate",
        "sent": "Sent",
        "start": "Alert started",
        "ack": "Alert acknowledged",
        "end": "Alert ended",
        "this_period": "This period",
        "period": "Time",
        "figures": "Figures",
        "chart": "Chart: {headline}, {share}, answers and response rate, {range}",
        "table": "The figures as a table",
        "comments": "Comments with their scores (contact details removed)",
        "score": "Score",
        "all_scores": "All",
        "filter": "Show by score",
        "no_comments": "No comments.",
        "no_score": "no score",
        "none": "\N{EN DASH}",
        "markers": "Alerts in the range",
        "no_markers": "No alerts in the range.",
    },
}


def words(language: str) -> dict[str, str]:
    """Give the console's words in a language (Finnish for any other)."""
    return WORDS.get(language, WORDS["fi"])


def _number(value: float | None, language: str, digits: int = 2) -> str:
    if value is None:
        return "\N{EN DASH}"
    text = f"{value:.{digits}f}"
    return text if language == "en" else text.replace(".", ",")


def _percent(value: float | None, language: str) -> str:
    if value is None:
        return "\N{EN DASH}"
    return f"{value * 100:.0f}%" if language == "en" else f"{value * 100:.0f} %"


def estimate(value: Estimate | None, language: str, *, share: bool, nps: bool = False) -> str:
    """Write a figure with its interval, as ``4,21 (4,15-4,27)`` with an en dash."""
    if value is None:
        return "\N{EN DASH}"

    def show(x: float | None) -> str:
        if share:
            return _percent(x, language)
        return _number(x, language, 0 if nps else 2)

    if value.low is None or value.high is None:
        return show(value.value)
    return f"{show(value.value)} ({show(value.low)}\N{EN DASH}{show(value.high)})"


def _headline(view: ConsoleView, language: str) -> str:
    w = words(language)
    if view.scale is Scale.NPS_11:
        return w["headline_nps"]
    return w["headline_ces"] if view.scale is Scale.CES_7 else w["headline_mean"]


def _share_label(view: ConsoleView, language: str) -> str:
    w = words(language)
    return w["share_easy"] if view.scale is Scale.CES_7 else w["share_csat"]


def _cells(f: Figures, view: ConsoleView, language: str) -> str:
    nps = view.scale is Scale.NPS_11
    return (
        f"<td>{estimate(f.headline, language, share=False, nps=nps)}</td>"
        f"<td>{estimate(f.share, language, share=True)}</td>"
        f"<td>{f.count}</td><td>{f.sent}</td><td>{_percent(f.response_rate, language)}</td>"
    )


def _head(view: ConsoleView, language: str, first: str) -> str:
    w = words(language)
    names = (first, _headline(view, language), _share_label(view, language))
    return (
        "<tr>"
        + "".join(f'<th scope="col">{html.escape(n)}</th>' for n in names)
        + f'<th scope="col">{w["volume"]}</th><th scope="col">{w["sent"]}</th>'
        f'<th scope="col">{w["rate"]}</th></tr>'
    )


def summary(view: ConsoleView, language: str) -> str:
    """Give the range's figures against the comparison, as a small table."""
    w = words(language)
    before = w["previous_year"] if view.range.key == "13m" else w["previous"]
    return (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{w["figures"]}">'
        f"<table><caption>{w['figures']} ({w[view.range.key]})</caption>"
        f"<thead>{_head(view, language, w['period'])}</thead><tbody>"
        f'<tr data-period="current"><th scope="row">{w["this_period"]}</th>'
        f"{_cells(view.total, view, language)}</tr>"
        f'<tr data-period="previous"><th scope="row">{before}</th>'
        f"{_cells(view.previous_total, view, language)}</tr>"
        "</tbody></table></div>"
    )


def range_picker(base: str, chosen: str, language: str, score: int | None) -> str:
    """Give the range links; the chosen one is marked current."""
    w = words(language)
    items = []
    for key in RANGES:
        query = {"lang": language, "range": key}
        if score is not None:
            query["score"] = str(score)
        current = ' aria-current="page"' if key == chosen else ""
        items.append(
            f'<li><a href="{html.escape(base + "?" + urlencode(query))}"{current}>{w[key]}</a></li>'
        )
    return (
        f'<nav class="range-picker" aria-label="{w["range"]}">'
        f'<ul class="ranges">{"".join(items)}</ul></nav>'
    )


def chart(view: ConsoleView, language: str, base: str, version: int) -> str:
    """Give the chart image and its table of every bucket."""
    w = words(language)
    label = w["chart"].format(
        headline=_headline(view, language),
        share=_share_label(view, language),
        range=w[view.range.key],
    )
    query = urlencode({"lang": language, "range": view.range.key, "v": str(version)})
    fmt = "%d.%m. %H:%M" if view.range.hourly else "%d.%m.%Y"
    rows = "".join(
        f'<tr><th scope="row"><time datetime="{b.start.isoformat()}">'
        f"{b.start.strftime(fmt)}</time></th>{_cells(b.current, view, language)}</tr>"
        for b in reversed(view.buckets)
    )
    return (
        f'<figure class="chart"><img src="{html.escape(base)}/chart.svg?{html.escape(query)}" '
        f'alt="{html.escape(label)}" width="800" height="700">'
        f"<figcaption>{html.escape(label)}</figcaption></figure>"
        f"<details><summary>{w['table']}</summary>"
        f'<div class="scroll" tabindex="0" role="region" aria-label="{w["table"]}">'
        f'<table class="buckets"><caption>{html.escape(label)}</caption>'
        f"<thead>{_head(view, language, w['period'])}</thead><tbody>{rows}</tbody></table>"
        "</div></details>"
    )


def markers(view: ConsoleView, language: str) -> str:
    """List the alert moments the chart marks, in local time."""
    w = words(language)
    if not view.markers:
        return f"<p>{w['no_markers']}</p>"
    zone = view.buckets[0].start.tzinfo or UTC
    items = "".join(
        f'<li data-alert-id="{html.escape(m.alert_id)}" class="marker {m.kind}">'
        f'<time datetime="{m.at.isoformat()}">{local_time(m.at, zone, language)}</time> '
        f"{w[m.kind]}</li>"
        for m in view.markers
    )
    return f'<h3>{w["markers"]}</h3><ul class="markers">{items}</ul>'


def comments(  # noqa: PLR0917 - the page's coordinates, each needed
    board: Board, view: ConsoleView, language: str, base: str, score: int | None, zone: tzinfo
) -> str:
    """List the comments with their scores, optionally only those of one score."""
    w = words(language)
    touchpoint_id, chosen, scale = view.touchpoint_id, view.range.key, view.scale
    links = []
    for value in [None, *range(scale.low, scale.high + 1)]:
        query = {"lang": language, "range": chosen}
        if value is not None:
            query["score"] = str(value)
        current = ' aria-current="true"' if value == score else ""
        text = w["all_scores"] if value is None else str(value)
        href = html.escape(base + "?" + urlencode(query))
        links.append(f'<li><a href="{href}"{current}>{text}</a></li>')
    shown = []
    for comment in reversed(board.comments.get(touchpoint_id, [])):
        answer = board.answers.get(comment.key.partition("|")[0])
        value = None if answer is None else answer.score
        if score is not None and value != score:
            continue
        badge = (
            f'<span class="score" aria-label="{w["score"]} {value}">{value}</span>'
            if value is not None
            else f'<span class="score none">{w["no_score"]}</span>'
        )
        shown.append(
            f'<li>{badge} <time datetime="{comment.received_at.isoformat()}">'
            f"{local_time(comment.received_at, zone, language)}</time> "
            f"{html.escape(comment.text)}</li>"
        )
    listing = (
        f'<ul class="comments">{"".join(shown)}</ul>' if shown else f"<p>{w['no_comments']}</p>"
    )
    return (
        f"<h2>{w['comments']}</h2>"
        f'<nav aria-label="{w["filter"]}"><ul class="ranges">{"".join(links)}</ul></nav>{listing}'
    )


def live(
    board: Board,
    view: ConsoleView,
    language: str,
    *,
    score: int | None,
    alerts: str,
    alerts_heading: str,
    settings: Settings,
) -> str:
    """Give the console's live region: range, figures, chart, alert moments, alerts, comments."""
    base = touchpoint_base(view.touchpoint_id)
    version = board.history.versions.get(view.touchpoint_id, 0)
    return (
        range_picker(base, view.range.key, language, score)
        + summary(view, language)
        + chart(view, language, base, version)
        + markers(view, language)
        + f"<h2>{alerts_heading}</h2>{alerts}"
        + comments(board, view, language, base, score, settings.policy.zone)
    )


def chosen(query: Mapping[str, str]) -> tuple[str, int | None]:
    """Read the range and the score filter from a query; anything unknown is the default."""
    range_key = query.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    raw = query.get("score", "")
    score = int(raw) if raw.isdigit() and len(raw) <= 2 else None  # noqa: PLR2004 - 0..10
    return range_key, score


def view_of(
    board: Board, settings: Settings, touchpoint_id: str, range_key: str, now: datetime
) -> ConsoleView:
    """Assemble the console view of a touchpoint with its targets from the catalogue."""
    entry = settings.catalogue.touchpoints.get(touchpoint_id)
    return assemble(
        board,
        touchpoint_id,
        range_key,
        now,
        settings.policy.zone,
        kpi_target=None if entry is None else entry.kpi_target,
        csat_target=settings.catalogue.csat_targets.get(touchpoint_id),
    )


def region(  # noqa: PLR0917 - what the page is drawn from, each needed
    board: Board,
    settings: Settings,
    touchpoint_id: str,
    language: str,
    query: Mapping[str, str],
    now: datetime,
) -> str:
    """Give the touchpoint page's live region for the query's range and score filter."""
    range_key, score = chosen(query)
    view = view_of(board, settings, touchpoint_id, range_key, now)
    # The alerts are the overview's own list, in its languages.
    theirs = language if language in dashboard_views.TEXT else "fi"
    heading = dashboard_views.TEXT[theirs]["alerts"]
    alerts = alert_list(board, settings, theirs, touchpoint_id)
    return live(
        board, view, language, score=score, alerts=alerts, alerts_heading=heading, settings=settings
    )


def touchpoint_base(touchpoint_id: str) -> str:
    """Give the touchpoint page's path."""
    return f"/dashboard/touchpoints/{quote(touchpoint_id, safe='')}"
