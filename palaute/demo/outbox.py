"""The demo's outbox: every SMS and email as the citizens received them, links clickable.

A newcomer watching the demo wants to see what a citizen gets. The Twilio
simulator keeps the SMS it sent and the demo's SMTP server hands over each
email; this small web page lists both, newest first: each SMS's text with its
link, who it went to and what it cost in segments, and each email's subject,
with its HTML part served as it was received (``/mail/<n>``), so its score
links can be tapped as a citizen would. Only the demo serves it, on 127.0.0.1.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import EmailMessage

#: Emails kept for the page; the oldest go first beyond this.
MAX_MAILS: Final = 500
#: SMS shown on the page, newest first.
MAX_SMS: Final = 500
_URL = re.compile(r"https?://[^\s<>\"]+")
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:48rem;margin:0 auto;padding:1rem;"
    "color:#1a1a1a;background:#fff;line-height:1.5}"
    "li{margin:0 0 1rem;overflow-wrap:anywhere}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;margin:0.25rem 0;"
    "padding:0.5rem;background:#f2f2f2;border-radius:0.25rem}"
    "a{color:#0b3d6e}.meta{color:#3d3d3d;font-size:0.95rem}"
)


def _linked(text: str) -> str:
    """Escape a message's text and make every link in it clickable."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        parts.append(escape(text[last : match.start()]))
        url = escape(match.group(0))
        parts.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    parts.append(escape(text[last:]))
    return "".join(parts)


class Outbox:
    """What the demo sent: ``sms()`` gives the simulator's messages; emails are kept here."""

    def __init__(self, sms: Callable[[], list[dict[str, Any]]]) -> None:
        self._sms = sms
        self.mails: list[EmailMessage] = []
        self._first = 0  # the number of the oldest mail kept
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Serve the page on a free loopback port; return its address."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/"

    async def stop(self) -> None:
        """Stop serving the page."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def keep(self, message: EmailMessage) -> None:
        """Keep a delivered email for the page."""
        self.mails.append(message)
        if len(self.mails) > MAX_MAILS:
            self.mails.pop(0)
            self._first += 1

    def app(self) -> web.Application:
        """Build the outbox's web app: ``/`` lists everything, ``/mail/<n>`` shows one email."""
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/mail/{number}", self._mail)
        return app

    def _sms_items(self) -> list[str]:
        sent = [m for m in self._sms() if m.get("direction") == "outbound-api"]
        items = []
        for message in reversed(sent[-MAX_SMS:]):
            segments = message.get("num_segments", "?")
            items.append(
                f'<li><p class="meta">To {escape(str(message.get("to", "")))}, '
                f"{escape(str(message.get('date_created', '')))}, {escape(str(segments))} "
                f"segment(s)</p><pre>{_linked(str(message.get('body', '')))}</pre></li>"
            )
        return items

    def _mail_items(self) -> list[str]:
        items = []
        for offset, message in reversed(list(enumerate(self.mails))):
            number = self._first + offset
            items.append(
                f'<li><p><a href="/mail/{number}">{escape(str(message["Subject"] or ""))}</a></p>'
                f'<p class="meta">To {escape(str(message["To"] or ""))}, '
                f"{escape(str(message['Date'] or ''))}</p></li>"
            )
        return items

    async def _index(self, _request: web.Request) -> web.Response:
        sms = self._sms_items()
        mails = self._mail_items()
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Palaute demo: outbox</title><style>{_STYLE}</style></head><body><main>"
            "<h1>Outbox of the demo</h1>"
            "<p>Every survey SMS and email the demo's citizens received, newest first. "
            "Open an email to see it as its citizen did; its links work.</p>"
            f"<h2>Email ({len(self.mails)})</h2><ul>{''.join(mails) or '<li>None yet.</li>'}</ul>"
            f"<h2>SMS ({len(sms)})</h2><ul>{''.join(sms) or '<li>None yet.</li>'}</ul>"
            "</main></body></html>"
        )
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def _mail(self, request: web.Request) -> web.Response:
        raw = request.match_info["number"]
        offset = int(raw) - self._first if raw.isdigit() else -1
        if not 0 <= offset < len(self.mails):
            raise web.HTTPNotFound(text="No such email in the outbox.")
        part = self.mails[offset].get_body(preferencelist=("html", "plain"))
        if part is None:
            raise web.HTTPNotFound(text="The email has no text.")
        content = part.get_content()
        if part.get_content_type() == "text/html":
            return web.Response(text=content, content_type="text/html", charset="utf-8")
        return web.Response(text=content, content_type="text/plain", charset="utf-8")
