"""Twilio's webhooks: inbound SMS (``/twilio/inbound``), status callbacks (``/twilio/status``).

Both are signed: X-Twilio-Signature is HMAC-SHA1 with the account's auth
token over the exact URL Twilio called plus the sorted form parameters
(twilio's RequestValidator). Behind a proxy the URL this process sees is not
that one, so the URL is rebuilt from ``[web] public_base_url`` and the path
and query of the request; a missing or wrong signature is 403 and nothing
else is looked at.

An inbound reply is read with :func:`engine.replies.parse_reply` on the
scale of the number's open survey and answered in TwiML in the survey's
language: a score is written and thanked for, a stop word writes an opt-out,
a start word (ALOITA, STARTA, START) writes an opt-in, which lets the intake
survey the citizen again, a help word gets the help text, anything else gets
"reply with a number" and is not counted.

Repeats are recognised by what the signature covers. I-Twilio-Idempotency-Token
is a header, outside the signature, so anyone holding one signed request
could replay it with a fresh token (or none) and have it counted again. A
message is therefore identified by its ``MessageSid`` (signed): a repeat is
answered the same way without writing again, whatever token it carries. The
answer written takes its id from the MessageSid
(:func:`engine.replies.sms_answer_id`), so a replay that reaches another web
process, or this one after a restart, is still the same answer to the
answers join, which keeps the ids it has counted per survey and refuses them
again: an older message replayed after a newer answer never replaces it.
Order is the order in which messages first reached us, which the responses
topic keeps per survey; the webhook itself carries no time.

A status callback with a final state (delivered, undelivered, failed)
becomes a DeliveryReported on the surveys topic with Twilio's error code,
once per (``MessageSid``, ``MessageStatus``): Twilio retries callbacks too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from aiohttp import web
from twilio.request_validator import RequestValidator

from connectors.web.ingress import RecentIds
from connectors.web.limits import ClientRateLimiter
from engine.replies import (
    HelpRequest,
    OptInRequest,
    OptOutRequest,
    ReplyKind,
    Score,
    parse_reply,
    reply_text,
    sms_answer_id,
    twiml_empty,
    twiml_message,
)
from schemas.base import Language, Scale
from schemas.responses import AnswerVia
from schemas.surveys import DeliveryReported, DeliveryStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connectors.web.answers import Answers
    from connectors.web.open_surveys import SurveyIndex

log = logging.getLogger(__name__)

INBOUND_PATH: Final = "/twilio/inbound"
STATUS_PATH: Final = "/twilio/status"
#: How long a status callback waits for the survey index to learn the message id.
INDEX_WAIT_SECONDS: Final = 3.0
_TWIML = "application/xml"
_FINAL = {status.value: status for status in DeliveryStatus}


class TwilioHooks:
    """The state behind the two webhooks."""

    def __init__(
        self,
        *,
        auth_token: str,
        public_base_url: str,
        index: SurveyIndex,
        answers: Answers,
        texts: Callable[[str | None], Mapping[Language, Mapping[str, str]] | None] = (
            lambda _touchpoint: None
        ),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.validator = RequestValidator(auth_token)
        #: The catalogue's wording of the answers, by touchpoint (None: no open survey).
        self.texts = texts
        self.base = public_base_url.rstrip("/")
        self.index = index
        self.answers = answers
        self.clock = clock
        self.recent = RecentIds(100_000)
        self.limiter = ClientRateLimiter(50.0, 500)

    def public_url(self, request: web.Request) -> str:
        """Rebuild the URL Twilio signed: the configured public base, then our path and query."""
        return self.base + request.rel_url.path_qs

    async def verified_form(self, request: web.Request) -> dict[str, str]:
        """Return the form of a genuinely signed request; refuse anything else with 403."""
        if self.limiter.take(request.remote or "") is not None:
            raise web.HTTPTooManyRequests(reason="Too many requests")
        signature = request.headers.get("X-Twilio-Signature", "")
        try:
            posted = await request.post()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPForbidden(reason="Forbidden") from None
        form = {name: value for name, value in posted.items() if isinstance(value, str)}
        if not signature or not self.validator.validate(self.public_url(request), form, signature):
            raise web.HTTPForbidden(reason="Invalid Twilio signature")
        return form


TWILIO: Final = web.AppKey("twilio_hooks", TwilioHooks)


def setup(app: web.Application, hooks: TwilioHooks) -> None:
    """Add the inbound and status webhooks."""
    app[TWILIO] = hooks
    app.router.add_post(INBOUND_PATH, _inbound)
    app.router.add_post(STATUS_PATH, _status)


def _twiml(body: str) -> web.Response:
    return web.Response(text=body, content_type=_TWIML, charset="utf-8")


async def _inbound(request: web.Request) -> web.Response:
    hooks: TwilioHooks = request.app[TWILIO]
    form = await hooks.verified_form(request)
    now = hooks.clock()
    sender = form.get("From", "")
    reply = form.get("Body", "")
    survey = hooks.index.open_for_phone(sender, now)
    language = survey.language if survey is not None else Language.FI
    scale = survey.scale if survey is not None else Scale.CSAT_5
    parsed = parse_reply(reply, scale)
    texts = hooks.texts(None if survey is None else survey.touchpoint_id)
    message_sid = form.get("MessageSid", "")
    if not message_sid:  # Twilio always signs one; without it a repeat cannot be told
        raise web.HTTPBadRequest(reason="MessageSid is missing")
    answer_id = sms_answer_id(message_sid)
    # Remembered once written: a retry after a failed write must still write.
    repeat = (message_sid, "inbound") in hooks.recent
    if isinstance(parsed, OptOutRequest | OptInRequest):
        return await _stop_or_resume(hooks, parsed, sender, message_sid, now, language, scale)
    if isinstance(parsed, HelpRequest):
        if parsed.twilio_default:
            return _twiml(twiml_empty())
        return _twiml(twiml_message(reply_text(ReplyKind.HELP, language, scale, texts)))
    if isinstance(parsed, Score):
        if survey is None:
            return _twiml(
                twiml_message(reply_text(ReplyKind.NO_OPEN_SURVEY, language, scale, texts))
            )
        if not repeat:
            await hooks.answers.sms_score(survey, parsed.value, now, answer_id=answer_id)
            hooks.recent.add((message_sid, "inbound"))
        return _twiml(twiml_message(reply_text(ReplyKind.THANKS, language, scale, texts)))
    return _twiml(twiml_message(reply_text(ReplyKind.ASK_AGAIN, language, scale, texts)))


async def _stop_or_resume(  # noqa: PLR0917 - the parts of one reply
    hooks: TwilioHooks,
    parsed: OptOutRequest | OptInRequest,
    sender: str,
    message_sid: str,
    now: datetime,
    language: Language,
    scale: Scale,
) -> web.Response:
    """Write the citizen's stop or resume as an event, once per message, and answer it.

    Both are recorded for the number's citizen even without an open survey.
    Twilio answers its own keywords (STOP, START) and keeps its own block
    list, so its default ones get an empty answer from us.
    """
    known = hooks.index.citizen_of_phone(sender)
    if known is not None and (message_sid, "inbound") not in hooks.recent:
        record = (
            hooks.answers.opt_out if isinstance(parsed, OptOutRequest) else hooks.answers.opt_in
        )
        await record(
            known[1], known[0], AnswerVia.SMS_REPLY, now, answer_id=sms_answer_id(message_sid)
        )
        hooks.recent.add((message_sid, "inbound"))
    if parsed.twilio_default:
        return _twiml(twiml_empty())
    kind = ReplyKind.OPTED_OUT if isinstance(parsed, OptOutRequest) else ReplyKind.OPTED_IN
    survey = hooks.index.open_for_phone(sender, now)
    texts = hooks.texts(None if survey is None else survey.touchpoint_id)
    return _twiml(twiml_message(reply_text(kind, language, scale, texts)))


async def _status(request: web.Request) -> web.Response:
    hooks: TwilioHooks = request.app[TWILIO]
    form = await hooks.verified_form(request)
    status = _FINAL.get(form.get("MessageStatus", ""))
    if status is None:  # queued, sent and the like: not a final state
        return web.Response(status=204)
    message_id = form.get("MessageSid", "")
    callback = (message_id, f"status:{status.value}")
    if not message_id or callback in hooks.recent:  # a retried callback: reported already
        return web.Response(status=204)
    survey = hooks.index.by_message(message_id)
    waited = 0.0
    while survey is None and waited < INDEX_WAIT_SECONDS:  # the index may lag the sender
        await asyncio.sleep(0.1)
        waited += 0.1
        survey = hooks.index.by_message(message_id)
    if survey is None:
        log.warning("status callback for a message of no known survey; not recorded")
        return web.Response(status=204)
    code = form.get("ErrorCode") or None
    event = DeliveryReported(
        survey_id=survey.survey_id,
        citizen_key=survey.citizen_key,
        contact_id=survey.contact_id,
        touchpoint_id=survey.touchpoint_id,
        occurred_at=hooks.clock(),
        channel=survey.channel,
        status=status,
        provider_error_code=code[:32] if code else None,
    )
    await hooks.answers.delivery(event)
    hooks.recent.add(callback)  # once written: a retry after a failed write must still write
    return web.Response(status=204)
