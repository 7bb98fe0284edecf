"""HTML of the admin page: the touchpoints, one touchpoint's form, previews and history.

Plain server-rendered forms (no script), one column that fits a phone, every
field with a visible label, errors next to the form and announced. Texts in
Finnish, Swedish and English.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from connectors.sms_segments import SmsSegments
    from connectors.web.admin_preview import Preview

LANGUAGES: Final = ("fi", "sv", "en")
LANGUAGE_NAMES: Final = {"fi": "suomi", "sv": "svenska", "en": "English"}
TEXT: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "title": "Kosketuspisteiden ylläpito",
        "touchpoints": "Kosketuspisteet",
        "id": "Tunniste",
        "name": "Nimi",
        "version": "Versio",
        "kpi": "KPI-tavoite",
        "retired": "poistettu käytöstä",
        "in_force": "käytössä",
        "edit": "Muokkaa",
        "new": "Uusi kosketuspiste",
        "create": "Luo",
        "question": "Kysymys ({language})",
        "question_hint": "{low} ja {high} korvataan asteikon päillä.",
        "comment": "Muutoksen syy (näkyy historiassa)",
        "preview": "Esikatsele",
        "save": "Tallenna",
        "retire": "Poista käytöstä",
        "rollback": "Palauta versioon {version}",
        "previews": "Esikatselu ennen tallennusta",
        "sms": "Tekstiviesti",
        "reminder": "Muistutus tekstiviestinä",
        "segments": "{segments} viestiosa(a), {units}/{per} merkkiä, {encoding}",
        "over": "Viesti ei mahdu yhteen osaan: lyhennä kysymystä.",
        "email": "Sähköposti",
        "subject": "Aihe",
        "page": "Vastaussivu",
        "history": "Muutoshistoria",
        "no_history": "Ei muutoksia.",
        "by": "{when}: {who}, {action}",
        "saved": "Tallennettu: versio {version}.",
        "not_saved": "Ei tallennettu.",
        "back": "Kaikki kosketuspisteet",
        "dashboard": "Toiminnan näkymä",
    },
    "sv": {
        "title": "Underhåll av kontaktpunkter",
        "touchpoints": "Kontaktpunkter",
        "id": "Identifierare",
        "name": "Namn",
        "version": "Version",
        "kpi": "KPI-mål",
        "retired": "tagen ur bruk",
        "in_force": "i bruk",
        "edit": "Redigera",
        "new": "Ny kontaktpunkt",
        "create": "Skapa",
        "question": "Fråga ({language})",
        "question_hint": "{low} och {high} ersätts med skalans ändar.",
        "comment": "Orsak till ändringen (syns i historiken)",
        "preview": "Förhandsgranska",
        "save": "Spara",
        "retire": "Ta ur bruk",
        "rollback": "Återställ till version {version}",
        "previews": "Förhandsgranskning före sparande",
        "sms": "Textmeddelande",
        "reminder": "Påminnelse som textmeddelande",
        "segments": "{segments} delmeddelande(n), {units}/{per} tecken, {encoding}",
        "over": "Meddelandet ryms inte i en del: korta frågan.",
        "email": "E-post",
        "subject": "Ämne",
        "page": "Svarssida",
        "history": "Ändringshistorik",
        "no_history": "Inga ändringar.",
        "by": "{when}: {who}, {action}",
        "saved": "Sparat: version {version}.",
        "not_saved": "Inte sparat.",
        "back": "Alla kontaktpunkter",
        "dashboard": "Översikt",
    },
    "en": {
        "title": "Touchpoint administration",
        "touchpoints": "Touchpoints",
        "id": "Identifier",
        "name": "Name",
        "version": "Version",
        "kpi": "KPI target",
        "retired": "retired",
        "in_force": "in force",
        "edit": "Edit",
        "new": "New touchpoint",
        "create": "Create",
        "question": "Question ({language})",
        "question_hint": "{low} and {high} are replaced with the ends of the scale.",
        "comment": "Reason for the change (shown in the history)",
        "preview": "Preview",
        "save": "Save",
        "retire": "Retire",
        "rollback": "Roll back to version {version}",
        "previews": "Preview before saving",
        "sms": "SMS",
        "reminder": "Reminder SMS",
        "segments": "{segments} segment(s), {units}/{per} characters, {encoding}",
        "over": "The message does not fit one segment: shorten the question.",
        "email": "Email",
        "subject": "Subject",
        "page": "Answer page",
        "history": "History",
        "no_history": "No changes.",
        "by": "{when}: {who}, {action}",
        "saved": "Saved: version {version}.",
        "not_saved": "Not saved.",
        "back": "All touchpoints",
        "dashboard": "Dashboard",
    },
}


def _e(value: object) -> str:
    return html.escape(str(value))


def document(lang: str, title: str, body: str, account: str) -> str:
    """Wrap a page: language links, who is signed in, the heading."""
    links = " ".join(
        f'<a href="?lang={code}" lang="{code}" hreflang="{code}">{LANGUAGE_NAMES[code]}</a>'
        for code in LANGUAGES
        if code != lang
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} \N{EN DASH} Palaute</title>"
        '<link rel="stylesheet" href="/static/dashboard.css"></head><body>'
        f'<header><p><a href="/dashboard?lang={lang}">{TEXT[lang]["dashboard"]}</a> '
        f"{links}</p>{account}</header>"
        f"<main><h1>{_e(title)}</h1>{body}</main></body></html>"
    )


def notice(lang: str, saved_version: str | None, errors: Sequence[str]) -> str:
    """Say what the last action did: saved (a status) or not (an alert with the reasons)."""
    text = TEXT[lang]
    if errors:
        items = "".join(f"<li>{_e(error)}</li>" for error in errors)
        return (
            f'<div role="alert" class="notice error"><p>{text["not_saved"]}</p>'
            f"<ul>{items}</ul></div>"
        )
    if saved_version is not None:
        return (
            f'<p role="status" class="notice">{_e(text["saved"].format(version=saved_version))}</p>'
        )
    return ""


def list_body(lang: str, listing: Mapping[str, Any], csrf_field: str, message: str) -> str:
    """List the touchpoints, each with its state and a link to edit it; a form for a new one."""
    text = TEXT[lang]
    items = []
    for row in listing["touchpoints"]:
        touchpoint_id = str(row["id"])
        state = text["retired"] if row["retired"] else text["in_force"]
        kpi = "" if row["kpi_target"] is None else f", {text['kpi']} {_e(row['kpi_target'])}"
        href = f"/admin/touchpoints/{quote(touchpoint_id, safe='')}?lang={lang}"
        items.append(
            f'<li data-touchpoint="{_e(touchpoint_id)}"><a href="{href}">'
            f"{_e(row['name'] or touchpoint_id)}</a> "
            f'<span class="muted">{_e(touchpoint_id)}, {text["version"].lower()} '
            f"{_e(row['version'])}, {state}{kpi}</span></li>"
        )
    return (
        f"{message}<h2>{text['touchpoints']}</h2>"
        f'<ul class="figures admin-list">{"".join(items)}</ul>'
        f'<h2 id="new-heading">{text["new"]}</h2>'
        f'<form method="post" action="/admin/touchpoints?lang={lang}" class="stacked" '
        f'aria-labelledby="new-heading">{csrf_field}'
        f'<label for="new-id">{text["id"]}</label>'
        '<input id="new-id" name="id" required pattern="[a-z0-9][a-z0-9._-]{0,62}" '
        'autocomplete="off">'
        f'<label for="new-name">{text["name"]}</label>'
        '<input id="new-name" name="name" required maxlength="100" autocomplete="off">'
        f'<button type="submit">{text["create"]}</button></form>'
    )


def edit_body(  # noqa: PLR0917 - the page shows each of these
    lang: str,
    touchpoint_id: str,
    values: Mapping[str, Any],
    previews: Sequence[Preview],
    history: Sequence[Mapping[str, Any]],
    csrf_field: str,
    message: str,
) -> str:
    """One touchpoint: the form, the previews of what citizens get, the history."""
    text = TEXT[lang]
    base = f"/admin/touchpoints/{quote(touchpoint_id, safe='')}"
    questions = values.get("questions") or {}
    kpi = "" if values.get("kpi_target") is None else values["kpi_target"]
    fields = [
        (
            f'<label for="name">{text["name"]}</label>'
            f'<input id="name" name="name" maxlength="100" value="{_e(values.get("name") or "")}">'
        ),
        (
            f'<label for="kpi_target">{text["kpi"]}</label>'
            f'<input id="kpi_target" name="kpi_target" inputmode="decimal" value="{_e(kpi)}">'
        ),
    ]
    for code in LANGUAGES:
        label = text["question"].format(language=LANGUAGE_NAMES[code])
        fields.append(
            f'<label for="question-{code}">{_e(label)}</label>'
            f'<textarea id="question-{code}" name="question_{code}" rows="3" lang="{code}" '
            f'aria-describedby="question-hint" maxlength="500">'
            f"{_e(questions.get(code, ''))}</textarea>"
        )
    form = (
        f'<form method="post" action="{base}?lang={lang}" class="stacked">{csrf_field}'
        f'<input type="hidden" name="expected_version" value="{_e(values.get("version", 0))}">'
        f"{''.join(fields)}"
        f'<p id="question-hint" class="muted">{_e(text["question_hint"])}</p>'
        f'<label for="comment">{text["comment"]}</label>'
        '<input id="comment" name="comment" maxlength="500" autocomplete="off">'
        f'<p class="buttons"><button type="submit" formaction="{base}/preview?lang={lang}" '
        f'name="action" value="preview">{text["preview"]}</button> '
        f'<button type="submit" name="action" value="save">{text["save"]}</button></p></form>'
    )
    retire = (
        f'<form method="post" action="{base}/retire?lang={lang}">{csrf_field}'
        f'<button type="submit" class="danger">{text["retire"]}</button></form>'
    )
    return (
        f'<p><a href="/admin?lang={lang}">{text["back"]}</a></p>{message}{form}'
        f"{previews_html(lang, previews)}{history_html(lang, base, history, csrf_field)}{retire}"
    )


def previews_html(lang: str, previews: Sequence[Preview]) -> str:
    """Each language's SMS with its segment count, the email and the answer page."""
    text = TEXT[lang]
    parts = [f'<h2 id="previews">{text["previews"]}</h2>']
    for preview in previews:
        code = preview.language.value
        sms = _sms_html(lang, code, preview.sms, preview.segments, ("sms", "segments"))
        if preview.reminder_sms is not None and preview.reminder_segments is not None:
            reminder = _sms_html(
                lang,
                code,
                preview.reminder_sms,
                preview.reminder_segments,
                ("reminder", "reminder-segments"),
            )
            sms += f"<h4>{text['reminder']}</h4>{reminder}"
        scores = "".join(f"<li>{score}</li>" for score in preview.page_scores)
        parts.append(
            f'<section class="preview" data-language="{code}" aria-labelledby="preview-{code}">'
            f'<h3 id="preview-{code}">{LANGUAGE_NAMES[code]}</h3>'
            f"<h4>{text['sms']}</h4>{sms}"
            f"<h4>{text['email']}</h4>"
            f'<p lang="{code}"><strong>{text["subject"]}:</strong> '
            f"{_e(preview.email_subject)}</p>"
            f'<pre class="message email" lang="{code}">{_e(preview.email_text)}</pre>'
            f"<h4>{text['page']}</h4>"
            f'<div class="message page" lang="{code}"><p class="muted">{_e(preview.page_asker)}</p>'
            f"<p><strong>{_e(preview.page_question)}</strong></p>"
            f'<ol class="scores">{scores}</ol><p class="muted">{_e(preview.page_hint)}</p></div>'
            "</section>"
        )
    return "".join(parts)


def _sms_html(lang: str, code: str, body: str, cost: SmsSegments, classes: tuple[str, str]) -> str:
    """One SMS as sent, and what it costs: the segments, and a warning over one."""
    text = TEXT[lang]
    count = text["segments"].format(
        segments=cost.segments, units=cost.units, per=cost.per_segment, encoding=cost.encoding.value
    )
    over = "" if cost.fits_one_segment else f'<p class="warning">{text["over"]}</p>'
    return (
        f'<pre class="message {classes[0]}" lang="{code}">{_e(body)}</pre>'
        f'<p class="{classes[1]}" data-segments="{cost.segments}">{_e(count)}</p>'
        f"{over}"
    )


def history_html(
    lang: str, base: str, history: Sequence[Mapping[str, Any]], csrf_field: str
) -> str:
    """Every change, newest first: when, who, what, and a way back to it."""
    text = TEXT[lang]
    if not history:
        return f"<h2>{text['history']}</h2><p>{text['no_history']}</p>"
    current = max(int(entry["version"]) for entry in history)
    items = []
    for entry in sorted(history, key=lambda entry: int(entry["version"]), reverse=True):
        who = str(entry["by"])
        if entry.get("by_subject"):
            who += f" ({entry['by_subject']})"
        changed = ", ".join(str(change["field"]) for change in entry.get("changes", []))
        line = text["by"].format(when=entry["at"], who=who, action=entry["action"])
        comment = f"<br>{_e(entry['comment'])}" if entry.get("comment") else ""
        back = ""
        if int(entry["version"]) != current and entry["action"] != "retire":
            back = (
                f'<form method="post" action="{base}/rollback?lang={lang}">{csrf_field}'
                f'<input type="hidden" name="version" value="{_e(entry["version"])}">'
                f'<button type="submit">{_e(text["rollback"].format(version=entry["version"]))}'
                "</button></form>"
            )
        items.append(
            f'<li data-version="{_e(entry["version"])}"><strong>{text["version"]} '
            f"{_e(entry['version'])}</strong> {_e(line)}"
            f"{': ' + _e(changed) if changed else ''}{comment}{back}</li>"
        )
    return f'<h2>{text["history"]}</h2><ol class="history">{"".join(items)}</ol>'
