"""Every citizen-visible phrase can be replaced per language; Sámi only when all of it is given."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from engine import messages, pages_text
from engine.messages import Asker, render_email, text_language
from engine.pages_text import page_language, page_text
from engine.replies import REPLY_KEYS, ReplyKind, reply_text
from engine.sms_text import render_sms
from schemas.base import Language, Scale
from schemas.config import (
    MESSAGE_TEXT_KEYS,
    PAGE_TEXT_KEYS,
    REPLY_TEXT_KEYS,
    ConfigError,
    TouchpointConfig,
    load_settings,
)

if TYPE_CHECKING:
    from pathlib import Path

LINK = "https://palaute.example.fi/r/" + "x" * 16
ASKER = Asker("Espoo")


def test_the_catalogue_knows_exactly_the_phrases_the_engine_writes() -> None:
    """A key the engine does not read would be a setting that silently does nothing."""
    wording = {field.name for field in dataclasses.fields(messages._Wording)} - {"ends"}
    assert set(MESSAGE_TEXT_KEYS) == wording | {"low_end", "high_end"}
    assert PAGE_TEXT_KEYS == pages_text.PAGE_TEXT_KEYS
    assert set(REPLY_TEXT_KEYS) == set(REPLY_KEYS.values())


def test_an_unknown_text_key_is_refused_with_its_place(tmp_path: Path) -> None:
    """A misspelt key must fail the configuration check, not be ignored at send time."""
    config = tmp_path / "palaute.toml"
    config.write_text(
        '[secrets]\npseudonymisation_key = "'
        + "p" * 40
        + '"\nlink_signing_key = "'
        + "l" * 40
        + '"\n[defaults.texts.fi]\nsms_stopp = "Lopeta: LOPETA"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    (problem,) = error.value.problems
    assert problem.path == "defaults.texts"
    assert "sms_stopp" in problem.message


def test_sms_email_page_and_reply_phrases_follow_the_catalogue() -> None:
    """An organisation words its messages its own way, per language."""
    texts = {
        Language.SV: {
            "sms": "{organisation} frågar: {question} Svara {low}-{high}: {link}",
            "subject": "En fråga från {organisation}",
            "page_title": "Din åsikt",
            "page_agreement_3": "Varken eller",
            "reply_thanks": "Stort tack!",
        }
    }
    sms = render_sms("Hur gick det?", Language.SV, Scale.CSAT_5, LINK, asker=ASKER, texts=texts)
    assert sms == f"Espoo frågar: Hur gick det? Svara 1-5: {LINK}"
    page = page_text(Language.SV, texts)
    assert page.title == "Din åsikt"
    assert page.agreement[2] == "Varken eller"
    assert page.agreement[0] == page_text(Language.SV).agreement[0]
    assert reply_text(ReplyKind.THANKS, Language.SV, Scale.CSAT_5, texts) == "Stort tack!"
    assert reply_text(ReplyKind.THANKS, Language.FI, Scale.CSAT_5, texts) == (
        "Kiitos vastauksestasi!"
    )


def _all_sami() -> dict[str, str]:
    sami = dict.fromkeys((*MESSAGE_TEXT_KEYS, *PAGE_TEXT_KEYS, *REPLY_TEXT_KEYS), "Giitu")
    return sami | {
        "sms": "{organisation}, {service}: {question} {low}-{high} {link}",
        "sms_large": "{organisation}, {service}: {question} {low}-{high} {link}",
        "sms_reminder": "{organisation}, {service}: {question} {low}-{high} {link}",
        "sms_link_only": "{organisation}, {service}: {question} {link}",
        "sms_link_only_reminder": "{organisation}, {service}: {question} {link}",
        "subject": "{organisation}",
        "reminder_subject": "{organisation}",
        "choose": "{low}-{high}",
        "service": "{service}",
    }


def test_sami_is_used_only_where_every_phrase_is_given_in_sami() -> None:
    """Half-Sámi is no Sámi: the honest fallback is Finnish throughout, marked as Finnish."""
    partial = {Language.SE: {"sms_stop": "Heaittit: LOPETA", "page_title": "Máhcahat"}}
    assert text_language(Language.SE, partial) is Language.FI
    assert page_language(Language.SE, partial) is Language.FI
    assert page_text(Language.SE, partial).title == page_text(Language.FI).title
    assert reply_text(ReplyKind.THANKS, Language.SE, Scale.CSAT_5, partial) == (
        "Kiitos vastauksestasi!"
    )
    complete = {Language.SE: _all_sami()}
    assert text_language(Language.SE, complete) is Language.SE
    assert page_language(Language.SE, complete) is Language.SE
    assert page_text(Language.SE, complete).title == "Giitu"
    assert reply_text(ReplyKind.HELP, Language.SE, Scale.CSAT_5, complete) == "Giitu"


def test_a_sami_citizen_without_sami_texts_gets_a_wholly_finnish_message() -> None:
    """The issue seen: a Sámi question inside Finnish phrases, with lang="fi" a half-truth."""
    from engine.outbound import message_language  # noqa: PLC0415 - only here

    touchpoint = TouchpointConfig(
        questions={
            Language.FI: "Miten onnistuimme?",
            Language.SV: "Hur gick det?",
            Language.EN: "How did we do?",
            Language.SE: "Mo manai?",
        }
    )
    used = message_language(touchpoint, Language.SE)
    assert used is Language.FI
    email = render_email(
        touchpoint.question(used),
        used,
        Scale.CSAT_5,
        messages.SurveyLinks(
            score_urls={n: f"{LINK}{n}" for n in range(1, 6)},
            page_url=LINK,
            unsubscribe_url=LINK + "u",
        ),
        ASKER,
    )
    assert email.language is Language.FI
    assert '<html lang="fi">' in email.html
    assert "Mo manai?" not in email.text
    assert "Miten onnistuimme?" in email.text
    with_sami = touchpoint.model_copy(update={"texts": {Language.SE: _all_sami()}})
    assert message_language(with_sami, Language.SE) is Language.SE


@pytest.mark.parametrize("text", ["{organisation}: {kysymys} {link}", "Vastaa {low}-{high} {"])
def test_a_text_with_a_placeholder_no_message_fills_is_refused(text: str) -> None:
    """Found at start-up, not as a survey that cannot be built at send time."""
    with pytest.raises(ValueError, match=r"texts\.fi\.sms has a placeholder"):
        TouchpointConfig.model_validate({"texts": {"fi": {"sms": text}}})
