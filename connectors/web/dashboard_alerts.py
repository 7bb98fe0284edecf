"""Alerts as work items on the dashboard: the list, the state at a glance, acknowledging.

Every alert is told in plain words by :func:`engine.alert_text.explain`, the
same sentence the email and the webhook carry. Its state is written out and
marked by a symbol and a border style as well as a colour: firing (⚠, solid
red), acknowledged (✓, dashed), resolved (grey).

``GET /dashboard/alerts`` lists firing, acknowledged and resolved alerts,
each firing one with a form to acknowledge it with a comment and assign it
to someone. The form POSTs to ``/dashboard/alerts/{alert_id}/ack`` under the
same rules as ``POST /v1/alerts/{alert_id}/ack`` (the same validation and
event) plus the CSRF check of :mod:`connectors.web.csrf`, then redirects
back (303) to the alert. This page is not live-updated: a redraw would wipe
a comment being typed.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Final

from aiohttp import web

from connectors.web.csrf import hidden_field
from engine.alert_text import explain, local_time, touchpoint_name
from schemas.alerts import AlertState

if TYPE_CHECKING:
    from connectors.web.board import Board
    from connectors.web.errors import ApiError
    from schemas.alerts import ScoreDropAlert
    from schemas.config import Settings

TEXT: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "alerts_title": "Hälytykset",
        "all_alerts": "Kaikki hälytykset ja kuittaukset",
        "firing": "Käynnissä, kuittaamatta",
        "acknowledged": "Kuitatut",
        "resolved": "Päättyneet",
        "none": "Ei hälytyksiä.",
        "acked_by": "Kuittasi {by} {time}",
        "assigned": "vastuussa {who}",
        "comment": "Kommentti",
        "by": "Kuittaaja",
        "assign": "Vastuuhenkilö (valinnainen)",
        "submit": "Kuittaa hälytys",
        "ack_again": "Päivitä kuittausta",
        "no_addresses": "Nimi tai tunnus, ei sähköpostiosoitetta.",
        "alerting": "Hälytys",
        "not_saved": "Kuittausta ei tallennettu",
        "back": "Takaisin hälytyksiin",
    },
    "sv": {
        "alerts_title": "Larm",
        "all_alerts": "Alla larm och kvitteringar",
        "firing": "Pågår, okvitterade",
        "acknowledged": "Kvitterade",
        "resolved": "Avslutade",
        "none": "Inga larm.",
        "acked_by": "Kvitterat av {by} {time}",
        "assigned": "ansvarig {who}",
        "comment": "Kommentar",
        "by": "Kvitterat av",
        "assign": "Ansvarig person (valfritt)",
        "submit": "Kvittera larmet",
        "ack_again": "Uppdatera kvitteringen",
        "no_addresses": "Namn eller signatur, ingen e-postadress.",
        "alerting": "Larm",
        "not_saved": "Kvitteringen sparades inte",
        "back": "Tillbaka till larmen",
    },
    "en": {
        "alerts_title": "Alerts",
        "all_alerts": "All alerts and acknowledgements",
        "firing": "Active, not acknowledged",
        "acknowledged": "Acknowledged",
        "resolved": "Resolved",
        "none": "No alerts.",
        "acked_by": "Acknowledged by {by} {time}",
        "assigned": "assigned to {who}",
        "comment": "Comment",
        "by": "Acknowledged by",
        "assign": "Assign to (optional)",
        "submit": "Acknowledge alert",
        "ack_again": "Update acknowledgement",
        "no_addresses": "A name or handle, not an email address.",
        "alerting": "Alert",
        "not_saved": "The acknowledgement was not saved",
        "back": "Back to the alerts",
    },
}
#: Resolved alerts shown on the overview and a touchpoint's page (all on the alerts page).
RESOLVED_SHOWN: Final = 5
_SYMBOL: Final = {
    "firing": "\N{WARNING SIGN}",
    "acknowledged": "\N{CHECK MARK}",
    "resolved": "\N{EM DASH}",
}


def state_of(board: Board, alert: ScoreDropAlert) -> str:
    """Give ``firing``, ``acknowledged`` or ``resolved``: what the operator must do next."""
    if alert.state is AlertState.RESOLVED:
        return "resolved"
    return "acknowledged" if alert.alert_id in board.acks else "firing"


def alerting_touchpoints(board: Board) -> set[str]:
    """Touchpoints with at least one firing alert, acknowledged or not."""
    return {a.touchpoint_id for a in board.alerts.values() if a.state is AlertState.FIRING}


def alert_item(
    board: Board, settings: Settings, alert: ScoreDropAlert, language: str, form: str = ""
) -> str:
    """Render one alert: state, plain words, who acknowledged it, and an optional form."""
    text = TEXT[language]
    zone = settings.policy.zone
    state = state_of(board, alert)
    entry = settings.catalogue.touchpoints.get(alert.touchpoint_id)
    name = touchpoint_name(entry, alert.touchpoint_id, language)
    words = explain(
        alert, language, zone=zone, touchpoint=name, acknowledged=state == "acknowledged"
    )
    ack = board.acks.get(alert.alert_id)
    acked = ""
    if ack is not None:
        by = text["acked_by"].format(
            by=ack.acknowledged_by, time=local_time(ack.acknowledged_at, zone, language)
        )
        assigned = f", {text['assigned'].format(who=ack.assigned_to)}" if ack.assigned_to else ""
        comment = f": \N{LEFT DOUBLE QUOTATION MARK}{ack.comment}\N{RIGHT DOUBLE QUOTATION MARK}"
        acked = (
            f'<p class="ack">{html.escape(by + assigned)}'
            f"{html.escape(comment) if ack.comment else ''}</p>"
        )
    key = html.escape(alert.alert_id)
    labels = html.escape(f"({words.state}, {words.severity})")
    return (
        f'<li class="alert {state} {alert.severity.value}" id="alert-{key}" '
        f'data-alert-id="{key}" data-state="{state}">'
        f'<p><span class="badge" aria-hidden="true">{_SYMBOL[state]}</span> '
        f"<strong>{html.escape(words.title)}: {html.escape(words.touchpoint)}</strong> "
        f'<span class="state">{labels}</span></p>'
        f'<p class="words">{html.escape(words.explanation)}</p>'
        f'<p class="muted">{html.escape(words.when)}</p>{acked}{form}</li>'
    )


def alert_list(
    board: Board, settings: Settings, language: str, touchpoint_id: str | None = None
) -> str:
    """Render the alerts of the overview or a touchpoint, firing first, with a link to act."""
    text = TEXT[language]
    alerts = board.touchpoint_alerts(touchpoint_id)
    # Open alerts all, resolved ones only the latest few: the alerts page has the rest.
    resolved = [a for a in alerts if a.state is AlertState.RESOLVED][:RESOLVED_SHOWN]
    alerts = [a for a in alerts if a.state is AlertState.FIRING] + resolved
    link = (
        f'<p><a href="/dashboard/alerts?lang={language}">{text["all_alerts"]}</a></p>'
        if alerts
        else ""
    )
    if not alerts:
        return f"<p>{text['none']}</p>"
    items = "".join(alert_item(board, settings, alert, language) for alert in alerts)
    return f'<ul class="alerts">{items}</ul>{link}'


def ack_form(alert: ScoreDropAlert, language: str, token: str, by: str, *, again: bool) -> str:
    """Render the acknowledge-and-assign form of one alert."""
    text = TEXT[language]
    key = html.escape(alert.alert_id)
    action = f"/dashboard/alerts/{key}/ack?lang={language}"
    return (
        f'<form class="ack-form" method="post" action="{action}">{hidden_field(token)}'
        f'<p><label for="by-{key}">{text["by"]}</label>'
        f'<input id="by-{key}" name="by" required maxlength="100" pattern="[^@]+" '
        f'autocomplete="name" value="{html.escape(by)}" aria-describedby="hint-{key}"></p>'
        f'<p><label for="assign-{key}">{text["assign"]}</label>'
        f'<input id="assign-{key}" name="assigned_to" maxlength="100" pattern="[^@]+" '
        f'aria-describedby="hint-{key}"></p>'
        f'<p id="hint-{key}" class="muted">{text["no_addresses"]}</p>'
        f'<p><label for="comment-{key}">{text["comment"]}</label>'
        f'<textarea id="comment-{key}" name="comment" rows="2" maxlength="1000"></textarea></p>'
        f'<p><button type="submit">{text["ack_again" if again else "submit"]}</button></p></form>'
    )


def alerts_page(board: Board, settings: Settings, language: str, token: str, by: str) -> str:
    """Render the alerts page's sections: firing, acknowledged, resolved."""
    text = TEXT[language]
    sections: dict[str, list[str]] = {"firing": [], "acknowledged": [], "resolved": []}
    for alert in board.touchpoint_alerts():
        state = state_of(board, alert)
        form = (
            ack_form(alert, language, token, by, again=state == "acknowledged")
            if state != "resolved"
            else ""
        )
        sections[state].append(alert_item(board, settings, alert, language, form))
    parts = []
    for state, items in sections.items():
        body = f'<ul class="alerts">{"".join(items)}</ul>' if items else f"<p>{text['none']}</p>"
        parts.append(
            f'<section aria-labelledby="h-{state}"><h2 id="h-{state}">'
            f"{text[state]} ({len(items)})</h2>{body}</section>"
        )
    return "".join(parts)


def not_saved(error: ApiError, language: str) -> web.Response:
    """Answer a refused form with a page: the status, the reason and each field at fault."""
    text = TEXT[language]
    fields = "".join(
        f"<li><code>{html.escape(field.path)}</code>: {html.escape(field.message)}</li>"
        for field in error.errors
    )
    body = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{text["not_saved"]}</title><link rel="stylesheet" href="/static/dashboard.css">'
        f"</head><body><main><h1>{text['not_saved']}</h1>"
        f"<p><code>{html.escape(error.code)}</code>: {html.escape(error.message)}</p>"
        f"{f'<ul>{fields}</ul>' if fields else ''}"
        f'<p><a href="/dashboard/alerts?lang={language}">{text["back"]}</a></p>'
        "</main></body></html>"
    )
    return web.Response(
        status=error.status,
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers=error.headers,
    )
