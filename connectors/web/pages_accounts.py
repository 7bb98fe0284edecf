"""The few pages of signing in and out, in Finnish, Swedish and English.

A sign-in that does not work says why in words a member of staff can act on
(ask for a role, try again, wait for the provider) and never repeats what
the provider sent.
"""

from __future__ import annotations

import html
from typing import Final

from aiohttp import hdrs, web

LANGUAGES: Final = ("fi", "sv", "en")

_TEXT: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "signin_expired": "Kirjautuminen vanheni tai keskeytyi. Kirjaudu uudelleen.",
        "provider_refused": "Tunnistuspalvelu ei hyväksynyt kirjautumista.",
        "token_invalid": "Tunnistuspalvelun vastausta ei voitu varmistaa. Kirjaudu uudelleen.",
        "no_role": "Tunnuksellesi ei ole annettu roolia tähän palveluun. "
        "Pyydä ylläpitäjää lisäämään sinut katselijaksi, operaattoriksi tai ylläpitäjäksi.",
        "provider_unreachable": "Tunnistuspalveluun ei juuri nyt saada yhteyttä. "
        "Yritä hetken kuluttua uudelleen.",
        "title": "Kirjautuminen",
        "signed_out": "Olet kirjautunut ulos.",
        "signin": "Kirjaudu sisään",
        "forbidden_title": "Ei oikeutta",
        "forbidden": "Tämä vaatii roolin {needed}; sinun roolisi on {yours}. "
        "Pyydä ylläpitäjää muuttamaan rooliasi, jos tarvitset sitä työssäsi.",
        "back": "Takaisin näkymään",
        "signed_in_as": "Kirjautunut: {name} ({role})",
        "signout": "Kirjaudu ulos",
        "viewer": "katselija",
        "operator": "operaattori",
        "admin": "ylläpitäjä",
    },
    "sv": {
        "signin_expired": "Inloggningen gick ut eller avbröts. Logga in på nytt.",
        "provider_refused": "Identifieringstjänsten godkände inte inloggningen.",
        "token_invalid": "Svaret från identifieringstjänsten kunde inte verifieras. "
        "Logga in på nytt.",
        "no_role": "Ditt konto har ingen roll i den här tjänsten. Be en administratör "
        "lägga till dig som läsare, operatör eller administratör.",
        "provider_unreachable": "Identifieringstjänsten kan inte nås just nu. "
        "Försök igen om en stund.",
        "title": "Inloggning",
        "signed_out": "Du har loggat ut.",
        "signin": "Logga in",
        "forbidden_title": "Ingen behörighet",
        "forbidden": "Det här kräver rollen {needed}; din roll är {yours}. "
        "Be en administratör ändra din roll om du behöver den i ditt arbete.",
        "back": "Tillbaka till översikten",
        "signed_in_as": "Inloggad: {name} ({role})",
        "signout": "Logga ut",
        "viewer": "läsare",
        "operator": "operatör",
        "admin": "administratör",
    },
    "en": {
        "signin_expired": "The sign-in expired or was interrupted. Please sign in again.",
        "provider_refused": "The identity provider did not accept the sign-in.",
        "token_invalid": "The identity provider's answer could not be verified. "
        "Please sign in again.",
        "no_role": "Your account has no role in this service. Ask an administrator "
        "to add you as a viewer, operator or admin.",
        "provider_unreachable": "The identity provider cannot be reached right now. "
        "Please try again in a moment.",
        "title": "Signing in",
        "signed_out": "You have signed out.",
        "signin": "Sign in",
        "forbidden_title": "Not allowed",
        "forbidden": "This needs the {needed} role; yours is {yours}. "
        "Ask an administrator to change your role if your work needs it.",
        "back": "Back to the dashboard",
        "signed_in_as": "Signed in: {name} ({role})",
        "signout": "Sign out",
        "viewer": "viewer",
        "operator": "operator",
        "admin": "admin",
    },
}


def account_bar(lang: str, name: str, role: str, csrf_field: str) -> str:
    """Say who is signed in, with the sign-out button (a form, so it carries a CSRF token)."""
    text = _TEXT[lang if lang in _TEXT else "en"]
    who = text["signed_in_as"].format(name=html.escape(name), role=text[role])
    return (
        f'<form class="account" method="post" action="/signout?lang={lang}">'
        f"<span>{who}</span> {csrf_field}"
        f'<button type="submit">{text["signout"]}</button></form>'
    )


def language(request: web.Request) -> str:
    """Choose fi, sv or en: ``?lang=``, else the browser's first known language, else fi."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    for part in request.headers.get(hdrs.ACCEPT_LANGUAGE, "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "fi"


def page(lang: str, title: str, body: str) -> str:
    """Write a plain page in the dashboard's style."""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} \N{EN DASH} Palaute</title>"
        '<link rel="stylesheet" href="/static/dashboard.css"></head>'
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )


def problem(request: web.Request, status: int, reason: str) -> web.Response:
    """Answer a failed sign-in with ``status`` and the reason in the person's language."""
    lang = language(request)
    text = _TEXT[lang]
    body = (
        f"<p>{html.escape(text[reason])}</p>"
        f'<p><a href="/signin?lang={lang}">{html.escape(text["signin"])}</a></p>'
    )
    return web.Response(
        status=status,
        text=page(lang, text["title"], body),
        content_type="text/html",
        charset="utf-8",
    )


def forbidden_page(lang: str, needed: str, yours: str) -> str:
    """Say in the person's language that their role does not allow this, and which would."""
    text = _TEXT[lang if lang in _TEXT else "en"]
    message = text["forbidden"].format(needed=text[needed], yours=text[yours])
    body = (
        f"<p>{html.escape(message)}</p>"
        f'<p><a href="/dashboard?lang={lang}">{html.escape(text["back"])}</a></p>'
    )
    return page(lang, text["forbidden_title"], body)


async def signed_out(request: web.Request) -> web.Response:
    """GET /signin/done: the page after signing out."""
    lang = language(request)
    text = _TEXT[lang]
    body = (
        f'<p role="status">{html.escape(text["signed_out"])}</p>'
        f'<p><a href="/signin?lang={lang}">{html.escape(text["signin"])}</a></p>'
    )
    return web.Response(
        text=page(lang, text["title"], body), content_type="text/html", charset="utf-8"
    )
