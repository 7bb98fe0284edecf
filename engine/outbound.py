"""What one survey message says and links to, built from its SurveyScheduled.

The links are the ones the web service serves: ``/r/<token>`` opens the
one-tap page (the whole scale with a page token, one score preselected with
a score token) and ``/u/<token>`` unsubscribes. The SMS links to
``/r/<survey code>`` instead, 16 characters the web service looks up
(:meth:`engine.tokens.TokenSigner.survey_code`), so that the SMS fits one
segment. Emails also carry a hidden honeypot link, ``/h/<page token>``, that
only scanners follow. Tokens live until the survey expires. Twilio reports
delivery to ``/twilio/status``.

Who asks comes from the touchpoint's ``organisation`` (or ``[defaults]``'s),
else from ``[dispatch] organisation`` alone; the SMS goes from the
organisation's own sender when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.messages import (
    Asker,
    EmailContent,
    SurveyLinks,
    render_email,
    text_language,
)
from engine.sms_text import render_sms
from engine.tokens import SURVEY_CODE_LENGTH, TokenPayload, TokenPurpose, TokenSigner

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from schemas.base import Language
    from schemas.config import TouchpointConfig
    from schemas.surveys import SurveyScheduled

STATUS_CALLBACK_PATH = "/twilio/status"
#: The hidden link's path prefix: ``/h/<page token>``.
HONEYPOT_PREFIX = "h"


@dataclass(frozen=True, slots=True)
class SmsText:
    """The body of a survey SMS, and the organisation's own sender when it has one.

    ``sender_id`` (an alphanumeric sender ID) or ``messaging_service_sid``
    replaces ``[twilio]``'s sender for this message; both None: the account's.
    """

    body: str
    sender_id: str | None = None
    messaging_service_sid: str | None = None


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


def message_language(touchpoint: TouchpointConfig, language: Language) -> Language:
    """Give the language a touchpoint writes to a citizen of ``language`` in.

    Sámi only when the catalogue has the question and every phrase in Sámi
    (:func:`engine.messages.text_language`); otherwise Finnish throughout.
    """
    used = text_language(language, touchpoint.texts)
    return used if used in touchpoint.questions else touchpoint.language_for(used)


def asker_for(
    touchpoint: TouchpointConfig,
    language: Language,
    fallback_organisation: str,
    service: str | None = None,
) -> Asker:
    """Say who asks in ``language``: the touchpoint's organisation, else the fallback name.

    ``service`` is the contact's own service (SurveyScheduled.service); the
    touchpoint's configured service name in the language wins over it, and
    the touchpoint's name stands in when neither is known. The SMS names the
    service from the catalogue first (``sms_name``, ``service``, ``name``),
    whose length ``palaute config check`` counts, and the contact's only when
    the catalogue names none.
    """
    configured = (touchpoint.service or {}).get(language)
    service_name = configured or service or touchpoint.name
    sms_service = touchpoint.sms_service_in(language)
    contacts = sms_service is None and service is not None
    organisation = touchpoint.organisation
    if organisation is None:
        return Asker(
            organisation=fallback_organisation,
            service=service_name,
            sms_service=sms_service or service,
            sms_service_is_contacts=contacts,
        )
    return Asker(
        organisation=organisation.name_in(language),
        service=service_name,
        privacy_url=organisation.privacy_in(language),
        logo_url=None if organisation.logo_url is None else str(organisation.logo_url),
        stop_word=organisation.stop_word_in_sms,
        replies=organisation.sms_sender_id is None,
        sms_organisation=organisation.sms_name_in(language),
        sms_service=sms_service or service,
        sms_service_is_contacts=contacts,
    )


def sms_link(base_url: str, code: str) -> str:
    """Link the answer page by the survey's code, as the SMS does."""
    return _link(base_url, "r", code)


def longest_sms_link(base_url: str) -> str:
    """Make a link as long as any SMS link, to count segments before a survey exists."""
    return sms_link(base_url, "x" * SURVEY_CODE_LENGTH)


def compose_sms(
    touchpoint: TouchpointConfig,
    language: Language,
    link: str,
    fallback_organisation: str,
    *,
    reminder: bool = False,
    service: str | None = None,
) -> str:
    """Write the SMS of a touchpoint in the citizen's language around ``link``."""
    used = message_language(touchpoint, language)
    return render_sms(
        touchpoint.question(used),
        used,
        touchpoint.scale,
        link,
        asker=asker_for(touchpoint, used, fallback_organisation, service),
        reminder=reminder,
        texts=touchpoint.texts,
    )


def survey_sms(
    scheduled: SurveyScheduled,
    touchpoint: TouchpointConfig,
    signer: TokenSigner,
    base_url: str,
    organisation: str,
    *,
    reminder: bool = False,
    fits: Callable[[str], bool] | None = None,
) -> SmsText:
    """Write the SMS: who asks, for which service, the question, how to answer, the code link.

    ``fits`` says whether a text goes out in one segment (see
    :func:`engine.sms_text.render_sms`).
    """
    used = message_language(touchpoint, scheduled.language)
    body = render_sms(
        touchpoint.question(used),
        used,
        scheduled.scale,
        sms_link(base_url, signer.survey_code(scheduled.survey_id)),
        asker=asker_for(touchpoint, used, organisation, scheduled.service),
        reminder=reminder,
        texts=touchpoint.texts,
        fits=fits,
    )
    sender = touchpoint.organisation
    return SmsText(
        body=body,
        sender_id=None if sender is None else sender.sms_sender_id,
        messaging_service_sid=None if sender is None else sender.messaging_service_sid,
    )


def survey_email(  # noqa: PLR0917 - the links need each of these; a wrapper would only hide them
    scheduled: SurveyScheduled,
    touchpoint: TouchpointConfig,
    signer: TokenSigner,
    base_url: str,
    organisation: str,
    now: datetime,
    *,
    reminder: bool = False,
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
    used = message_language(touchpoint, scheduled.language)
    content = render_email(
        touchpoint.question(used),
        used,
        scale,
        links,
        asker_for(touchpoint, used, organisation, scheduled.service),
        reminder=reminder,
        texts=touchpoint.texts,
    )
    return EmailText(content=content, unsubscribe_url=links.unsubscribe_url)
