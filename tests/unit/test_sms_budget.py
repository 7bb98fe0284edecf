"""Every survey SMS of the example catalogue is one GSM-7 segment, names who asks and links."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.sms_budget import catalogue_sms_over_budget, sms_over_budget, survey_sms_costs
from connectors.sms_segments import SmsEncoding, count_segments
from connectors.web.open_surveys import SurveyIndex
from engine.outbound import asker_for, message_language, survey_sms
from engine.policy import survey_id_for
from engine.sms_text import SHORTENED
from engine.tokens import SigningKey, TokenSigner
from schemas.base import Language, Scale, SurveyChannel
from schemas.catalogue_document import validate_document
from schemas.config import OrganisationConfig, Settings, TouchpointConfig, load_settings
from schemas.surveys import SurveyScheduled

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "palaute.toml"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIGNER = TokenSigner([SigningKey("k1", b"k" * 32)])
#: The example's own base URL, and a production one five characters longer.
BASES = ("http://127.0.0.1:8080", "https://palaute.example.fi")


def _example(base: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PALAUTE_WEB__PUBLIC_BASE_URL", base)
    return load_settings(EXAMPLE)


#: What a front office may call its service: longer than any SMS has room for.
CONTACT_SERVICE = "Sosiaali- ja terveyspalvelujen neuvonta ja ajanvaraus"


def _fits(body: str) -> bool:
    return count_segments(body).fits_one_segment


def _scheduled(
    touchpoint_id: str, language: Language, scale: Scale, service: str | None = None
) -> SurveyScheduled:
    return SurveyScheduled(
        service=service,
        survey_id=survey_id_for("/crm", f"{touchpoint_id}-{language.value}-{scale.value}"),
        citizen_key="a" * 40,
        contact_id="contact-1",
        touchpoint_id=touchpoint_id,
        occurred_at=T0,
        channel=SurveyChannel.SMS,
        language=language,
        scale=scale,
        contact_ended_at=T0,
        send_at=T0,
        reminder_at=T0 + timedelta(days=1),
        expires_at=T0 + timedelta(days=3),
    )


def _cases(settings: Settings) -> list[tuple[str, TouchpointConfig]]:
    """Every touchpoint that sends SMS and [defaults], each on every scale."""
    entries = {
        touchpoint_id: touchpoint
        for touchpoint_id, touchpoint in settings.touchpoints.items()
        if not touchpoint.sensitive
    } | {"not-in-the-catalogue": settings.defaults}
    return [
        (touchpoint_id, touchpoint.model_copy(update={"scale": scale}))
        for touchpoint_id, touchpoint in entries.items()
        for scale in Scale
    ]


@pytest.mark.parametrize("base", BASES)
def test_every_example_sms_is_one_gsm7_segment_names_the_organisation_and_service_and_links(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two segments double the bill; an SMS without who asks about what looks like phishing.

    Every touchpoint of the example and [defaults] (a touchpoint the catalogue
    does not list, whose service comes with the contact), on every scale, in
    every language, as the first message and as the reminder.
    """
    settings = _example(base, monkeypatch)
    index = SurveyIndex(secret=b"p" * 32, codes=SIGNER.survey_codes)
    checked = 0
    for touchpoint_id, touchpoint in _cases(settings):
        organisation = touchpoint.organisation
        assert organisation is not None
        for language in Language:
            survey = _scheduled(touchpoint_id, language, touchpoint.scale, CONTACT_SERVICE)
            index.apply(survey)
            written_in = message_language(touchpoint, language)
            for reminder in (False, True):
                sms = survey_sms(
                    survey,
                    touchpoint,
                    SIGNER,
                    base,
                    settings.dispatch.organisation,
                    reminder=reminder,
                    fits=_fits,
                )
                cost = count_segments(sms.body)
                assert cost.encoding is SmsEncoding.GSM7, sms.body
                assert cost.segments == 1, sms.body
                first, second = sms.body.splitlines()[:2]
                assert first == organisation.name_in(written_in), sms.body
                service = second.split(": ")[0]
                configured = touchpoint.sms_service_in(written_in)
                if configured is not None:
                    assert service == configured, sms.body
                else:  # the contact's own name, shortened to fit
                    assert service.endswith(SHORTENED), sms.body
                    assert CONTACT_SERVICE.startswith(service.removesuffix(SHORTENED)), sms.body
                    assert len(service) > len(SHORTENED) + 5, sms.body
                (link,) = re.findall(re.escape(base) + r"/r/(\S+)", sms.body)
                found = index.by_code(link)
                assert found is not None
                assert found[0].survey_id == survey.survey_id
                checked += 1
    assert checked == 3 * len(Scale) * len(Language) * 2


def test_config_check_finds_nothing_to_report_in_the_example(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The example is what operators copy: it must show messages that fit."""
    for base in BASES:
        settings = _example(base, monkeypatch)
        assert sms_over_budget(settings) == []
        assert all(cost.cost.segments == 1 for cost in survey_sms_costs(settings))


def test_config_check_reports_a_touchpoint_whose_sms_takes_two_segments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator learns before the bill does, with the touchpoint, language and message."""
    settings = _example(BASES[1], monkeypatch)
    long_question = (
        "Kuinka todennäköisesti suosittelisit terveysasemaamme ystävällesi tai läheisellesi?"
    )
    visit = settings.touchpoints["health-centre-visit"]
    questions = {**visit.questions, Language.FI: long_question}
    changed = settings.model_copy(
        update={
            "touchpoints": {
                "health-centre-visit": visit.model_copy(update={"questions": questions})
            }
        }
    )
    report = sms_over_budget(changed)
    assert report
    # Sámi without Sámi texts is written in Finnish: it has the same long question.
    prefix = "touchpoints.health-centre-visit: the "
    assert sorted(line.removeprefix(prefix)[:3] for line in report) == ["fi ", "se "]
    assert "takes 2 segments" in report[0]


def test_config_check_says_when_sami_texts_make_the_sms_ucs2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sámi letters are outside GSM-7: UCS-2 is unavoidable there, and the check says so."""
    settings = _example(BASES[0], monkeypatch)
    phone = settings.touchpoints["phone-service-helsinki"]
    sami = dict.fromkeys(
        (
            *("greeting", "intro", "reminder_intro", "service", "privacy", "choose"),
            *("confirm", "page", "voluntary", "unsubscribe", "subject", "reminder_subject"),
            *("low_end", "high_end"),
        ),
        "Sámi",
    )
    sami |= {
        "sms": "{organisation}, {service}: {question} {low}-{high} {link}",
        "sms_large": "{organisation}, {service}: {question} {low}-{high} {link}",
        "sms_reminder": "{organisation}, {service}: {question} {low}-{high} {link}",
        "sms_link_only": "{organisation}, {service}: {question} {link}",
        "sms_link_only_reminder": "{organisation}, {service}: {question} {link}",
        "sms_stop": "LOPETA",
        "sms_unknown_service": "Máhcahat",
    }
    touchpoint = phone.model_copy(
        update={
            "texts": {Language.SE: sami},
            "questions": {**phone.questions, Language.SE: "Man duhtavaš ledjet bálvalussii?"},
        }
    )
    changed = settings.model_copy(update={"touchpoints": {"phone-service-helsinki": touchpoint}})
    report = sms_over_budget(changed)
    assert report
    assert all(" se " in line and "UCS-2" in line and "'á'" not in line for line in report)
    assert "á" in report[0]


def test_an_alphanumeric_sender_gets_the_link_only_wording_without_a_stop_word() -> None:
    """Nobody can reply to an alphanumeric sender ID: the SMS must not ask for a reply."""
    organisation = OrganisationConfig(
        name="Helsingin kaupunki",
        privacy_url="https://palaute.example.fi/tietosuoja",  # type: ignore[arg-type]
        sms_sender_id="Helsinki",
        stop_word_in_sms=True,
    )
    touchpoint = TouchpointConfig(organisation=organisation)
    sms = survey_sms(
        _scheduled("tp", Language.FI, Scale.CSAT_5), touchpoint, SIGNER, BASES[1], "Palaute"
    )
    again = survey_sms(
        _scheduled("tp", Language.FI, Scale.CSAT_5),
        touchpoint,
        SIGNER,
        BASES[1],
        "Palaute",
        reminder=True,
    )
    assert sms.sender_id == "Helsinki"
    for body in (sms.body, again.body):
        assert " tai " not in body
        assert "LOPETA" not in body
        assert body.startswith("Helsingin kaupunki\n")
    assert again.body != sms.body


def _with_phone_service(settings: Settings, **changes: object) -> Settings:
    phone = settings.touchpoints["phone-service-helsinki"]
    changed = TouchpointConfig.model_validate(phone.model_dump() | changes)
    return settings.model_copy(update={"touchpoints": {"phone-service-helsinki": changed}})


def test_config_check_reports_a_service_name_too_long_for_the_sms_and_sms_name_mends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long official name is no reason to pay twice: the check names it, sms_name fixes it."""
    settings = _example(BASES[1], monkeypatch)
    long_names = {
        "fi": "Sosiaali- ja terveyspalvelujen puhelinneuvonta",
        "sv": "Social- och hälsovårdstjänsternas telefonrådgivning",
        "en": "Social and health services telephone advice",
    }
    report = sms_over_budget(_with_phone_service(settings, service=long_names))
    prefix = "touchpoints.phone-service-helsinki: the "
    assert {line.removeprefix(prefix)[:2] for line in report} == {"fi", "sv", "en", "se"}
    assert all("sms_name" in line for line in report)
    mended = _with_phone_service(
        settings,
        service=long_names,
        sms_name={"fi": "Puhelinneuvonta", "sv": "Telefonrådgivning", "en": "Phone advice"},
    )
    assert sms_over_budget(mended) == []
    body = next(
        cost.body
        for cost in survey_sms_costs(mended)
        if cost.language is Language.SV and cost.where == "touchpoints.phone-service-helsinki"
    )
    assert body.splitlines()[1].startswith("Telefonrådgivning: ")


def test_config_check_reports_an_sms_text_that_leaves_out_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replaced wording that drops who asks or about what brings the phishing look back."""
    settings = _example(BASES[0], monkeypatch)
    texts = {"fi": {"sms": "{organisation}: {question} Vastaa {low}-{high} tai {link}"}}
    report = sms_over_budget(_with_phone_service(settings, texts=texts))
    # Sámi without Sámi texts is written in Finnish, with the same wording.
    assert report == [
        f"touchpoints.phone-service-helsinki: the {language} survey SMS does not name both "
        "the organisation and the service; keep {organisation} and {service} in its texts"
        for language in ("fi", "se")
    ]


def test_the_organisations_sms_name_replaces_its_long_name_in_the_sms_only() -> None:
    """The email and page have room for the official name; the SMS names the short one."""
    organisation = OrganisationConfig(
        name="Pirkanmaan hyvinvointialue",
        sms_name="Pirha",
        privacy_url="https://palaute.example.fi/tietosuoja",  # type: ignore[arg-type]
    )
    touchpoint = TouchpointConfig(organisation=organisation, name="Terveysasema")
    survey = _scheduled("tp", Language.FI, Scale.CSAT_5)
    sms = survey_sms(survey, touchpoint, SIGNER, BASES[1], "Palaute")
    assert sms.body.startswith("Pirha\nTerveysasema: ")
    assert asker_for(touchpoint, Language.FI, "Palaute").organisation == organisation.name_in(
        Language.FI
    )


@pytest.mark.parametrize(
    ("sms_name", "error"),
    [
        ("Terveysasema ja hammashoitola Kalliossa", "at most 30 characters"),
        ("Dearvvašvuođaguovddáš", "outside the SMS alphabet"),
        ("Terveys\nasema", "control characters"),
        ({"fi": "Terveysasema"}, "missing in sv, en"),
    ],
)
def test_an_sms_name_that_could_not_keep_the_sms_short_is_refused(
    sms_name: object, error: str
) -> None:
    """Found by the configuration check, not on the bill: too long, UCS-2 or a line break."""
    with pytest.raises(ValueError, match=error):
        TouchpointConfig.model_validate({"sms_name": sms_name})
    with pytest.raises(ValueError, match=error):
        OrganisationConfig.model_validate(
            {"name": "Helsinki", "privacy_url": "https://p.example.fi", "sms_name": sms_name}
        )


def test_a_sami_sms_name_may_use_sami_letters() -> None:
    """A Sámi SMS is UCS-2 anyway; the Sámi name need not pretend otherwise."""
    touchpoint = TouchpointConfig.model_validate(
        {
            "sms_name": {
                "fi": "Terveysasema",
                "sv": "Hälsostation",
                "en": "Health centre",
                "se": "Dearvvašvuođaguovddáš",
            }
        }
    )
    assert touchpoint.sms_service_in(Language.SE) == "Dearvvašvuođaguovddáš"


def test_the_stop_word_is_shown_only_where_the_organisation_wants_it() -> None:
    """Some organisations want it in every SMS; the others keep the room for the question."""
    organisation = OrganisationConfig(
        name="Espoo",
        privacy_url="https://palaute.example.fi/tietosuoja",  # type: ignore[arg-type]
    )
    survey = _scheduled("tp", Language.SV, Scale.CSAT_5)
    without = survey_sms(survey, TouchpointConfig(organisation=organisation), SIGNER, BASES[1], "P")
    with_stop = survey_sms(
        survey,
        TouchpointConfig(organisation=replace_org(organisation, stop_word_in_sms=True)),
        SIGNER,
        BASES[1],
        "P",
    )
    assert "SLUTA" not in without.body
    assert with_stop.body.endswith("\nAvsluta: SLUTA")


def replace_org(organisation: OrganisationConfig, **changes: object) -> OrganisationConfig:
    """Copy an organisation with some settings changed."""
    return organisation.model_copy(update=changes)


def test_the_reminder_has_its_own_words_in_every_language() -> None:
    """A reminder word for word the first message reads as a duplicate sent by mistake."""
    touchpoint = TouchpointConfig()
    for language in Language:
        survey = _scheduled("tp", language, Scale.CSAT_5)
        first = survey_sms(survey, touchpoint, SIGNER, BASES[1], "Kela")
        again = survey_sms(survey, touchpoint, SIGNER, BASES[1], "Kela", reminder=True)
        assert first.body != again.body
        assert "Kela" in again.body


def test_a_catalogue_to_be_imported_is_counted_as_the_configuration_file_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catalogue in force lives on its topic: an import must be counted before it lands."""
    settings = _example(BASES[1], monkeypatch)
    raw = tomllib.loads((ROOT / "examples" / "catalogue.toml").read_text(encoding="utf-8"))
    document = validate_document(raw, settings.policy)
    assert catalogue_sms_over_budget(settings, document.defaults, document.touchpoints) == []
    del raw["touchpoints"]["health-centre-visit"]["sms_name"]
    document = validate_document(raw, settings.policy)
    report = catalogue_sms_over_budget(settings, document.defaults, document.touchpoints)
    assert report
    assert all(line.startswith("touchpoints.health-centre-visit: ") for line in report)
