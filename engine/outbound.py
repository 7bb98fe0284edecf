"""What one survey message says and links to, built from its SurveyScheduled.

The links are the ones the web service serves: ``/r/<token>`` opens the
one-tap page (the whole scale with a page token, one score preselected with
a score token) and ``/u/<token>`` unsubscribes. Emails also carry a hidden
honeypot link, ``/h/<page token>``, that only scanners follow. Tokens live
until the survey expires. Twilio reports delivery to ``/twilio/status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.messages import EmailContent, SurveyLinks, render_email, render_sms
from engine.sms import count_segments
from engine.tokens import TokenPayload, TokenPurpose, TokenSigner

if TYPE_CHECKING:
    from datetime import datetime

    from schemas.config import TouchpointConfig
    from schemas.surveys import SurveyScheduled

STATUS_CALLBACK_PATH = "/twilio/status"
#: The hidden link's path prefix: ``/h/<page token>``.
HONEYPOT_PREFIX = "h"


@dataclass(frozen=True, slots=True)
class SmsText:
    """The body of a survey SMS and the segments it will be billed as."""

    body: str
    segments: int


@dataclass(frozen=True, slots=True)
class EmailText:
    """A rendered survey email and its unsubscribe link (also the List-Unsubscribe header)."""

    content: EmailContent
    unsubscribe_url: str


def _link(base_url: str, prefix: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/{prefix}/{token}"


def _token(
    signer: TokenSigner,
    scheduled: SurveyScheduled,
    purpose: TokenPurpose,
    now: datetime,
    score: int | None = None,
) -> str:
    payload = TokenPayload(
        survey_id=scheduled.survey_id,
        purpose=purpose,
        expires_at=scheduled.expires_at,
        score=score,
    )
    return signer.sign(payload, now)


def status_callback_url(base_url: str) -> str:
    """Where Twilio posts the delivery status of every survey SMS."""
    return base_url.rstrip("/") + STATUS_CALLBACK_PATH


def survey_sms(
    scheduled: SurveyScheduled,
    touchpoint: TouchpointConfig,
    signer: TokenSigner,
    base_url: str,
    now: datetime,
) -> SmsText:
    """Write the SMS: the touchpoint's question, "reply with a number", the one-tap page link."""
    page = _link(base_url, "r", _token(signer, scheduled, TokenPurpose.PAGE, now))
    body = render_sms(
        touchpoint.question(scheduled.language), scheduled.language, scheduled.scale, page
    )
    return SmsText(body=body, segments=count_segments(body).segments)


def survey_email(  # noqa: PLR0917 - the links need each of these; a wrapper would only hide them
    scheduled: SurveyScheduled,
    touchpoint: TouchpointConfig,
    signer: TokenSigner,
    base_url: str,
    organisation: str,
    now: datetime,
) -> EmailText:
    """Write the email: a signed link per score, the page, unsubscribe and the hidden honeypot."""
    scale = scheduled.scale
    scores = {
        score: _link(base_url, "r", _token(signer, scheduled, TokenPurpose.SCORE, now, score))
        for score in range(scale.low, scale.high + 1)
    }
    page_token = _token(signer, scheduled, TokenPurpose.PAGE, now)
    links = SurveyLinks(
        score_urls=scores,
        page_url=_link(base_url, "r", page_token),
        honeypot_url=_link(base_url, HONEYPOT_PREFIX, page_token),
        unsubscribe_url=_link(
            base_url, "u", _token(signer, scheduled, TokenPurpose.UNSUBSCRIBE, now)
        ),
    )
    content = render_email(
        touchpoint.question(scheduled.language), scheduled.language, scale, links, organisation
    )
    return EmailText(content=content, unsubscribe_url=links.unsubscribe_url)
