"""The wording of the one-tap pages in Finnish, Swedish and English.

Kept apart from :mod:`engine.messages` (what is sent) because pages say more:
headings, button labels for screen readers, the states of a vote. Each phrase
can be replaced per language from the catalogue's ``texts`` under its name
with ``page_`` before it (``page_saved``). Northern Sámi gets Sámi only when
the catalogue gives every page phrase in Sámi; otherwise the page is Finnish
and says ``lang="fi"``, as the messages do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas.base import Language

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class PageText:
    """Every phrase a one-tap page can show, in one language."""

    title: str
    question: str
    score_label: str  # for screen readers: "Score {score} of {high}"
    chosen: str  # "Your answer: {score}"
    confirm: str  # the no-script button: "Send answer {score}"
    saved: str
    tap_to_send: str  # after the page's own vote, which counts only once the citizen taps
    change_hint: str
    comment_label: str
    comment_hint: str
    comment_send: str
    comment_saved: str
    closed_title: str
    closed_body: str
    invalid_title: str
    invalid_body: str
    unknown_title: str
    unknown_body: str
    unsubscribe_title: str
    unsubscribe_body: str
    unsubscribe_button: str
    unsubscribed_title: str
    unsubscribed_body: str
    too_many: str
    statements_title: str
    statements_hint: str
    agreement: tuple[str, str, str, str, str]  # 1 = strongly disagree .. 5 = strongly agree
    statements_send: str
    statements_saved: str
    statements_need_vote: str


_TEXTS: dict[Language, PageText] = {
    Language.FI: PageText(
        title="Palautekysely",
        question="Kuinka tyytyväinen olit saamaasi palveluun?",
        score_label="Arvosana {score} / {high}",
        chosen="Vastauksesi: {score}",
        confirm="Lähetä vastaus {score}",
        saved="Kiitos! Vastauksesi {score} on tallennettu.",
        tap_to_send="Lähetä vastauksesi {score} napauttamalla sitä.",
        change_hint="Voit vaihtaa arvosanaa valitsemalla toisen numeron.",
        comment_label="Haluatko kertoa lisää? (vapaaehtoinen)",
        comment_hint="Älä kirjoita puhelinnumeroa, sähköpostiosoitetta tai henkilötunnusta.",
        comment_send="Lähetä kommentti",
        comment_saved="Kiitos kommentistasi!",
        closed_title="Kysely on päättynyt",
        closed_body="Tähän kyselyyn ei voi enää vastata. Kiitos kiinnostuksestasi!",
        invalid_title="Linkki ei toimi",
        invalid_body="Linkki on virheellinen tai vanhentunut. Vastausta ei tallennettu.",
        unknown_title="Kyselyä ei löydy",
        unknown_body="Tätä kyselyä ei löydy. Vastausta ei tallennettu.",
        unsubscribe_title="Peru palautekyselyt",
        unsubscribe_body="Et saa enää palautekyselyitä, kun vahvistat perumisen.",
        unsubscribe_button="Vahvista peruminen",
        unsubscribed_title="Kyselyt peruttu",
        unsubscribed_body="Et saa enää palautekyselyitä meiltä.",
        too_many="Liian monta pyyntöä. Yritä hetken kuluttua uudelleen.",
        statements_title="Muutama lisäkysymys (vapaaehtoinen)",
        statements_hint="Kuinka samaa mieltä olet seuraavista väittämistä? Voit jättää minkä "
        "tahansa väittämän vastaamatta.",
        agreement=(
            "Täysin eri mieltä",
            "Jokseenkin eri mieltä",
            "Ei samaa eikä eri mieltä",
            "Jokseenkin samaa mieltä",
            "Täysin samaa mieltä",
        ),
        statements_send="Lähetä vastaukset",
        statements_saved="Kiitos! Vastauksesi väittämiin on tallennettu.",
        statements_need_vote="Valitse ensin arvosana, sitten voit vastata väittämiin.",
    ),
    Language.SV: PageText(
        title="Responsenkät",
        question="Hur nöjd var du med servicen du fick?",
        score_label="Betyg {score} av {high}",
        chosen="Ditt svar: {score}",
        confirm="Skicka svaret {score}",
        saved="Tack! Ditt svar {score} har sparats.",
        tap_to_send="Skicka ditt svar {score} genom att trycka på det.",
        change_hint="Du kan ändra betyget genom att välja en annan siffra.",
        comment_label="Vill du berätta mer? (frivilligt)",
        comment_hint="Skriv inte telefonnummer, e-postadress eller personbeteckning.",
        comment_send="Skicka kommentaren",
        comment_saved="Tack för din kommentar!",
        closed_title="Enkäten har avslutats",
        closed_body="Det går inte längre att svara på enkäten. Tack för ditt intresse!",
        invalid_title="Länken fungerar inte",
        invalid_body="Länken är felaktig eller har gått ut. Inget svar sparades.",
        unknown_title="Enkäten hittas inte",
        unknown_body="Enkäten hittas inte. Inget svar sparades.",
        unsubscribe_title="Avsluta responsenkäter",
        unsubscribe_body="Du får inga fler responsenkäter när du bekräftar.",
        unsubscribe_button="Bekräfta",
        unsubscribed_title="Enkäterna avslutade",
        unsubscribed_body="Du får inga fler responsenkäter från oss.",
        too_many="För många förfrågningar. Försök igen om en stund.",
        statements_title="Några frågor till (frivilligt)",
        statements_hint="Hur väl instämmer du i följande påståenden? Du kan lämna vilket "
        "påstående som helst obesvarat.",
        agreement=(
            "Instämmer inte alls",
            "Instämmer delvis inte",
            "Varken instämmer eller tar avstånd",
            "Instämmer delvis",
            "Instämmer helt",
        ),
        statements_send="Skicka svaren",
        statements_saved="Tack! Dina svar på påståendena har sparats.",
        statements_need_vote="Välj först ett betyg, sedan kan du svara på påståendena.",
    ),
    Language.EN: PageText(
        title="Feedback survey",
        question="How satisfied were you with the service?",
        score_label="Score {score} of {high}",
        chosen="Your answer: {score}",
        confirm="Send answer {score}",
        saved="Thank you! Your answer {score} has been saved.",
        tap_to_send="Send your answer {score} by tapping it.",
        change_hint="You can change the score by choosing another number.",
        comment_label="Would you like to tell us more? (optional)",
        comment_hint="Please do not write a phone number, email address or identity code.",
        comment_send="Send comment",
        comment_saved="Thank you for your comment!",
        closed_title="The survey has ended",
        closed_body="This survey can no longer be answered. Thank you for your interest!",
        invalid_title="The link does not work",
        invalid_body="The link is broken or has expired. No answer was saved.",
        unknown_title="Survey not found",
        unknown_body="This survey cannot be found. No answer was saved.",
        unsubscribe_title="Stop feedback requests",
        unsubscribe_body="You will get no more feedback requests once you confirm.",
        unsubscribe_button="Confirm",
        unsubscribed_title="Requests stopped",
        unsubscribed_body="You will get no more feedback requests from us.",
        too_many="Too many requests. Please try again in a moment.",
        statements_title="A few more questions (optional)",
        statements_hint="How much do you agree with the following statements? You can leave "
        "any statement unanswered.",
        agreement=(
            "Strongly disagree",
            "Disagree",
            "Neither agree nor disagree",
            "Agree",
            "Strongly agree",
        ),
        statements_send="Send answers",
        statements_saved="Thank you! Your answers to the statements have been saved.",
        statements_need_vote="Please choose a score first; then you can answer the statements.",
    ),
}

_FALLBACKS: dict[Language, Language] = {Language.SE: Language.FI}
#: Prefix of the page's phrases among a catalogue's ``texts`` keys.
PREFIX = "page_"
_AGREEMENT = "agreement"
#: The catalogue keys of the page's phrases; ``page_agreement_1`` .. ``_5`` are the
#: five words of the statements' agreement scale.
PAGE_TEXT_KEYS: tuple[str, ...] = (
    *(PREFIX + field.name for field in dataclasses.fields(PageText) if field.name != _AGREEMENT),
    *(f"{PREFIX}{_AGREEMENT}_{number}" for number in range(1, 6)),
)


def page_language(
    language: Language, texts: Mapping[Language, Mapping[str, str]] | None = None
) -> Language:
    """Give the language the page is really written in, for its ``lang`` attribute.

    A language without built-in wording (Sámi) only when ``texts`` gives
    every page phrase in it; otherwise Finnish.
    """
    if language not in _FALLBACKS:
        return language
    given = (texts or {}).get(language, {})
    if all(given.get(key) for key in PAGE_TEXT_KEYS):
        return language
    return _FALLBACKS[language]


def page_text(
    language: Language, texts: Mapping[Language, Mapping[str, str]] | None = None
) -> PageText:
    """Return the page wording for ``language`` with the catalogue's replacements."""
    used = page_language(language, texts)
    base = _TEXTS.get(used) or _TEXTS[Language.FI]
    given: dict[str, str] = {
        key.removeprefix(PREFIX): value
        for key, value in (texts or {}).get(used, {}).items()
        if key.startswith(PREFIX)
    }
    one, two, three, four, five = (
        given.pop(f"{_AGREEMENT}_{number}", "") or base.agreement[number - 1]
        for number in range(1, 6)
    )
    return dataclasses.replace(base, agreement=(one, two, three, four, five), **given)
