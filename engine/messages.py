"""The texts citizens receive: one SMS, or one email with a text and an HTML part.

Built-in wording exists for Finnish, Swedish and English. Northern Sámi (``se``)
falls back to the Finnish wording: the question itself comes from the
touchpoint's configuration and may be in Sámi, but the fixed phrases have no
reviewed Sámi translation yet. :func:`text_language` tells which language a
message is really in, so the email's Content-Language and ``lang`` say the truth.

The SMS writes the scale as ``1-5`` with a hyphen-minus: an en dash is outside
GSM-7 and would turn the whole message into UCS-2, which holds 70 characters
per segment instead of 160. Emails use the typographic en dash.

Everything here is pure: links are made by the caller (with engine.tokens) and
passed in, so this module never sees a key or a clock.
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas.base import Language, Scale

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Typographic dash between the ends of a scale in email (never in SMS: not GSM-7).
EN_DASH = "\N{EN DASH}"

# Colours of the HTML part. Contrast against the white page, WCAG 2.x: body text
# 17.4:1, muted text 8.9:1, links and white on the buttons 8.4:1 (AA needs 4.5:1).
PAGE_BACKGROUND = "#ffffff"
TEXT_COLOUR = "#1a1a1a"
MUTED_COLOUR = "#4a4a4a"
ACCENT_COLOUR = "#0b4f8a"
BUTTON_TEXT_COLOUR = "#ffffff"


@dataclass(frozen=True, slots=True)
class _Wording:
    """The fixed phrases of one language; ``{low}``/``{high}`` are the scale's ends."""

    sms_reply: str
    sms_reply_large: str  # when the top of the scale has two digits (0-10)
    subject: str
    greeting: str
    intro: str
    choose: str
    confirm: str
    page: str
    voluntary: str
    unsubscribe: str
    ends: Mapping[Scale, tuple[str, str]]


_WORDING: dict[Language, _Wording] = {
    Language.FI: _Wording(
        sms_reply="Vastaa numerolla {low}-{high}",
        sms_reply_large="Vastaa numerolla {low}-{high}",
        subject="{organisation}: kysymys palvelustamme",
        greeting="Hei,",
        intro=(
            "kiitos yhteydenotostasi. Vastaamalla yhteen kysymykseen autat meitä "
            "parantamaan palveluamme."
        ),
        choose="Valitse arvio {low}{dash}{high}:",
        confirm="Linkki avaa palautesivun, jolla vahvistat vastauksesi.",
        page="Voit vastata myös palautesivulla:",
        voluntary="Vastaaminen on vapaaehtoista.",
        unsubscribe="Jos et halua enää palautekyselyjä, voit perua ne tästä:",
        ends={
            Scale.CSAT_5: ("erittäin tyytymätön", "erittäin tyytyväinen"),
            Scale.NPS_11: ("en lainkaan todennäköisesti", "erittäin todennäköisesti"),
            Scale.CES_7: ("erittäin vaikeaa", "erittäin helppoa"),
            Scale.SMILEY_4: ("erittäin tyytymätön", "erittäin tyytyväinen"),
        },
    ),
    Language.SV: _Wording(
        sms_reply="Svara med en siffra {low}-{high}",
        sms_reply_large="Svara med ett tal {low}-{high}",
        subject="{organisation}: en fråga om vår service",
        greeting="Hej,",
        intro=(
            "tack för att du kontaktade oss. Genom att svara på en fråga hjälper du oss "
            "att förbättra vår service."
        ),
        choose="Välj ett betyg {low}{dash}{high}:",
        confirm="Länken öppnar en svarssida där du bekräftar ditt svar.",
        page="Du kan också svara på svarssidan:",
        voluntary="Det är frivilligt att svara.",
        unsubscribe="Om du inte längre vill få enkäter kan du avbeställa dem här:",
        ends={
            Scale.CSAT_5: ("mycket missnöjd", "mycket nöjd"),
            Scale.NPS_11: ("inte alls troligt", "mycket troligt"),
            Scale.CES_7: ("mycket svårt", "mycket lätt"),
            Scale.SMILEY_4: ("mycket missnöjd", "mycket nöjd"),
        },
    ),
    Language.EN: _Wording(
        sms_reply="Reply with a number {low}-{high}",
        sms_reply_large="Reply with a number {low}-{high}",
        subject="{organisation}: one question about our service",
        greeting="Hello,",
        intro=("thank you for contacting us. Answering one question helps us improve our service."),
        choose="Choose a score from {low} to {high}:",
        confirm="The link opens a feedback page where you confirm your answer.",
        page="You can also answer on the feedback page:",
        voluntary="Answering is voluntary.",
        unsubscribe="If you no longer want feedback requests, you can unsubscribe here:",
        ends={
            Scale.CSAT_5: ("very dissatisfied", "very satisfied"),
            Scale.NPS_11: ("not at all likely", "extremely likely"),
            Scale.CES_7: ("very difficult", "very easy"),
            Scale.SMILEY_4: ("very unhappy", "very happy"),
        },
    ),
}

#: Languages without built-in wording, and the language used instead.
FALLBACKS: dict[Language, Language] = {Language.SE: Language.FI}


@dataclass(frozen=True, slots=True)
class SurveyLinks:
    """The signed links of one email: one per score, the survey page, unsubscribe.

    ``honeypot_url`` is a link hidden from people (and from screen readers and
    keyboards) that only a machine fetching every link of the message follows:
    whoever fetches it is an email security scanner, and its votes never count.
    """

    score_urls: Mapping[int, str]
    page_url: str
    unsubscribe_url: str
    honeypot_url: str | None = None


@dataclass(frozen=True, slots=True)
class EmailContent:
    """A rendered email; ``language`` is the language of the fixed texts actually used."""

    language: Language
    subject: str
    text: str
    html: str


def text_language(language: Language) -> Language:
    """Return the language a message is written in when the citizen's is ``language``."""
    return FALLBACKS.get(language, language)


def render_sms(question: str, language: Language, scale: Scale, page_url: str) -> str:
    """Render the survey SMS: the question, how to reply with a number, and the link.

    The caller counts segments (engine.sms): with a 14-character survey id the
    link is 76 characters, which leaves about 50 for a Finnish question within
    one GSM-7 segment.
    """
    wording = _WORDING[text_language(language)]
    question = _one_line(question, "question")
    _check_url(page_url)
    reply = wording.sms_reply_large if scale.high > 9 else wording.sms_reply  # noqa: PLR2004 -- two digits
    return "\n".join(
        (question, reply.format(low=scale.low, high=scale.high), page_url),
    )


def render_email(
    question: str,
    language: Language,
    scale: Scale,
    links: SurveyLinks,
    organisation: str,
) -> EmailContent:
    """Render the survey email as plain text and accessible HTML with the same content.

    The HTML declares its language, lists the score links as a plain list with
    text labels (no table layout, no images, nothing fetched from elsewhere, no
    tracking pixel) and escapes every string that did not come from this module.
    """
    used = text_language(language)
    wording = _WORDING[used]
    question = _one_line(question, "question")
    organisation = _one_line(organisation, "organisation")
    expected = list(range(scale.low, scale.high + 1))
    if sorted(links.score_urls) != expected:
        raise ValueError(f"score links must cover exactly {scale.low}..{scale.high}")
    hidden = () if links.honeypot_url is None else (links.honeypot_url,)
    for url in (*links.score_urls.values(), links.page_url, links.unsubscribe_url, *hidden):
        _check_url(url)

    low_label, high_label = wording.ends[scale]
    labels = {score: str(score) for score in expected}
    labels[scale.low] = f"{scale.low} {EN_DASH} {low_label}"
    labels[scale.high] = f"{scale.high} {EN_DASH} {high_label}"
    subject = wording.subject.format(organisation=organisation)
    choose = wording.choose.format(low=scale.low, high=scale.high, dash=EN_DASH)
    scores = [(labels[score], links.score_urls[score]) for score in expected]

    text = "\n".join(
        [
            wording.greeting,
            "",
            wording.intro,
            "",
            question,
            "",
            choose,
            *(f"{label}: {url}" for label, url in scores),
            "",
            wording.confirm,
            "",
            wording.page,
            links.page_url,
            "",
            wording.voluntary,
            "",
            organisation,
            "",
            wording.unsubscribe,
            links.unsubscribe_url,
            "",
        ]
    )
    return EmailContent(
        language=used,
        subject=subject,
        text=text,
        html=_html(
            language=used,
            wording=wording,
            question=question,
            choose=choose,
            scores=scores,
            links=links,
            organisation=organisation,
            subject=subject,
        ),
    )


def _html(
    *,
    language: Language,
    wording: _Wording,
    question: str,
    choose: str,
    scores: list[tuple[str, str]],
    links: SurveyLinks,
    organisation: str,
    subject: str,
) -> str:
    def esc(value: str) -> str:
        return html.escape(value, quote=True)

    button = (
        f"display:inline-block;min-width:44px;padding:10px 16px;color:{BUTTON_TEXT_COLOUR};"
        f"background-color:{ACCENT_COLOUR};text-decoration:none;border-radius:4px;"
        "font-weight:bold"
    )
    link = f"color:{ACCENT_COLOUR};text-decoration:underline"
    items = "\n".join(
        f'<li style="margin:0 0 8px 0"><a href="{esc(url)}" style="{button}">{esc(label)}</a></li>'
        for label, url in scores
    )
    # No text, out of the accessibility tree and the tab order, not displayed
    # (mso-hide for Outlook): people never meet it; link-fetching scanners do.
    honeypot = (
        ""
        if links.honeypot_url is None
        else f'<a href="{esc(links.honeypot_url)}" aria-hidden="true" tabindex="-1" '
        'style="display:none;mso-hide:all;font-size:0;line-height:0;max-height:0;'
        'overflow:hidden"></a>\n'
    )
    return f"""<!DOCTYPE html>
<html lang="{language.value}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(subject)}</title>
</head>
<body style="margin:0;padding:16px;background-color:{PAGE_BACKGROUND};color:{TEXT_COLOUR};\
font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5">
<p>{esc(wording.greeting)}</p>
<p>{esc(wording.intro)}</p>
<h1 style="font-size:20px;line-height:1.3;color:{TEXT_COLOUR}">{esc(question)}</h1>
<p>{esc(choose)}</p>
<ul style="list-style:none;padding:0;margin:0 0 16px 0">
{items}
</ul>
<p style="color:{MUTED_COLOUR}">{esc(wording.confirm)}</p>
<p>{esc(wording.page)} <a href="{esc(links.page_url)}" style="{link}">\
{esc(links.page_url)}</a></p>
<p>{esc(wording.voluntary)}</p>
<p>{esc(organisation)}</p>
<hr style="border:0;border-top:1px solid {MUTED_COLOUR}">
<p style="font-size:14px;color:{MUTED_COLOUR}">{esc(wording.unsubscribe)} \
<a href="{esc(links.unsubscribe_url)}" style="{link}">{esc(links.unsubscribe_url)}</a></p>
{honeypot}</body>
</html>
"""


def _one_line(value: str, what: str) -> str:
    """Strip a configured text and refuse line breaks, which would break headers and layout."""
    value = value.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if any(_is_control(char) for char in value):
        raise ValueError(f"{what} contains a line break or another control character")
    return value


def _check_url(url: str) -> None:
    """Links are our own http(s) URLs; anything else (javascript:, data:) is a bug."""
    if not url.startswith(("https://", "http://")) or any(
        char.isspace() or _is_control(char) for char in url
    ):
        raise ValueError("links must be absolute http(s) URLs without spaces")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"
