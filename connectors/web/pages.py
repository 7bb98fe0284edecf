"""The one-tap pages: ``/r/{token}`` (answer), ``/u/{token}`` (unsubscribe).

A GET never casts a vote: email security gateways fetch every link of a
message, and some run scripts too. The page a score link opens shows the
score chosen and records it with a POST that its own script makes by itself
(``mode=auto``), which never counts alone (a scanner's script makes it too):
the page asks the citizen to tap the score, and the script posts that tap
(``mode=tap``, only for a trusted click). With scripts off a button inside
``<noscript>`` posts ``mode=form``. :mod:`connectors.web.answers` judges
from everything seen whether the vote is a person's (:mod:`engine.evidence`). The survey page
(the SMS link, and "answer here" in email) shows the whole scale as large
buttons: one tap answers. The citizen can change the score and add a comment
until the survey expires. When the touchpoint configures follow-up
statements, they appear once the page has a vote: each an optional radio
group on an agreement scale, sent together to ``/r/{token}/statements``,
which takes them only from the client whose vote may count.

``/h/{token}`` is the honeypot: a link hidden in every survey email that
people never see or reach. Whoever fetches it is recorded as a scanner for
that survey (:attr:`engine.evidence.InteractionKind.HONEYPOT`), so its votes
never count; it gets a plain page that says nothing.

Unsubscribing acts on POST only: the RFC 8058 one-click POST that mail
clients send (``List-Unsubscribe=One-Click``), or the button of the page that
a GET of the visible link shows.

Bad links get a page in the survey's language when it is known, else in
Finnish, Swedish and English at once: 400 for a forged or broken token, 410
for an expired one or a closed survey, 404 for an unknown survey, 429 past
the per-client rate limit. None of them records anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from aiohttp import web

from connectors.web.answers import Answers, client_fingerprint, link_id
from connectors.web.limits import ClientRateLimiter
from engine.evidence import InteractionKind, VoteMode
from engine.messages import Asker, wording_for
from engine.outbound import HONEYPOT_PREFIX, asker_for
from engine.pages_text import PageText, page_language, page_text
from engine.tokens import (
    RejectReason,
    SigningKey,
    TokenPayload,
    TokenPurpose,
    TokenRejected,
    TokenSigner,
    is_survey_code,
)
from schemas.base import Language
from schemas.responses import AnswerVia

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from connectors.web.open_surveys import OpenSurvey, SurveyIndex
    from schemas.config import Settings, TouchpointConfig

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
#: Pages load our own script and style only, and the script talks to us only.
PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: Requests a second, and burst, per client address on the public pages.
PAGE_RATE: Final = 2.0
PAGE_BURST: Final = 40
RECHECK_EVERY: Final = timedelta(seconds=5)


def link_signer(settings: Settings) -> TokenSigner:
    """Build the link token signer as the dispatcher does (``[secrets]``, ``[dispatch]``)."""
    secret = settings.secrets.link_signing_key.get_secret_value().encode()
    return TokenSigner([SigningKey(settings.dispatch.link_key_id, secret)])


class Pages:
    """The state behind the pages: signer, survey index, answers, limits."""

    def __init__(
        self,
        *,
        signer: TokenSigner,
        index: SurveyIndex,
        answers: Answers,
        fingerprint_key: bytes,
        statements: Callable[[str, Language], tuple[str, ...]] = lambda _touchpoint, _lang: (),
        touchpoint: Callable[[str], TouchpointConfig] | None = None,
        organisation: str = "Palaute",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.signer = signer
        self.statements = statements
        self.touchpoint = touchpoint
        self.organisation = organisation
        self.index = index
        self.answers = answers
        self.fingerprint_key = fingerprint_key
        self.clock = clock
        self.limiter = ClientRateLimiter(PAGE_RATE, PAGE_BURST)

    def texts_of(self, survey: OpenSurvey) -> Mapping[Language, Mapping[str, str]] | None:
        """Give the catalogue's replacement phrases of the survey's touchpoint, if any."""
        return None if self.touchpoint is None else self.touchpoint(survey.touchpoint_id).texts

    async def recheck_forever(self) -> None:
        """Confirm provisional votes whose quiet period has passed."""
        while True:
            await asyncio.sleep(RECHECK_EVERY.total_seconds())
            try:
                await self.answers.recheck(self.index.surveys, self.clock())
            except Exception:  # one failed round must not end the loop
                log.exception("rechecking provisional votes failed")


PAGES: Final = web.AppKey("pages", Pages)


def setup(app: web.Application, pages: Pages) -> None:
    """Add the page routes, the static files and the provisional-vote recheck."""
    app[PAGES] = pages
    app.router.add_get("/r/{token}", _answer_page)
    app.router.add_post("/r/{token}", _vote)
    app.router.add_post("/r/{token}/comment", _comment)
    app.router.add_post("/r/{token}/statements", _statements)
    app.router.add_get(f"/{HONEYPOT_PREFIX}/{{token}}", _honeypot)
    app.router.add_get("/u/{token}", _unsubscribe_page)
    app.router.add_post("/u/{token}", _unsubscribe)
    app.router.add_get("/static/page.js", _static("page.js", "text/javascript"))
    app.router.add_get("/static/page.css", _static("page.css", "text/css"))

    async def start_recheck(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(pages.recheck_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(start_recheck)


def _static(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = (STATIC_DIR / name).read_bytes()

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    return serve


# --- resolving a request to a survey ---------------------------------------------


class _Refused(Exception):  # noqa: N818 - control flow inside this module, not an error
    """A page that answers the request instead of the normal one."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _client(request: web.Request, pages: Pages) -> str:
    return client_fingerprint(
        pages.fingerprint_key, request.remote or "", request.headers.get("User-Agent", "")
    )


def _resolve(
    request: web.Request, purposes: frozenset[TokenPurpose]
) -> tuple[Pages, TokenPayload, OpenSurvey, datetime]:
    pages: Pages = request.app[PAGES]
    wait = pages.limiter.take(request.remote or "")
    if wait is not None:
        retry = {"Retry-After": str(max(1, round(wait)))}
        raise _Refused(_message_page(None, "too_many", 429, headers=retry))
    now = pages.clock()
    token = request.match_info["token"]
    if is_survey_code(token):
        return _resolve_code(pages, token, purposes, now)
    verified = pages.signer.verify(token, now)
    if isinstance(verified, TokenRejected) or verified.purpose not in purposes:
        expired = isinstance(verified, TokenRejected) and verified.reason is RejectReason.EXPIRED
        raise _Refused(
            _message_page(None, "closed" if expired else "invalid", 410 if expired else 400)
        )
    survey = pages.index.get(verified.survey_id)
    if survey is None and not pages.index.ready.is_set():
        raise _Refused(_message_page(None, "starting", 503, headers={"Retry-After": "5"}))
    if survey is None:
        raise _Refused(_message_page(None, "unknown", 404))
    if not survey.is_open(now):
        raise _Refused(_message_page(survey.language, "closed", 410, texts=pages.texts_of(survey)))
    if verified.score is not None and not survey.scale.contains(verified.score):
        raise _Refused(_message_page(survey.language, "invalid", 400, texts=pages.texts_of(survey)))
    return pages, verified, survey, now


def _resolve_code(
    pages: Pages, code: str, purposes: frozenset[TokenPurpose], now: datetime
) -> tuple[Pages, TokenPayload, OpenSurvey, datetime]:
    """Find the survey of an SMS link's code; it opens the survey page and nothing else.

    A code names no survey until the index has read it, and none after the
    survey is pruned; the survey's own expiry ends the link.
    """
    found = pages.index.by_code(code) if TokenPurpose.PAGE in purposes else None
    if found is None and not pages.index.ready.is_set():
        raise _Refused(_message_page(None, "starting", 503, headers={"Retry-After": "5"}))
    if found is None or not pages.signer.accepts_key(found[1], now):
        raise _Refused(_message_page(None, "unknown", 404))
    survey = found[0]
    if not survey.is_open(now):
        raise _Refused(_message_page(survey.language, "closed", 410, texts=pages.texts_of(survey)))
    payload = TokenPayload(survey.survey_id, TokenPurpose.PAGE, survey.expires_at)
    return pages, payload, survey, now


_ANSWER_LINKS = frozenset({TokenPurpose.SCORE, TokenPurpose.PAGE})


async def _answer_page(request: web.Request) -> web.Response:
    try:
        pages, token, survey, now = _resolve(request, _ANSWER_LINKS)
    except _Refused as refused:
        return refused.response
    link = link_id(token.purpose.value, token.score)
    if request.method == "HEAD":
        kind = InteractionKind.HEAD
    elif token.purpose is TokenPurpose.SCORE:
        kind = InteractionKind.LINK_GET
    else:
        kind = InteractionKind.PAGE_GET
    await pages.answers.visit(survey, kind, link, _client(request, pages), now)
    after_vote = "v" in request.query
    chosen = pages.answers.chosen(survey.survey_id)
    if chosen is None:
        chosen = survey.answered  # answered earlier, by SMS or on a page
    shown = chosen if after_vote or token.score is None else token.score
    asking = _asking(pages, survey)
    body = _answer_html(
        survey,
        request.match_info["token"],
        shown=shown,
        auto_vote=token.score is not None and not after_vote,
        saved=after_vote and chosen is not None,
        answered=None if after_vote or token.score is not None else chosen,
        commented="c" in request.query,
        statements=pages.statements(survey.touchpoint_id, survey.language),
        statements_saved="s" in request.query,
        asking=asking,
        texts=pages.texts_of(survey),
    )
    return _html(body, 200, logo=asking.asker.logo_url)


async def _form(request: web.Request) -> dict[str, str]:
    try:
        posted = await request.post()
    except (ValueError, UnicodeDecodeError):
        return {}
    return {name: value for name, value in posted.items() if isinstance(value, str)}


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


async def _vote(request: web.Request) -> web.Response:
    try:
        pages, token, survey, now = _resolve(request, _ANSWER_LINKS)
    except _Refused as refused:
        return refused.response
    form = await _form(request)
    raw = form.get("score", "")
    score = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 3 else None  # noqa: PLR2004 - 3 digits
    if score is None or not survey.scale.contains(score):
        if _wants_json(request):
            return web.json_response({"error": "bad_score"}, status=400)
        return _message_page(survey.language, "invalid", 400, texts=pages.texts_of(survey))
    mode = VoteMode.parse(form.get("mode"))
    await pages.answers.vote(
        survey,
        score,
        mode=mode,
        link=link_id(token.purpose.value, token.score),
        client=_client(request, pages),
        now=now,
    )
    text = page_text(survey.language, pages.texts_of(survey))
    if _wants_json(request):
        # The page's own vote is no answer until the citizen taps: the page says so.
        saved = mode is not VoteMode.AUTO
        message = (text.saved if saved else text.tap_to_send).format(score=score)
        return web.json_response({"score": score, "saved": saved, "message": message})
    raise web.HTTPSeeOther(f"/r/{request.match_info['token']}?v=1")


async def _comment(request: web.Request) -> web.Response:
    try:
        pages, _token, survey, now = _resolve(request, _ANSWER_LINKS)
    except _Refused as refused:
        return refused.response
    form = await _form(request)
    text = form.get("comment", "")
    saved = await pages.answers.comment(survey, text, _client(request, pages), now)
    wording = page_text(survey.language, pages.texts_of(survey))
    if _wants_json(request):
        status = 200 if saved else 400
        return web.json_response({"saved": saved, "message": wording.comment_saved}, status=status)
    raise web.HTTPSeeOther(f"/r/{request.match_info['token']}?v=1&c=1")


_HONEYPOT_LINKS = frozenset({TokenPurpose.PAGE})
#: The link id of the honeypot: not one of the message's visible links.
HONEYPOT_LINK = "honeypot"


async def _honeypot(request: web.Request) -> web.Response:
    try:
        pages, _token, survey, now = _resolve(request, _HONEYPOT_LINKS)
    except _Refused as refused:
        return refused.response
    await pages.answers.visit(
        survey, InteractionKind.HONEYPOT, HONEYPOT_LINK, _client(request, pages), now
    )
    texts = pages.texts_of(survey)
    return _html(
        _document(survey.language, page_text(survey.language, texts).title, "", texts=texts), 200
    )


def _statement_scores(form: dict[str, str], count: int) -> dict[int, int] | None:
    """Read ``statement-<n>`` fields: the answered ones, or None when one is not 1..5."""
    scores: dict[int, int] = {}
    for index in range(count):
        raw = form.get(f"statement-{index}", "")
        if not raw:
            continue
        if raw not in {"1", "2", "3", "4", "5"}:
            return None
        scores[index] = int(raw)
    return scores


async def _statements(request: web.Request) -> web.Response:
    try:
        pages, _token, survey, now = _resolve(request, _ANSWER_LINKS)
    except _Refused as refused:
        return refused.response
    texts = pages.statements(survey.touchpoint_id, survey.language)
    scores = _statement_scores(await _form(request), len(texts))
    wording = page_text(survey.language, pages.texts_of(survey))
    if not scores:
        if _wants_json(request):
            return web.json_response({"saved": False, "error": "bad_statements"}, status=400)
        return _message_page(survey.language, "invalid", 400, texts=pages.texts_of(survey))
    saved = await pages.answers.statements(survey, scores, _client(request, pages), now)
    if not saved:
        if _wants_json(request):
            return web.json_response(
                {"saved": False, "message": wording.statements_need_vote}, status=409
            )
        raise web.HTTPSeeOther(f"/r/{request.match_info['token']}")
    if _wants_json(request):
        return web.json_response({"saved": True, "message": wording.statements_saved})
    raise web.HTTPSeeOther(f"/r/{request.match_info['token']}?v=1&s=1")


_UNSUBSCRIBE_LINKS = frozenset({TokenPurpose.UNSUBSCRIBE})


async def _unsubscribe_page(request: web.Request) -> web.Response:
    try:
        pages, _token, survey, _now = _resolve(request, _UNSUBSCRIBE_LINKS)
    except _Refused as refused:
        return refused.response
    text = page_text(survey.language, pages.texts_of(survey))
    form = (
        f'<form method="post" action="/u/{escape(request.match_info["token"])}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit" class="wide">{escape(text.unsubscribe_button)}</button></form>'
    )
    return _html(
        _document(
            survey.language,
            text.unsubscribe_title,
            f"<p>{escape(text.unsubscribe_body)}</p>{form}",
            texts=pages.texts_of(survey),
        ),
        200,
    )


async def _unsubscribe(request: web.Request) -> web.Response:
    try:
        pages, _token, survey, now = _resolve(request, _UNSUBSCRIBE_LINKS)
    except _Refused as refused:
        return refused.response
    await pages.answers.opt_out(survey.survey_id, survey.citizen_key, AnswerVia.LINK, now)
    text = page_text(survey.language, pages.texts_of(survey))
    return _html(
        _document(
            survey.language,
            text.unsubscribed_title,
            f"<p>{escape(text.unsubscribed_body)}</p>",
            texts=pages.texts_of(survey),
        ),
        200,
    )


# --- HTML ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Asking:
    """What the answer page asks and who asks, in the page's language."""

    question: str
    hint: str
    asker: Asker
    privacy_label: str


def _asking(pages: Pages, survey: OpenSurvey) -> _Asking:
    """Take the touchpoint's own question and scale words, and its organisation, for a survey.

    The page is written in :func:`engine.pages_text.page_language` (Finnish for
    Sámi), so the question and the words are taken in that language too.
    """
    texts = pages.texts_of(survey)
    text = page_text(survey.language, texts)
    language = page_language(survey.language, texts)
    scale = survey.scale
    touchpoint = None if pages.touchpoint is None else pages.touchpoint(survey.touchpoint_id)
    wording = wording_for(language, scale, None if touchpoint is None else touchpoint.texts)
    low_end, high_end = wording.ends[scale]
    if touchpoint is None:  # pages built without a catalogue: the generic question
        question = text.question
        asker = Asker(organisation=pages.organisation, service=survey.service)
    else:
        question = touchpoint.question(language)
        asker = asker_for(touchpoint, language, pages.organisation, survey.service)
    if asker.service is not None:
        asker = replace(asker, service=wording.service.format(service=asker.service))
    return _Asking(
        question=question,
        hint=f"{scale.low} = {low_end}, {scale.high} = {high_end}",
        asker=asker,
        privacy_label=wording.privacy,
    )


def _csp(logo: str | None) -> str:
    """Give the pages' policy, with the origin of the organisation's logo allowed for images."""
    if logo is None:
        return PAGE_CSP
    parts = urlsplit(logo)
    origin = f"{parts.scheme}://{parts.netloc}"
    return PAGE_CSP.replace("img-src 'self'", f"img-src 'self' {origin}")


def _html(
    body: str, status: int, headers: dict[str, str] | None = None, *, logo: str | None = None
) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = _csp(logo)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _document(
    language: Language,
    title: str,
    content: str,
    *,
    script: bool = False,
    asker: Asker | None = None,
    privacy_label: str = "",
    texts: Mapping[Language, Mapping[str, str]] | None = None,
) -> str:
    """Write a page; with ``asker``, a header naming who asks and a footer with the privacy link."""
    lang = page_language(language, texts).value
    script_tag = '<script src="/static/page.js" defer></script>' if script else ""
    header = footer = ""
    if asker is not None:
        logo = (
            ""
            if asker.logo_url is None
            else f'<img class="logo" src="{escape(asker.logo_url)}" alt="">'
        )
        service = "" if asker.service is None else f'<p class="service">{escape(asker.service)}</p>'
        header = (
            f'<header class="asker">{logo}<p class="organisation">{escape(asker.organisation)}</p>'
            f"{service}</header>"
        )
        if asker.privacy_url is not None:
            footer = (
                f'<footer><p><a href="{escape(asker.privacy_url)}">{escape(privacy_label)}</a>'
                "</p></footer>"
            )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="/static/page.css">{script_tag}</head>'
        f"<body>{header}<main><h1>{escape(title)}</h1>{content}</main>{footer}</body></html>"
    )


def _message_page(
    language: Language | None,
    kind: str,
    status: int,
    headers: dict[str, str] | None = None,
    *,
    texts: Mapping[Language, Mapping[str, str]] | None = None,
) -> web.Response:
    """Render a page that only explains; in all three languages when the survey is unknown."""
    languages = [language] if language is not None else [Language.FI, Language.SV, Language.EN]
    sections = []
    for each in languages:
        text = page_text(each, texts)
        title, body = _message_texts(text, kind)
        lang = page_language(each, texts).value
        sections.append(
            f'<section lang="{lang}"><h2>{escape(title)}</h2><p>{escape(body)}</p></section>'
        )
    first = page_text(languages[0], texts)
    title = _message_texts(first, kind)[0]
    return _html(_document(languages[0], title, "".join(sections), texts=texts), status, headers)


def _message_texts(text: PageText, kind: str) -> tuple[str, str]:
    return {
        "invalid": (text.invalid_title, text.invalid_body),
        "closed": (text.closed_title, text.closed_body),
        "unknown": (text.unknown_title, text.unknown_body),
        "too_many": (text.title, text.too_many),
        "starting": (text.title, text.too_many),
    }[kind]


def _answer_html(
    survey: OpenSurvey,
    token: str,
    *,
    shown: int | None,
    auto_vote: bool,
    saved: bool,
    commented: bool,
    asking: _Asking,
    answered: int | None = None,
    statements: tuple[str, ...] = (),
    statements_saved: bool = False,
    texts: Mapping[Language, Mapping[str, str]] | None = None,
) -> str:
    text = page_text(survey.language, texts)
    scale = survey.scale
    action = f"/r/{escape(token)}"
    buttons = "".join(
        f'<li><button type="submit" name="score" value="{score}" class="score" '
        f'aria-pressed="{"true" if score == shown else "false"}" '
        f'aria-label="{escape(text.score_label.format(score=score, high=scale.high))}">'
        f"{score}</button></li>"
        for score in range(scale.low, scale.high + 1)
    )
    hint_id = "scale-hint"
    status = ""
    if statements_saved:
        status = text.statements_saved
    elif commented:
        status = text.comment_saved
    elif saved and shown is not None:
        status = text.saved.format(score=shown)
    elif answered is not None:
        status = text.chosen.format(score=answered)
    noscript = ""
    if auto_vote and shown is not None:
        noscript = (
            f'<noscript><form method="post" action="{action}">'
            f'<input type="hidden" name="score" value="{shown}">'
            '<input type="hidden" name="mode" value="form">'
            '<button type="submit" class="wide">'
            f"{escape(text.confirm.format(score=shown))}</button>"
            "</form></noscript>"
        )
    auto = f' data-auto-score="{shown}"' if auto_vote and shown is not None else ""
    content = (
        f"{noscript}"
        f'<form method="post" action="{action}" class="scale-form" id="vote-form"{auto}>'
        '<input type="hidden" name="mode" value="form">'
        f'<fieldset aria-describedby="{hint_id}"><legend>{escape(asking.question)}</legend>'
        f'<ul class="scale">{buttons}</ul></fieldset>'
        f'<p id="{hint_id}" class="hint">{escape(asking.hint)}. '
        f"{escape(text.change_hint)}</p></form>"
        f'<p id="status" role="status" aria-live="polite" class="status">{escape(status)}</p>'
        f"{_statements_html(text, action, statements, shown=saved)}"
        f'<form method="post" action="{action}/comment" id="comment-form">'
        f'<label for="comment">{escape(text.comment_label)}</label>'
        f'<p id="comment-hint" class="hint">{escape(text.comment_hint)}</p>'
        '<textarea id="comment" name="comment" rows="4" maxlength="1000" '
        'aria-describedby="comment-hint"></textarea>'
        f'<button type="submit" class="wide">{escape(text.comment_send)}</button></form>'
    )
    return _document(
        survey.language,
        text.title,
        content,
        script=True,
        asker=asking.asker,
        privacy_label=asking.privacy_label,
        texts=texts,
    )


def _statements_html(
    text: PageText, action: str, statements: tuple[str, ...], *, shown: bool
) -> str:
    """Render the statements as radio groups, hidden until the page has a vote to follow."""
    if not statements:
        return ""
    groups = []
    for index, statement in enumerate(statements):
        options = "".join(
            f'<label class="option"><input type="radio" name="statement-{index}" '
            f'value="{value}"> {escape(label)}</label>'
            for value, label in enumerate(text.agreement, start=1)
        )
        groups.append(
            f'<fieldset class="statement"><legend>{escape(statement)}</legend>{options}</fieldset>'
        )
    hidden = "" if shown else " hidden"
    return (
        f'<section id="statements" aria-labelledby="statements-title"{hidden}>'
        f'<h2 id="statements-title">{escape(text.statements_title)}</h2>'
        f'<p id="statements-hint" class="hint">{escape(text.statements_hint)}</p>'
        f'<form method="post" action="{action}/statements" id="statements-form" '
        'aria-describedby="statements-hint">'
        f"{''.join(groups)}"
        f'<button type="submit" class="wide">{escape(text.statements_send)}</button>'
        "</form></section>"
    )
