"""The survey SMS: who asks, for which service, the question, how to answer, the link.

Every SMS names the organisation and the service, so that a text with a link
from a number the citizen does not know is not taken for phishing, and must
fit one GSM-7 segment (160 septets) with its link: the link carries a
16-character survey code (:meth:`engine.tokens.TokenSigner.survey_code`), the
catalogue may give shorter names for the SMS (``sms_name``), and ``palaute
config check`` counts every touchpoint's messages. The SMS writes the scale
as ``1-5`` with a hyphen-minus: an en dash is outside GSM-7 and would turn the
whole message into UCS-2, which holds 70 characters per segment instead of 160.

A service named by the contact itself (a touchpoint the catalogue does not
name) was never counted by the check: when the caller says the SMS would not
fit, that name is shortened word by word. Counting is the caller's (a
function passed in), as this module knows no alphabet tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.messages import Asker, check_url, one_line, wording_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from schemas.base import Language, Scale

#: Placeholders each SMS template may use.
SMS_PLACEHOLDERS = frozenset({"organisation", "service", "question", "low", "high", "link"})
#: Ends a service name shortened to fit (GSM-7, unlike the one-character ellipsis).
SHORTENED = "..."


def check_sms_template(template: str) -> None:
    """Refuse an SMS template with a placeholder this module does not fill."""
    try:
        template.format(**dict.fromkeys(SMS_PLACEHOLDERS, ""))
    except (KeyError, IndexError, ValueError):
        raise ValueError(
            "an SMS text may use only the placeholders "
            + ", ".join("{" + name + "}" for name in sorted(SMS_PLACEHOLDERS))
        ) from None


def render_sms(
    question: str,
    language: Language,
    scale: Scale,
    page_url: str,
    *,
    asker: Asker,
    reminder: bool = False,
    texts: Mapping[Language, Mapping[str, str]] | None = None,
    fits: Callable[[str], bool] | None = None,
) -> str:
    """Render the survey SMS in ``language`` (the question must already be in it).

    ``fits`` tells whether a text goes out in one segment; with it, a
    service name that came with the contact is shortened until the SMS fits.
    """
    wording = wording_for(language, scale, texts)
    question = one_line(question, "question")
    organisation = one_line(asker.sms_organisation or asker.organisation, "organisation")
    service = one_line(asker.sms_service or wording.sms_unknown_service, "service")
    check_url(page_url)
    if not asker.replies:
        template = wording.sms_link_only_reminder if reminder else wording.sms_link_only
    elif reminder:
        template = wording.sms_reminder
    else:
        template = wording.sms_large if scale.high > 9 else wording.sms  # noqa: PLR2004 -- two digits
    check_sms_template(template)
    stop = f"\n{wording.sms_stop}" if asker.stop_word and asker.replies else ""

    def body(service_name: str) -> str:
        filled = template.format(
            organisation=organisation,
            service=service_name,
            question=question,
            low=scale.low,
            high=scale.high,
            link=page_url,
        )
        return filled + stop

    full = body(service)
    if fits is None or not asker.sms_service_is_contacts or fits(full):
        return full
    shortest = full
    for name in shortened_names(service):
        shortest = body(name)
        if fits(shortest):
            break
    return shortest


def shortened_names(name: str) -> Iterator[str]:
    """Give ``name`` shorter and shorter by whole words, each marked as shortened.

    One word too long to keep whole is cut to half its length, and so on,
    so there is always something left that names the service.
    """
    words = name.split()
    for count in range(len(words) - 1, 0, -1):
        yield " ".join(words[:count]).rstrip(",;:-") + SHORTENED
    first = words[0] if words else name
    while len(first) > 1:
        first = first[: len(first) // 2]
        yield first + SHORTENED
