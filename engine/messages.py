"""The texts citizens receive: one SMS, or one email with a text and an HTML part.

Built-in wording exists for Finnish, Swedish and English. Every phrase can be
replaced per language from the catalogue (a touchpoint's ``texts``, or
``[defaults.texts]`` for all): :data:`TEXT_KEYS` names them. Northern Sámi
(``se``) has no reviewed built-in wording: a Sámi citizen gets Sámi only when
the catalogue gives every phrase and the question in Sámi, and otherwise the
whole message in Finnish, said to be Finnish (:func:`text_language`), never a
Sámi question inside Finnish phrases.

Every message names the organisation and the service, so that it is not
taken for phishing. The SMS is written by :mod:`engine.sms_text`, with the
shorter names the catalogue may give for it; emails here use the typographic
en dash, which the SMS never does (it is outside GSM-7).

Everything here is pure: links are made by the caller (with engine.tokens) and
passed in, so this module never sees a key or a clock.
"""

from __future__ import annotations

import dataclasses
import html
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas.base import Language, Scale
from schemas.config import MESSAGE_TEXT_KEYS

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
    """The fixed phrases of one language; ``{low}``/``{high}`` are the scale's ends.

    The SMS templates take ``{organisation}``, ``{service}``, ``{question}``,
    ``{low}``, ``{high}`` and ``{link}``; ``sms_link_only`` is for senders that
    take no replies (an alphanumeric sender ID).
    """

    sms: str
    sms_large: str  # when the top of the scale has two digits (0-10)
    sms_reminder: str
    sms_link_only: str
    sms_link_only_reminder: str
    sms_stop: str  # the line that says how to stop, where the organisation wants it
    sms_unknown_service: str  # stands for the service when nothing names it
    subject: str
    reminder_subject: str
    greeting: str
    intro: str
    reminder_intro: str
    service: str  # "{service}" named in the email
    privacy: str  # the privacy notice's link text
    choose: str
    confirm: str
    page: str
    voluntary: str
    unsubscribe: str
    ends: Mapping[Scale, tuple[str, str]]


_WORDING: dict[Language, _Wording] = {
    Language.FI: _Wording(
        sms="{organisation}\n{service}: {question}\nVastaa {low}-{high} tai {link}",
        sms_large="{organisation}\n{service}: {question}\nVastaa {low}-{high} tai {link}",
        sms_reminder="{organisation}\n{service}: {question}\nVastaa vielä {low}-{high} tai {link}",
        sms_link_only="{organisation}\n{service}: {question}\nVastaa {low}-{high}: {link}",
        sms_link_only_reminder=(
            "{organisation}\n{service}: {question}\nVastaa vielä {low}-{high}: {link}"
        ),
        sms_stop="Lopetus: LOPETA",
        sms_unknown_service="Palaute",
        subject="{organisation}: kysymys palvelustamme",
        reminder_subject="Muistutus: {organisation} kysyy palvelustamme",
        greeting="Hei,",
        intro=(
            "kiitos yhteydenotostasi. Vastaamalla yhteen kysymykseen autat meitä "
            "parantamaan palveluamme."
        ),
        reminder_intro=(
            "kysyimme äskettäin palvelustamme. Jos et ole vielä vastannut, ehdit vielä: "
            "yksi kysymys riittää."
        ),
        service="Palvelu: {service}",
        privacy="Tietosuojaseloste",
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
        sms="{organisation}\n{service}: {question}\nSvara {low}-{high} eller {link}",
        sms_large="{organisation}\n{service}: {question}\nSvara {low}-{high} eller {link}",
        sms_reminder="{organisation}\n{service}: {question}\nSvara ännu {low}-{high} eller {link}",
        sms_link_only="{organisation}\n{service}: {question}\nSvara {low}-{high}: {link}",
        sms_link_only_reminder=(
            "{organisation}\n{service}: {question}\nSvara ännu {low}-{high}: {link}"
        ),
        sms_stop="Avsluta: SLUTA",
        sms_unknown_service="Respons",
        subject="{organisation}: en fråga om vår service",
        reminder_subject="Påminnelse: {organisation} frågar om vår service",
        greeting="Hej,",
        intro=(
            "tack för att du kontaktade oss. Genom att svara på en fråga hjälper du oss "
            "att förbättra vår service."
        ),
        reminder_intro=(
            "vi frågade nyligen om vår service. Om du inte har svarat ännu hinner du "
            "fortfarande: det räcker med en fråga."
        ),
        service="Service: {service}",
        privacy="Dataskyddsbeskrivning",
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
        sms="{organisation}\n{service}: {question}\nReply {low}-{high} or {link}",
        sms_large="{organisation}\n{service}: {question}\nReply {low}-{high} or {link}",
        sms_reminder=(
            "{organisation}\n{service}: {question}\nReminder: reply {low}-{high} or {link}"
        ),
        sms_link_only="{organisation}\n{service}: {question}\nAnswer {low}-{high}: {link}",
        sms_link_only_reminder=(
            "{organisation}\n{service}: {question}\nReminder: answer {low}-{high}: {link}"
        ),
        sms_stop="To stop: STOP",
        sms_unknown_service="Feedback",
        subject="{organisation}: one question about our service",
        reminder_subject="Reminder: {organisation} asks about our service",
        greeting="Hello,",
        intro=("thank you for contacting us. Answering one question helps us improve our service."),
        reminder_intro=(
            "we recently asked about our service. If you have not answered yet, there is "
            "still time: it is one question."
        ),
        service="Service: {service}",
        privacy="Privacy notice",
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

#: The phrases the catalogue may replace per language (``texts.<language>.<key>``):
#: every field of the wording but ``ends``, whose two words for the touchpoint's
#: scale are ``low_end`` and ``high_end``.
TEXT_KEYS: tuple[str, ...] = MESSAGE_TEXT_KEYS


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks, in the message's language: named in every SMS and email.

    ``replies`` is False for a sender that takes no SMS replies (an
    alphanumeric sender ID): the SMS then points to the link only and shows
    no stop word, which could not be sent back.

    The SMS names both with the names the catalogue gives for it:
    ``sms_organisation`` (else ``organisation``) and ``sms_service`` (else a
    word that stands for it). ``sms_service_is_contacts`` says the service's
    name came with the contact, so no configuration check has counted it:
    the SMS may shorten it to stay in one segment.
    """

    organisation: str
    service: str | None = None
    privacy_url: str | None = None
    logo_url: str | None = None
    stop_word: bool = False
    replies: bool = True
    sms_organisation: str | None = None
    sms_service: str | None = None
    sms_service_is_contacts: bool = False


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


def text_language(
    language: Language, texts: Mapping[Language, Mapping[str, str]] | None = None
) -> Language:
    """Return the language a message is written in when the citizen's is ``language``.

    A language without built-in wording is used only when ``texts`` gives
    every phrase in it; otherwise the message is wholly Finnish.
    """
    if language not in FALLBACKS:
        return language
    given = (texts or {}).get(language, {})
    if all(given.get(key) for key in TEXT_KEYS):
        return language
    return FALLBACKS[language]


def wording_for(
    language: Language,
    scale: Scale,
    texts: Mapping[Language, Mapping[str, str]] | None = None,
) -> _Wording:
    """Give the phrases of ``language`` with the catalogue's replacements (see text_language)."""
    used = text_language(language, texts)
    given = {key: value for key, value in (texts or {}).get(used, {}).items() if key in TEXT_KEYS}
    base = _WORDING.get(used) or _WORDING[Language.FI]
    ends = dict(base.ends)
    low_end = given.pop("low_end", None)
    high_end = given.pop("high_end", None)
    if low_end is not None or high_end is not None:
        default_low, default_high = base.ends[scale]
        ends[scale] = (low_end or default_low, high_end or default_high)
    return dataclasses.replace(base, ends=ends, **given)


def render_email(
    question: str,
    language: Language,
    scale: Scale,
    links: SurveyLinks,
    organisation: str | Asker,
    *,
    reminder: bool = False,
    texts: Mapping[Language, Mapping[str, str]] | None = None,
) -> EmailContent:
    """Render the survey email as plain text and accessible HTML with the same content.

    The HTML declares its language, lists the score links as a plain list with
    text labels (no table layout, nothing fetched from elsewhere but the
    organisation's own logo when one is configured, no tracking pixel) and
    escapes every string that did not come from this module.
    """
    asker = organisation if isinstance(organisation, Asker) else Asker(organisation)
    used = text_language(language, texts)
    wording = wording_for(language, scale, texts)
    question = one_line(question, "question")
    name = one_line(asker.organisation, "organisation")
    service = None if asker.service is None else one_line(asker.service, "service")
    expected = list(range(scale.low, scale.high + 1))
    if sorted(links.score_urls) != expected:
        raise ValueError(f"score links must cover exactly {scale.low}..{scale.high}")
    hidden = () if links.honeypot_url is None else (links.honeypot_url,)
    extra = tuple(url for url in (asker.privacy_url, asker.logo_url) if url is not None)
    for url in (*links.score_urls.values(), links.page_url, links.unsubscribe_url, *hidden):
        check_url(url)
    for url in extra:
        check_url(url)

    low_label, high_label = wording.ends[scale]
    labels = {score: str(score) for score in expected}
    labels[scale.low] = f"{scale.low} {EN_DASH} {low_label}"
    labels[scale.high] = f"{scale.high} {EN_DASH} {high_label}"
    subject = (wording.reminder_subject if reminder else wording.subject).format(organisation=name)
    intro = wording.reminder_intro if reminder else wording.intro
    choose = wording.choose.format(low=scale.low, high=scale.high, dash=EN_DASH)
    scores = [(labels[score], links.score_urls[score]) for score in expected]
    service_line = None if service is None else wording.service.format(service=service)

    text = "\n".join(
        [
            wording.greeting,
            "",
            intro,
            "",
            *([service_line, ""] if service_line else []),
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
            name,
            *([f"{wording.privacy}: {asker.privacy_url}"] if asker.privacy_url else []),
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
            intro=intro,
            question=question,
            choose=choose,
            scores=scores,
            links=links,
            asker=dataclasses.replace(asker, organisation=name, service=service_line),
            subject=subject,
        ),
    )


def _html(
    *,
    language: Language,
    wording: _Wording,
    intro: str,
    question: str,
    choose: str,
    scores: list[tuple[str, str]],
    links: SurveyLinks,
    asker: Asker,
    subject: str,
) -> str:
    """Write the HTML part; ``asker.service`` is the service line, already worded."""

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
    logo = (
        ""
        if asker.logo_url is None
        else f'<p><img src="{esc(asker.logo_url)}" alt="{esc(asker.organisation)}" '
        'style="max-height:48px;max-width:100%;height:auto"></p>\n'
    )
    service = "" if asker.service is None else f"<p>{esc(asker.service)}</p>\n"
    privacy = (
        ""
        if asker.privacy_url is None
        else f'<p><a href="{esc(asker.privacy_url)}" style="{link}">'
        f"{esc(wording.privacy)}</a></p>\n"
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
{logo}<p>{esc(wording.greeting)}</p>
<p>{esc(intro)}</p>
{service}<h1 style="font-size:20px;line-height:1.3;color:{TEXT_COLOUR}">{esc(question)}</h1>
<p>{esc(choose)}</p>
<ul style="list-style:none;padding:0;margin:0 0 16px 0">
{items}
</ul>
<p style="color:{MUTED_COLOUR}">{esc(wording.confirm)}</p>
<p>{esc(wording.page)} <a href="{esc(links.page_url)}" style="{link}">\
{esc(links.page_url)}</a></p>
<p>{esc(wording.voluntary)}</p>
<p>{esc(asker.organisation)}</p>
{privacy}<hr style="border:0;border-top:1px solid {MUTED_COLOUR}">
<p style="font-size:14px;color:{MUTED_COLOUR}">{esc(wording.unsubscribe)} \
<a href="{esc(links.unsubscribe_url)}" style="{link}">{esc(links.unsubscribe_url)}</a></p>
{honeypot}</body>
</html>
"""


def one_line(value: str, what: str) -> str:
    """Strip a configured text and refuse line breaks, which would break headers and layout."""
    value = value.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if any(_is_control(char) for char in value):
        raise ValueError(f"{what} contains a line break or another control character")
    return value


def check_url(url: str) -> None:
    """Links are our own http(s) URLs; anything else (javascript:, data:) is a bug."""
    if not url.startswith(("https://", "http://")) or any(
        char.isspace() or _is_control(char) for char in url
    ):
        raise ValueError("links must be absolute http(s) URLs without spaces")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"
