"""Contacts in, SMS and email out: intake, scheduler and dispatcher in one real worker.

2,000 contact events over 100 citizens and 10 touchpoints go through
``palaute worker`` against a real broker; the real twilio client sends to the
Twilio simulator and aiosmtplib to an aiosmtpd server. Every decision is
replayed with :func:`engine.policy.decide` as the oracle, and each citizen
must have received exactly the SMS and emails the policy's decisions call
for: caps, opt-outs (in the contact and at Twilio), sampling, channel
fallback, non-disclosure and the age limit included. What crossed the wire to
the simulator is then checked against Twilio's OpenAPI document, and every
delivered email is parsed as a mail client would.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest
from dispatch_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    LINK_SIGNING_KEY,
    PSEUDONYMISATION_KEY,
    PUBLIC_BASE_URL,
    SENDER,
    SOURCE,
    Reader,
    Worker,
    config_text,
    contact,
    decisions,
    endings,
    produce,
    settle,
    wait_until,
)
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from smtp_server import running_smtp_sink

from connectors.twilio_sim import SimulatorConfig, TwilioSimulator
from engine.messages import text_language
from engine.policy import CitizenHistory, decide
from engine.pseudonym import citizen_key
from engine.tokens import SigningKey, TokenPayload, TokenPurpose, TokenSigner
from schemas.config import load_settings
from schemas.decoding import Rejected, decode_contact
from schemas.surveys import SkipReason, SurveyScheduled, SurveySkipped
from schemas.topics import CONTACTS, RESPONSES, SURVEYS, VAULT
from streams.intake import publications

if TYPE_CHECKING:
    from schemas.config import Settings
    from schemas.contacts import ContactCompleted

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / ".." / "shared" / "vendor" / "twilio-oai" / "twilio_api_v2010.json"
CONTACT_COUNT = 2000
CITIZEN_COUNT = 100
SIGNER = TokenSigner([SigningKey("k1", LINK_SIGNING_KEY.encode())])
LINK = re.compile(re.escape(PUBLIC_BASE_URL) + r"/([ru])/([A-Za-z0-9_-]+)")
#: The reply instruction's line, in the first message and in the reminder.
REPLY_LINE = {
    "fi": re.compile(r"^Vastaa (vielä )?\d+-\d+ tai "),
    "sv": re.compile(r"^Svara (ännu )?\d+-\d+ eller "),
    "en": re.compile(r"^(Reminder: r|R)eply \d+-\d+ or "),
}

TOUCHPOINTS = """
[touchpoints.tp-0]
name = "Puhelinpalvelu"
send_delay = "0s"

[touchpoints.tp-1]
send_delay = "1s"
sampling_rate = 0.5

[touchpoints.tp-2]
send_delay = "0s"
channel_preference = ["email", "sms"]

[touchpoints.tp-3]
sensitive = true

[touchpoints.tp-4]
send_delay = "1s"
channel_preference = ["email"]
scale = "nps-11"

[touchpoints.tp-5]
send_delay = "0s"
channel_preference = ["sms"]
scale = "ces-7"

[touchpoints.tp-6]
send_delay = "1s"
sampling_rate = 0.3
scale = "smiley-4"

[touchpoints.tp-7]
sms_name = { fi = "Asiointipiste", sv = "Servicepunkt", en = "Service point" }
send_delay = "0s"
channel_preference = ["sms", "email"]
reminder_delay = "2s"

[touchpoints.tp-8]
send_delay = "1s"
channel_preference = ["email", "sms"]
sampling_rate = 0.7

[defaults]
send_delay = "0s"

[defaults.organisation]
name = "Espoon kaupunki"
privacy_url = "https://www.espoo.fi/tietosuoja"
stop_word_in_sms = true
messaging_service_sid = "MG0123456789abcdef0123456789abcdef"
"""


#: Who asks, named first in every SMS.
ORGANISATION = "Espoon kaupunki"
#: The service as the SMS names it where the catalogue names it (else the contact's).
SMS_SERVICES = {
    "tp-0": {"fi": "Puhelinpalvelu", "sv": "Puhelinpalvelu", "en": "Puhelinpalvelu"},
    "tp-7": {"fi": "Asiointipiste", "sv": "Servicepunkt", "en": "Service point"},
}


def _extra() -> str:
    # tp-9 is not in the catalogue: it is surveyed with [defaults].
    policy = """
frequency_cap = 3
episode_scope = "touchpoint"
"""
    dispatch = """
[dispatch]
sms_per_second = 500
email_per_second = 500
burst = 100
tick = "1s"
retry_base = "1s"
retry_cap = "2s"
last_call = "1s"
"""
    return policy + dispatch + TOUCHPOINTS


def _citizens() -> list[dict[str, Any]]:
    rng = random.Random(11)  # noqa: S311 - reproducible test data, not secrets
    languages = ["fi", "sv", "en"]
    citizens = []
    for index in range(CITIZEN_COUNT):
        citizen: dict[str, Any] = {
            "id": f"cust-{index}",
            "language": languages[index % 3],
            "consent": {"sms": rng.random() < 0.85, "email": rng.random() < 0.6},
        }
        if index % 4 != 3:
            citizen["phone"] = f"+35840{2000000 + index * 7919:07d}"
        if index % 4 != 0:
            citizen["email"] = f"asiakas{index}@example.fi"
        if index % 13 == 5:
            citizen["age"] = 16
        if index % 17 == 3:
            citizen["non_disclosure"] = True
        if index % 11 == 7:
            citizen["consent"]["opted_out"] = True
        citizens.append(citizen)
    return citizens


def _unsubscribed_at_twilio(citizens: list[dict[str, Any]]) -> set[str]:
    """Numbers that replied STOP to an earlier text: Twilio refuses them with 21610."""
    return {c["phone"] for i, c in enumerate(citizens) if "phone" in c and i % 9 == 4}


def _traffic(
    citizens: list[dict[str, Any]], now: datetime
) -> tuple[list[tuple[bytes, bytes]], dict[str, ContactCompleted]]:
    rng = random.Random(5)  # noqa: S311 - reproducible test data, not secrets
    records: list[tuple[bytes, bytes]] = []
    contacts: dict[str, ContactCompleted] = {}
    for number in range(CONTACT_COUNT):
        index = rng.randrange(len(citizens))
        ended = now - timedelta(seconds=rng.randint(30, 900))
        value = contact(
            number,
            citizens[index],
            f"tp-{rng.randrange(10)}",
            ended,
            service=rng.choice(["tax", "health"]),
        )
        records.append((f"citizen-{index}".encode(), value))
        decoded = decode_contact(value, now=now)
        assert not isinstance(decoded, Rejected), decoded.reason
        contacts[f"contact-{number}"] = decoded
    return records, contacts


def _oracle(records: list[Any], contacts: dict[str, ContactCompleted], settings: Settings) -> None:
    """Replay decide per citizen in published order; every decision must match the policy.

    A Twilio opt-out (SurveyFailed, opted-out) reaches the citizen's history
    through the responses topic some time after it is published: from then on
    the oracle accepts a decision made with or without it, until one needs it.
    """
    histories: dict[bytes, CitizenHistory] = {}
    opting_out: set[bytes] = set()
    calendar = settings.policy.holiday_calendar()
    for record in records:
        data = json.loads(record.value)
        key = record.key
        if data["type"] == "SurveyFailed" and data["reason"] == "opted-out":
            opting_out.add(key)
        if data["type"] not in {"SurveyScheduled", "SurveySkipped"}:
            continue
        model = SurveyScheduled if data["type"] == "SurveyScheduled" else SurveySkipped
        event = model.model_validate(data)
        decided = contacts[event.contact_id]
        touchpoint, _ = settings.touchpoint(decided.data.touchpoint.id)
        before = histories.get(key, CitizenHistory())
        candidates = [before]
        if key in opting_out and not before.opted_out:
            candidates.append(before.with_opt_out())
        outcomes = []
        for history in candidates:
            decision = decide(
                decided,
                history,
                touchpoint,
                settings.policy,
                event.occurred_at,
                citizen_key=key.decode(),
                is_holiday=calendar,
            )
            expected = [
                json.loads(p.value)
                for p in publications(decision, decided, event.occurred_at)
                if p.topic == "surveys"
            ]
            outcomes.append((expected, decision.history))
        matching = [history for expected, history in outcomes if expected == [data]]
        assert matching, f"{event.contact_id}: {data} is not what the policy decides"
        histories[key] = matching[0]


def _reminders_done(events: list[Any]) -> bool:
    """Every sent survey with a reminder has had it."""
    due = {
        e.survey_id for e in events if isinstance(e, SurveyScheduled) and e.reminder_at is not None
    }
    sent = {e.survey_id for e in events if e.type == "SurveySent"}
    reminded = {e.survey_id for e in events if e.type == "ReminderSent"}
    return (due & sent) <= reminded


def _citizen_key(citizen: dict[str, Any], now: datetime) -> str:
    decoded = decode_contact(contact(0, citizen, "tp-0", now), now=now)
    assert not isinstance(decoded, Rejected)
    return citizen_key(PSEUDONYMISATION_KEY.encode(), decoded.data.citizen, source=SOURCE)


def _token_of(url_kind: str, token: str, survey_ids: set[str], now: datetime) -> TokenPayload:
    payload = SIGNER.verify(token, now)
    assert isinstance(payload, TokenPayload), f"a /{url_kind}/ link does not verify: {payload}"
    assert payload.survey_id in survey_ids
    return payload


@pytest.mark.slow
async def test_every_citizen_gets_exactly_the_messages_the_policy_decides(  # noqa: C901, PLR0912, PLR0915 - one end-to-end scenario, checked from every side
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path
) -> None:
    """The product in one test: right people, right channel, right count, nothing twice."""
    citizens = _citizens()
    unsubscribed = _unsubscribed_at_twilio(citizens)
    simulator = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            sms_number=SENDER,
            callback_delay=0.01,
            unsubscribed=set(unsubscribed),
        )
    )
    sim_url = await simulator.start("127.0.0.1", 0)
    async with running_smtp_sink() as sink:
        config = tmp_path / "palaute.toml"
        config.write_text(
            config_text(
                kafka_bootstrap,
                run_suffix,
                tmp_path / "data",
                sim_url=sim_url,
                smtp_port=sink.port,
                extra=_extra(),
            ),
            encoding="utf-8",
        )
        settings = load_settings(config)
        now = datetime.now(UTC)
        records, contacts = _traffic(citizens, now)
        surveys = Reader(kafka_bootstrap, SURVEYS + run_suffix)
        vault = Reader(kafka_bootstrap, VAULT + run_suffix)
        responses = Reader(kafka_bootstrap, RESPONSES + run_suffix)
        readers = [surveys, vault, responses]
        for reader in readers:
            await reader.start()
        worker = Worker(config, tmp_path / "worker.log")
        worker.start()
        try:
            await produce(kafka_bootstrap, CONTACTS + run_suffix, records)

            def finished() -> bool:
                events = surveys.events()
                scheduled = {e.survey_id for e in events if isinstance(e, SurveyScheduled)}
                return (
                    set(decisions(events)) >= set(contacts)
                    and set(endings(events)) >= scheduled
                    and _reminders_done(events)
                )

            await wait_until(finished, readers, worker, 150, "every survey to end")
            await settle(readers, 3.0)
            assert worker.alive(), worker.tail()
        finally:
            returncode = worker.stop()
            for reader in readers:
                await reader.stop()
            await simulator.settle()
            await simulator.stop()
        assert returncode == 0, worker.tail()
        delivered = list(sink.received)

    events = surveys.events()
    # Exactly one decision per contact, each the one the policy computes.
    counted = decisions(events)
    assert set(counted) == set(contacts)
    assert set(counted.values()) == {1}
    _oracle(surveys.records, contacts, settings)
    reasons = Counter(e.reason for e in events if isinstance(e, SurveySkipped))
    for reason in (
        SkipReason.OPTED_OUT,
        SkipReason.NON_DISCLOSURE,
        SkipReason.UNDER_AGE,
        SkipReason.SENSITIVE_TOUCHPOINT,
        SkipReason.FREQUENCY_CAP,
        SkipReason.NOT_SAMPLED,
        SkipReason.EPISODE,
    ):
        assert reasons[reason] > 0, f"the traffic never exercised {reason}"

    # Each scheduled survey ends once: sent, or failed because Twilio says unsubscribed.
    scheduled = {e.survey_id: e for e in events if isinstance(e, SurveyScheduled)}
    ends = endings(events)
    assert set(ends) == set(scheduled)
    key_of = {_citizen_key(c, now): c for c in citizens}
    expected_sms: Counter[str] = Counter()
    expected_mail: Counter[str] = Counter()
    expected_per_survey: Counter[str] = Counter()
    for survey_id, survey in scheduled.items():
        (end,) = ends[survey_id]
        citizen = key_of[survey.citizen_key]
        if survey.channel == "sms" and citizen["phone"] in unsubscribed:
            assert end.type == "SurveyFailed"
            assert end.reason == "opted-out"
            assert end.provider_error_code == "21610"
            continue
        assert end.type == "SurveySent", end
        # The one reminder is the same message again.
        messages = 1 if survey.reminder_at is None else 2
        if survey.channel == "sms":
            expected_sms[citizen["phone"]] += messages
        else:
            expected_mail[citizen["email"]] += messages
        expected_per_survey[survey_id] = messages
    # A Twilio opt-out is recorded for the intake, so the citizen is not asked again.
    opted_out = {s for s, (end,) in ends.items() if end.type == "SurveyFailed"}
    assert opted_out
    opt_outs = [json.loads(r.value) for r in responses.records]
    assert sorted(o["survey_id"] for o in opt_outs) == sorted(opted_out)
    assert {o["type"] for o in opt_outs} == {"OptOut"}
    channels = Counter(s.channel for s in scheduled.values())
    assert channels["sms"] > 0
    assert channels["email"] > 0

    # What the citizens received, counted per number and per address.
    texts = [m for m in simulator.messages if m["direction"] == "outbound-api"]
    assert Counter(m["to"] for m in texts) == expected_sms
    assert Counter(rcpt for mail in delivered for rcpt in mail.rcpt_tos) == expected_mail

    # Every SMS: one segment as Twilio bills it, the organisation, the service,
    # the reply instruction in the survey's language and the survey's code link.
    seen_surveys: Counter[str] = Counter()
    bodies: dict[str, list[str]] = {}
    by_code = {SIGNER.survey_code(survey_id): survey_id for survey_id in scheduled}
    assert texts
    for text in texts:
        assert text["num_segments"] == "1", text["body"]
        links = LINK.findall(text["body"])
        assert len(links) == 1
        kind, code = links[0]
        assert kind == "r"
        survey = scheduled[by_code[code]]
        organisation, named = text["body"].split("\n")[:2]
        assert organisation == ORGANISATION
        service = named.split(": ")[0]
        written_in = text_language(survey.language).value
        if survey.touchpoint_id in SMS_SERVICES:
            assert service == SMS_SERVICES[survey.touchpoint_id][written_in], text["body"]
        else:  # the contact's own service, shortened only if it would not fit
            assert survey.service is not None
            assert survey.service.startswith(service.removesuffix("...")), text["body"]
        assert text["messaging_service_sid"] == "MG0123456789abcdef0123456789abcdef"
        assert REPLY_LINE[written_in].match(text["body"].split("\n")[2]), text["body"]
        seen_surveys[survey.survey_id] += 1
        bodies.setdefault(survey.survey_id, []).append(text["body"])
    # A reminder has its own words: it is never the first message again.
    assert all(len(set(sent)) == len(sent) for sent in bodies.values())
    callbacks = {
        parse_qs(ex.body.decode()).get("StatusCallback", [""])[0]
        for ex in simulator.exchanges
        if ex.method == "POST"
    }
    assert callbacks == {PUBLIC_BASE_URL + "/twilio/status"}

    # Every email: language, both parts, headers and one signed link per score.
    for mail in delivered:
        message = mail.message()
        unsubscribe = message["List-Unsubscribe"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"]
        assert message.get_content_type() == "multipart/alternative"
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert plain is not None
        assert html is not None
        text_part, html_part = plain.get_content(), html.get_content()
        page_links = [(k, t) for k, t in LINK.findall(text_part) if k == "r"]
        payloads = [_token_of(k, t, set(scheduled), now) for k, t in page_links]
        (survey_id,) = {p.survey_id for p in payloads}
        survey = scheduled[survey_id]
        language = text_language(survey.language).value
        assert message["Content-Language"] == language
        assert f'<html lang="{language}">' in html_part
        assert message["To"].addresses[0].addr_spec == key_of[survey.citizen_key]["email"]
        scale = survey.scale
        scores = sorted(p.score for p in payloads if p.purpose is TokenPurpose.SCORE)
        assert scores == list(range(scale.low, scale.high + 1))
        assert [p.purpose for p in payloads].count(TokenPurpose.PAGE) == 1
        (unsubscribe_token,) = [t for k, t in LINK.findall(unsubscribe) if k == "u"]
        assert _token_of("u", unsubscribe_token, {survey_id}, now).purpose is (
            TokenPurpose.UNSUBSCRIBE
        )
        for _, token in page_links:
            assert token in html_part
        seen_surveys[survey_id] += 1
    assert seen_surveys == expected_per_survey, "a survey was sent twice, or not at all"
    reminded = Counter(e.survey_id for e in events if e.type == "ReminderSent")
    assert reminded == Counter({s: 1 for s, n in expected_per_survey.items() if n == 2})
    assert reminded, "the traffic never exercised the reminder"

    # Contact details are deleted once nothing more will be sent.
    last_vault: dict[bytes, Any] = {}
    for record in vault.records:
        last_vault[record.key] = record.value
    for survey_id in scheduled:
        assert last_vault[survey_id.encode()] is None, "contact details outlived the send"

    # The contract: every request and response of the run, against Twilio's own document.
    openapi = OpenAPI.from_dict(json.loads(SPEC.read_text(encoding="utf-8")))
    exchanges = list(simulator.exchanges)
    assert len(exchanges) >= len(texts)
    assert {ex.status for ex in exchanges} >= {201, 400}
    for exchange in exchanges:
        request = MockRequest(
            "https://api.twilio.com",
            exchange.method,
            exchange.path,
            args={k: v[-1] for k, v in parse_qs(exchange.query_string).items()},
            headers=dict(exchange.headers),
            data=exchange.body,
            content_type=exchange.content_type,
        )
        openapi.validate_request(request)
        response = MockResponse(
            exchange.response_body,
            status_code=exchange.status,
            content_type=exchange.response_content_type.split(";")[0],
        )
        if exchange.status < 400:
            openapi.validate_response(request, response)
        else:
            with pytest.raises(ResponseNotFound):  # Messages.json documents no error statuses
                openapi.validate_response(request, response)
            assert json.loads(exchange.response_body)["code"] == 21610
