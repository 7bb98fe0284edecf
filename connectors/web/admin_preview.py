"""What a touchpoint's citizens would receive, before an admin saves a change.

For each of Finnish, Swedish and English: the survey SMS exactly as the
dispatcher writes it (with a link as long as any real one) and what it costs
in GSM-7 segments (the same count as ``palaute config check``'s budget), and
so the reminder SMS when the touchpoint sends one (it has its own, longer
text, so a question that fits the survey SMS may not fit the reminder), the
survey email's subject and text, and what the answer page asks. The texts
come from the same functions that write the real messages, so a preview
cannot say something the citizen will not get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from connectors.sms_segments import SmsSegments, count_segments
from engine.messages import SurveyLinks, render_email, wording_for
from engine.outbound import asker_for, compose_sms, longest_sms_link, message_language
from engine.pages_text import page_language
from schemas.base import Language

if TYPE_CHECKING:
    from schemas.config import Settings, TouchpointConfig

#: The languages an admin previews: the ones every touchpoint must have.
PREVIEW_LANGUAGES: Final = (Language.FI, Language.SV, Language.EN)
_EXAMPLE_TOKEN: Final = "x" * 43


@dataclass(frozen=True, slots=True)
class Preview:
    """One language's messages and page, as a citizen would see them."""

    language: Language
    sms: str
    segments: SmsSegments
    email_subject: str
    email_text: str
    page_asker: str
    page_question: str
    page_hint: str
    page_scores: tuple[int, ...]
    reminder_sms: str | None = None
    reminder_segments: SmsSegments | None = None


def previews(touchpoint: TouchpointConfig, settings: Settings) -> list[Preview]:
    """Write the SMS, the email and the answer page of ``touchpoint`` in fi, sv and en."""
    base = str(settings.web.public_base_url).rstrip("/")
    organisation = settings.dispatch.organisation
    found = []
    for language in PREVIEW_LANGUAGES:
        sms = compose_sms(touchpoint, language, longest_sms_link(base), organisation)
        used = message_language(touchpoint, language)
        scale = touchpoint.scale
        page_url = f"{base}/r/{_EXAMPLE_TOKEN}"
        links = SurveyLinks(
            score_urls=dict.fromkeys(range(scale.low, scale.high + 1), page_url),
            page_url=page_url,
            honeypot_url=f"{base}/h/{_EXAMPLE_TOKEN}",
            unsubscribe_url=f"{base}/u/{_EXAMPLE_TOKEN}",
        )
        asker = asker_for(touchpoint, used, organisation)
        email = render_email(
            touchpoint.question(used), used, scale, links, asker, texts=touchpoint.texts
        )
        page_used = page_language(language, touchpoint.texts)
        wording = wording_for(page_used, scale, touchpoint.texts)
        low_end, high_end = wording.ends[scale]
        page_asker = asker_for(touchpoint, page_used, organisation)
        reminder = None
        if touchpoint.reminder_delay is not None:
            reminder = compose_sms(
                touchpoint, language, longest_sms_link(base), organisation, reminder=True
            )
        found.append(
            Preview(
                language=language,
                sms=sms,
                segments=count_segments(sms),
                email_subject=email.subject,
                email_text=email.text,
                page_asker=" \N{EN DASH} ".join(
                    name for name in (page_asker.organisation, page_asker.service) if name
                ),
                page_question=touchpoint.question(page_used),
                page_hint=f"{scale.low} = {low_end}, {scale.high} = {high_end}",
                page_scores=tuple(range(scale.low, scale.high + 1)),
                reminder_sms=reminder,
                reminder_segments=None if reminder is None else count_segments(reminder),
            )
        )
    return found
