"""Survey texts: every language, SMS length, escaping and the accessible HTML part."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from connectors.sms_segments import SmsEncoding, count_segments
from engine.messages import (
    EN_DASH,
    Asker,
    EmailContent,
    SurveyLinks,
    render_email,
    text_language,
)
from engine.sms_text import SHORTENED, render_sms, shortened_names
from engine.tokens import SigningKey, TokenPayload, TokenPurpose, TokenSigner
from schemas.base import Language, Scale

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SURVEY_ID = "s-01JD7Q9X4K2M"
SIGNER = TokenSigner([SigningKey("k1", b"k" * 32)])
BASE = "https://palaute.example.fi"

#: Questions of the length touchpoints configure, one per language.
QUESTIONS = {
    Language.FI: "Kuinka tyytyväinen olit palveluumme tänään?",
    Language.SV: "Hur nöjd var du med vår service i dag?",
    Language.EN: "How satisfied were you with our service today?",
    Language.SE: "Man duhtavaš ledje bálvalussii?",
}
OR = {Language.FI: "tai", Language.SV: "eller", Language.EN: "or", Language.SE: "tai"}
REPLY_HINTS = {
    Language.FI: "Vastaa 1-5",
    Language.SV: "Svara 1-5",
    Language.EN: "Reply 1-5",
    Language.SE: "Vastaa 1-5",
}
ORGANISATION = "Espoon kaupunki"
SERVICE = "Asiakaspalvelu"
ASKER = Asker(ORGANISATION, sms_service=SERVICE)
#: An SMS link as the dispatcher makes it: the base and a 16-character survey code.
SMS_LINK = f"{BASE}/r/{SIGNER.survey_code(SURVEY_ID)}"
GREETINGS = {Language.FI: "Hei,", Language.SV: "Hej,", Language.EN: "Hello,"}


def _token(purpose: TokenPurpose, score: int | None = None) -> str:
    payload = TokenPayload(SURVEY_ID, purpose, NOW + timedelta(days=7), score)
    return SIGNER.sign(payload, NOW)


def _page_url() -> str:
    return f"{BASE}/r/{_token(TokenPurpose.PAGE)}"


def _links(scale: Scale) -> SurveyLinks:
    return SurveyLinks(
        score_urls={
            score: f"{BASE}/r/{_token(TokenPurpose.SCORE, score)}"
            for score in range(scale.low, scale.high + 1)
        },
        page_url=_page_url(),
        unsubscribe_url=f"{BASE}/u/{_token(TokenPurpose.UNSUBSCRIBE)}",
    )


class _Anchors(HTMLParser):
    """Collects every link with its visible text, and the tags used."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.list_items_with_links = 0
        self._href: str | None = None
        self._text = ""
        self._in_item = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "li":
            self._in_item = True
        if tag == "a":
            self._href = dict(attrs)["href"]
            self._text = ""
            if self._in_item:
                self.list_items_with_links += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._in_item = False
        if tag == "a" and self._href is not None:
            self.anchors.append((self._href, self._text))
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data


def _parse(content: EmailContent) -> _Anchors:
    parser = _Anchors()
    parser.feed(content.html)
    parser.close()
    return parser


@pytest.mark.parametrize("language", list(Language))
def test_the_sms_names_who_asks_the_service_the_question_the_reply_hint_and_the_link(
    language: Language,
) -> None:
    """A citizen must see who asks about which service, what to answer, how, and where."""
    question = QUESTIONS[text_language(language)]  # Sámi without Sámi texts: all Finnish
    sms = render_sms(question, language, Scale.CSAT_5, SMS_LINK, asker=ASKER)
    hint = REPLY_HINTS[language]
    assert sms.splitlines() == [
        ORGANISATION,
        f"{SERVICE}: {question}",
        f"{hint} {OR[language]} {SMS_LINK}",
    ]


@pytest.mark.parametrize("language", [Language.FI, Language.SV, Language.EN])
def test_a_typical_sms_fits_one_gsm7_segment(language: Language) -> None:
    """A second segment doubles the price and can arrive out of order.

    Sámi letters (š, č, đ, ŋ, ŧ, ž) are outside GSM-7, so a Sámi question costs
    two UCS-2 segments whatever this module does; only the wording is ours.
    """
    sms = render_sms(QUESTIONS[language], language, Scale.CSAT_5, SMS_LINK, asker=ASKER)
    segments = count_segments(sms)
    assert segments.encoding is SmsEncoding.GSM7
    assert segments.segments == 1


@pytest.mark.parametrize(("length", "stop_word"), [(49, False), (33, True)])
def test_the_sms_leaves_room_for_the_finnish_question_budget(
    length: int, *, stop_word: bool
) -> None:
    """The budget the touchpoint catalogue can promise its question writers.

    With an organisation name of 20 characters, a service name of 20, the
    first message and the reminder, on 0-10, and an https link on a
    26-character base: 49 characters for the question, 33 when the SMS also
    says how to stop; one more and the reminder takes two segments.
    """
    question = ("Miten onnistuimme äsken palvelussamme, kerro meille" + "x" * 60)[:length]
    asker = Asker("Helsingin kaupunki 2", sms_service="Terveysaseman palvel", stop_word=stop_word)
    for reminder in (False, True):
        sms = render_sms(
            question, Language.FI, Scale.NPS_11, SMS_LINK, asker=asker, reminder=reminder
        )
        assert count_segments(sms).segments == 1, sms
    longer = render_sms(
        question + "x", Language.FI, Scale.NPS_11, SMS_LINK, asker=asker, reminder=True
    )
    assert count_segments(longer).segments == 2, longer


def test_the_sms_names_the_short_names_the_catalogue_gives_for_it() -> None:
    """A long official name would take the room of the question; the SMS has its own."""
    asker = Asker(
        "Pirkanmaan hyvinvointialue",
        service="Terveysaseman vastaanotto",
        sms_organisation="Pirha",
        sms_service="Terveysasema",
    )
    sms = render_sms(QUESTIONS[Language.FI], Language.FI, Scale.CSAT_5, SMS_LINK, asker=asker)
    assert sms.startswith("Pirha\nTerveysasema: ")
    assert "hyvinvointialue" not in sms


@pytest.mark.parametrize("language", [Language.FI, Language.SV, Language.EN])
def test_an_sms_without_a_known_service_says_it_asks_for_feedback(language: Language) -> None:
    """An old survey with no service recorded still reads as a sentence, not '{service}: '."""
    sms = render_sms(QUESTIONS[language], language, Scale.CSAT_5, SMS_LINK, asker=Asker("Kela"))
    unknown = {Language.FI: "Palaute", Language.SV: "Respons", Language.EN: "Feedback"}
    assert sms.splitlines()[1] == f"{unknown[language]}: {QUESTIONS[language]}"


def test_a_contacts_own_service_name_is_shortened_until_the_sms_fits() -> None:
    """A name the check never counted must not double the bill; what is left still names it."""
    long_name = "Sosiaali- ja terveyspalvelujen yhteinen asiakasneuvonta ja ajanvaraus"
    asker = Asker("Helsingin kaupunki", sms_service=long_name, sms_service_is_contacts=True)

    def fits(body: str) -> bool:
        return count_segments(body).fits_one_segment

    question = "Kuinka tyytyväinen olit saamaasi palveluun tänään?"
    full = render_sms(question, Language.FI, Scale.NPS_11, SMS_LINK, asker=asker, reminder=True)
    assert not fits(full)
    sms = render_sms(
        question, Language.FI, Scale.NPS_11, SMS_LINK, asker=asker, reminder=True, fits=fits
    )
    assert fits(sms)
    named = sms.splitlines()[1].split(": ")[0]
    assert named.endswith(SHORTENED)
    assert long_name.startswith(named.removesuffix(SHORTENED))
    # A name from the catalogue is the check's to report, never cut behind its back.
    configured = replace(asker, sms_service_is_contacts=False)
    assert (
        render_sms(
            question,
            Language.FI,
            Scale.NPS_11,
            SMS_LINK,
            asker=configured,
            reminder=True,
            fits=fits,
        )
        == full
    )


def test_shortened_names_get_shorter_and_always_leave_something() -> None:
    """Each try is shorter than the last, so the loop ends with a name that fits or the least."""
    names = list(shortened_names("Asiakasneuvonta ja ajanvaraus"))
    assert names[0] == "Asiakasneuvonta ja" + SHORTENED
    lengths = [len(name) for name in names]
    assert lengths == sorted(lengths, reverse=True)
    assert all(len(name) > len(SHORTENED) for name in names)


@pytest.mark.parametrize(
    ("language", "hint"),
    [
        (Language.FI, "Vastaa 0-10"),
        (Language.SV, "Svara 0-10"),
        (Language.EN, "Reply 0-10"),
    ],
)
def test_the_reply_hint_follows_the_scale(language: Language, hint: str) -> None:
    """An NPS survey asks for 0-10; a 1-5 hint would make valid answers look wrong."""
    sms = render_sms(QUESTIONS[language], language, Scale.NPS_11, SMS_LINK, asker=ASKER)
    assert sms.splitlines()[2].startswith(hint + " ")


def test_the_sms_never_uses_the_en_dash() -> None:
    """One character outside GSM-7 would cut the message to 70 characters a segment."""
    for language in Language:
        for reminder in (False, True):
            sms = render_sms(
                QUESTIONS[language],
                language,
                Scale.CES_7,
                SMS_LINK,
                asker=replace(ASKER, stop_word=True),
                reminder=reminder,
            )
            assert EN_DASH not in sms


@pytest.mark.parametrize(
    ("question", "url"),
    [
        ("Line one\nline two", f"{BASE}/r/x"),
        ("   ", f"{BASE}/r/x"),
        ("Question?", "javascript:alert(1)"),
        ("Question?", f"{BASE}/r/a b"),
    ],
)
def test_an_sms_refuses_broken_questions_and_foreign_links(question: str, url: str) -> None:
    """A broken text or a non-http link is a configuration bug to stop before sending."""
    with pytest.raises(ValueError, match=r"question|links"):
        render_sms(question, Language.FI, Scale.CSAT_5, url, asker=ASKER)


@pytest.mark.parametrize("language", [Language.FI, Language.SV, Language.EN])
def test_the_email_is_in_the_citizens_language(language: Language) -> None:
    """Content-Language and lang come from here; screen readers pick their voice by it."""
    content = render_email(
        QUESTIONS[language], language, Scale.CSAT_5, _links(Scale.CSAT_5), "Espoon kaupunki"
    )
    assert content.language is language
    assert f'<html lang="{language.value}">' in content.html
    assert content.text.startswith(GREETINGS[language])
    assert f"<p>{GREETINGS[language]}</p>" in content.html
    assert content.subject.startswith("Espoon kaupunki: ")
    assert QUESTIONS[language] in content.text
    assert QUESTIONS[language] in content.html


def test_northern_sami_falls_back_to_finnish_wording_and_says_so() -> None:
    """Without reviewed Sámi texts the message is Finnish, and its headers must not claim Sámi."""
    content = render_email(
        QUESTIONS[Language.SE], Language.SE, Scale.CSAT_5, _links(Scale.CSAT_5), "Inari"
    )
    assert text_language(Language.SE) is Language.FI
    assert content.language is Language.FI
    assert '<html lang="fi">' in content.html
    assert content.text.startswith("Hei,")


@pytest.mark.parametrize("scale", list(Scale))
def test_both_parts_carry_every_score_link_the_page_and_unsubscribe(scale: Scale) -> None:
    """Text-only mail clients and HTML ones must offer the same answers."""
    links = _links(scale)
    content = render_email(QUESTIONS[Language.EN], Language.EN, scale, links, "City of Espoo")
    parsed = _parse(content)
    hrefs = [href for href, _ in parsed.anchors]
    expected = [*links.score_urls.values(), links.page_url, links.unsubscribe_url]
    assert hrefs == expected
    text_urls = re.findall(r"https?://\S+", content.text)
    assert text_urls == expected


def test_score_links_are_a_list_with_text_labels_and_named_ends() -> None:
    """Screen readers announce a list of links; each needs words, not just a colour."""
    links = _links(Scale.CSAT_5)
    content = render_email(QUESTIONS[Language.FI], Language.FI, Scale.CSAT_5, links, "Vantaa")
    parsed = _parse(content)
    assert parsed.list_items_with_links == 5
    labels = [text for _, text in parsed.anchors[:5]]
    assert labels == [
        f"1 {EN_DASH} erittäin tyytymätön",
        "2",
        "3",
        "4",
        f"5 {EN_DASH} erittäin tyytyväinen",
    ]
    assert f"1 {EN_DASH} erittäin tyytymätön: {links.score_urls[1]}" in content.text


def test_the_html_has_no_tables_images_or_remote_resources() -> None:
    """Layout tables confuse screen readers; remote images are tracking pixels."""
    content = render_email(
        QUESTIONS[Language.EN], Language.EN, Scale.NPS_11, _links(Scale.NPS_11), "Espoo"
    )
    tags = set(_parse(content).tags)
    assert tags.isdisjoint({"table", "img", "script", "link", "iframe", "object", "style"})
    assert "src=" not in content.html
    assert "url(" not in content.html


def _relative_luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def _contrast(first: str, second: str) -> float:
    light, dark = sorted((_relative_luminance(first), _relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_text_colour_has_wcag_aa_contrast_against_its_background() -> None:
    """Older citizens read these on small phones in daylight."""
    content = render_email(
        QUESTIONS[Language.FI], Language.FI, Scale.CSAT_5, _links(Scale.CSAT_5), "Espoo"
    )
    page = re.search(r"<body style=\"[^\"]*background-color:(#[0-9a-f]{6})", content.html)
    assert page is not None
    checked = 0
    for style in re.findall(r'style="([^"]*)"', content.html):
        colour = re.search(r"(?:^|;)color:(#[0-9a-f]{6})", style)
        if colour is None:
            continue
        background = re.search(r"background-color:(#[0-9a-f]{6})", style)
        ratio = _contrast(colour.group(1), background.group(1) if background else page.group(1))
        assert ratio >= 4.5, style
        checked += 1
    assert checked >= 5


def test_user_provided_strings_are_escaped_in_html_and_verbatim_in_text() -> None:
    """A question or organisation name must never inject markup into a citizen's mailbox."""
    question = "Was <script>alert('x')</script> & \"this\" OK?"
    organisation = "Ab <Oy> & Co"
    content = render_email(question, Language.EN, Scale.CSAT_5, _links(Scale.CSAT_5), organisation)
    assert "<script>" not in content.html
    assert "<Oy>" not in content.html
    assert "Was &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;this&quot; OK?" in (
        content.html
    )
    assert "Ab &lt;Oy&gt; &amp; Co" in content.html
    assert question in content.text
    assert content.subject == "Ab <Oy> & Co: one question about our service"


def test_a_link_with_markup_cannot_break_out_of_its_attribute() -> None:
    """Links are ours, but escaping them too keeps one bug from becoming an injection."""
    links = _links(Scale.SMILEY_4)
    hostile = SurveyLinks(
        score_urls=links.score_urls,
        page_url=f'{BASE}/r/x"onclick="alert(1)',
        unsubscribe_url=links.unsubscribe_url,
    )
    content = render_email("Q?", Language.EN, Scale.SMILEY_4, hostile, "Espoo")
    assert '"onclick="' not in content.html
    assert dict(_parse(content).anchors)[hostile.page_url] == hostile.page_url


@pytest.mark.parametrize(
    "scores",
    [range(1, 5), range(1, 7), range(6)],
)
def test_score_links_must_cover_the_scale_exactly(scores: range) -> None:
    """A missing score link would bias the answers; an extra one would be off the scale."""
    links = SurveyLinks(
        score_urls={score: f"{BASE}/r/{score}" for score in scores},
        page_url=_page_url(),
        unsubscribe_url=f"{BASE}/u/x",
    )
    with pytest.raises(ValueError, match="score links"):
        render_email("Q?", Language.FI, Scale.CSAT_5, links, "Espoo")


def test_a_multi_line_organisation_name_is_refused() -> None:
    """The organisation goes into the Subject header, where a line break is injection."""
    with pytest.raises(ValueError, match="organisation"):
        render_email("Q?", Language.FI, Scale.CSAT_5, _links(Scale.CSAT_5), "Espoo\r\nBcc: x")


@pytest.mark.parametrize("language", [Language.FI, Language.SV, Language.EN])
def test_default_question_sms_fits_one_segment(language: Language) -> None:
    """The catalogue's default question plus the reply line and link must cost one SMS, not two."""
    from connectors.sms_segments import count_segments  # noqa: PLC0415 - only this test needs it
    from schemas.config import TouchpointConfig  # noqa: PLC0415

    touchpoint = TouchpointConfig()
    text = render_sms(
        touchpoint.question(language), language, touchpoint.scale, SMS_LINK, asker=ASKER
    )
    assert count_segments(text).segments == 1


def test_the_honeypot_link_is_in_the_html_only_hidden_from_people_and_keyboards() -> None:
    """Scanners fetch every href; a person must never see, hear or tab to the trap."""
    honeypot = f"{BASE}/h/{_token(TokenPurpose.PAGE)}"
    links = replace(_links(Scale.CSAT_5), honeypot_url=honeypot)
    content = render_email(QUESTIONS[Language.FI], Language.FI, Scale.CSAT_5, links, "Espoo")
    tag = re.search(r'<a href="' + re.escape(honeypot) + r'"[^>]*>', content.html)
    assert tag is not None
    assert 'aria-hidden="true"' in tag.group(0)
    assert 'tabindex="-1"' in tag.group(0)
    assert "display:none" in tag.group(0)
    assert dict(_parse(content).anchors)[honeypot] == ""
    assert honeypot not in content.text


def test_the_email_names_the_organisation_service_privacy_notice_and_logo() -> None:
    """A survey mail from an unnamed sender with no privacy notice looks like phishing."""
    asker = Asker(
        "Espoon kaupunki",
        service="Terveysasema",
        privacy_url="https://www.espoo.fi/tietosuoja",
        logo_url="https://www.espoo.fi/logo.svg",
    )
    content = render_email(
        QUESTIONS[Language.FI], Language.FI, Scale.CSAT_5, _links(Scale.CSAT_5), asker
    )
    assert content.subject == "Espoon kaupunki: kysymys palvelustamme"
    assert "Palvelu: Terveysasema" in content.text
    assert "Tietosuojaseloste: https://www.espoo.fi/tietosuoja" in content.text
    assert '<a href="https://www.espoo.fi/tietosuoja"' in content.html
    assert '<img src="https://www.espoo.fi/logo.svg" alt="Espoon kaupunki"' in content.html
    reminder = render_email(
        QUESTIONS[Language.FI],
        Language.FI,
        Scale.CSAT_5,
        _links(Scale.CSAT_5),
        asker,
        reminder=True,
    )
    assert reminder.subject == "Muistutus: Espoon kaupunki kysyy palvelustamme"
    assert reminder.text != content.text
