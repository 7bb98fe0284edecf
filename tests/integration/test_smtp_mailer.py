"""SmtpMailer against a real SMTP server on 127.0.0.1: what arrives, and how failures read."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import aiosmtplib
import pytest
from pydantic import SecretStr
from smtp_server import HOST, LoopbackCertificate, SmtpSink, running_smtp_sink

from connectors.email import (
    MailConfigurationError,
    MailError,
    MailInvalidMessageError,
    MailOutcomeUnknownError,
    MailPermanentError,
    MailRecipientRefusedError,
    MailRetriableError,
    OutgoingEmail,
    SmtpMailer,
    mail_error_for,
)
from connectors.errors import ConnectorError
from engine.messages import SurveyLinks, render_email
from engine.tokens import (
    SigningKey,
    TokenPayload,
    TokenPurpose,
    TokenRejected,
    TokenSigner,
)
from schemas.base import Language, Scale
from schemas.config import SmtpConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from email.message import EmailMessage

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIGNER = TokenSigner([SigningKey("k1", b"integration-test-secret-32-bytes!")])
BASE = "https://palaute.example.fi"
SURVEY_ID = "s-01JD7Q9X4K2M"
CITIZEN = "matti.meikalainen@example.fi"
SENDER = "palaute@espoo.example.fi"
QUESTIONS = {
    Language.FI: "Kuinka tyytyväinen olit palveluumme tänään?",
    Language.SV: "Hur nöjd var du med vår service i dag?",
    Language.EN: "How satisfied were you with our service today?",
}
GREETINGS = {Language.FI: "Hei,", Language.SV: "Hej,", Language.EN: "Hello,"}
ORGANISATION = "Espoon kaupunki \N{EN DASH} Kirjaamo"  # a non-ASCII subject
LINK = re.compile(r"https://palaute\.example\.fi/([ru])/([A-Za-z0-9_-]+)")


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with running_smtp_sink() as server:
        yield server


def _config(port: int, timeout: float = 10.0) -> SmtpConfig:
    return SmtpConfig(
        host=HOST,
        port=port,
        security="none",
        sender=SENDER,
        sender_name="Espoon kaupunki",
        timeout_seconds=timeout,
    )


def _mailer(port: int, unsubscribe_mailbox: str | None = None) -> SmtpMailer:
    return SmtpMailer(_config(port), unsubscribe_mailbox=unsubscribe_mailbox, clock=lambda: NOW)


def _url(kind: str, purpose: TokenPurpose, score: int | None = None) -> str:
    payload = TokenPayload(SURVEY_ID, purpose, NOW + timedelta(days=7), score)
    return f"{BASE}/{kind}/{SIGNER.sign(payload, NOW)}"


def _outgoing(
    language: Language = Language.FI, to: str = CITIZEN, question: str | None = None
) -> OutgoingEmail:
    scale = Scale.CSAT_5
    links = SurveyLinks(
        score_urls={
            score: _url("r", TokenPurpose.SCORE, score)
            for score in range(scale.low, scale.high + 1)
        },
        page_url=_url("r", TokenPurpose.PAGE),
        unsubscribe_url=_url("u", TokenPurpose.UNSUBSCRIBE),
    )
    content = render_email(question or QUESTIONS[language], language, scale, links, ORGANISATION)
    return OutgoingEmail(to=to, content=content, unsubscribe_url=links.unsubscribe_url)


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"] or "")


def _verified(urls: list[str]) -> list[TokenPayload]:
    """Verify the token of every link; fail on any link that is not one of ours."""
    payloads = []
    for url in urls:
        match = LINK.fullmatch(url)
        assert match is not None, url
        payload = SIGNER.verify(match.group(2), NOW)
        assert not isinstance(payload, TokenRejected), (url, payload)
        assert (match.group(1) == "u") == (payload.purpose is TokenPurpose.UNSUBSCRIBE)
        payloads.append(payload)
    return payloads


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    return plain.get_content(), html.get_content()


@pytest.mark.parametrize("language", [Language.FI, Language.SV, Language.EN])
async def test_a_delivered_survey_email_is_complete_in_the_citizens_language(
    sink: SmtpSink, language: Language
) -> None:
    """What a mail client parses must be in the right language, with working signed links."""
    outgoing = _outgoing(language)
    accepted = await _mailer(sink.port).send(outgoing)

    assert len(sink.received) == 1
    delivered = sink.received[0]
    assert delivered.mail_from == SENDER
    assert delivered.rcpt_tos == (CITIZEN,)
    message = delivered.message()

    assert message.get_content_type() == "multipart/alternative"
    assert message["Content-Language"] == language.value
    assert message["Subject"] == outgoing.content.subject
    assert message["From"].addresses[0].display_name == "Espoon kaupunki"
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["To"].addresses[0].addr_spec == CITIZEN
    assert parsedate_to_datetime(message["Date"]) == NOW
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[^<>@\s]+@espoo\.example\.fi>", message["Message-ID"])
    assert accepted.message_id == message["Message-ID"]

    assert message["List-Unsubscribe"] == f"<{outgoing.unsubscribe_url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    plain, html = _parts(message)
    assert plain.startswith(GREETINGS[language])
    assert QUESTIONS[language] in plain
    assert f'<html lang="{language.value}">' in html
    assert f"<p>{GREETINGS[language]}</p>" in html

    hrefs = _Hrefs()
    hrefs.feed(html)
    in_text = _verified([match.group(0) for match in LINK.finditer(plain)])
    in_html = _verified(hrefs.hrefs)
    assert in_text == in_html
    assert [p.score for p in in_html if p.purpose is TokenPurpose.SCORE] == [1, 2, 3, 4, 5]
    assert {p.purpose for p in in_html} == set(TokenPurpose)
    assert {p.survey_id for p in in_html} == {SURVEY_ID}


async def test_headers_go_out_as_ascii_with_encoded_words_and_an_unfolded_unsubscribe_link(
    sink: SmtpSink,
) -> None:
    """Relays without SMTPUTF8 reject raw UTF-8 headers; a folded URL cannot be followed."""
    outgoing = _outgoing(Language.SV)
    await _mailer(sink.port).send(outgoing)
    raw = sink.received[0].data
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    subject = re.search(rb"\r\nSubject: (.*?)\r\n(?! )", head, re.DOTALL)
    assert subject is not None
    assert b"=?utf-8?" in subject.group(1)
    assert f"List-Unsubscribe: <{outgoing.unsubscribe_url}>".encode() in head


async def test_a_mailto_is_offered_next_to_one_click_when_configured(sink: SmtpSink) -> None:
    """Clients without RFC 8058 support fall back to mailing the unsubscribe box."""
    mailer = _mailer(sink.port, unsubscribe_mailbox="peru@espoo.example.fi")
    outgoing = _outgoing()
    await mailer.send(outgoing)
    header = sink.received[0].message()["List-Unsubscribe"]
    assert header == (
        f"<{outgoing.unsubscribe_url}>, <mailto:peru@espoo.example.fi?subject=unsubscribe>"
    )


async def test_an_internationalised_domain_goes_out_in_punycode(sink: SmtpSink) -> None:
    """Finnish domains may carry ä and ö; relays without SMTPUTF8 still take IDNA."""
    await _mailer(sink.port).send(_outgoing(to="matti@ääkköset.fi"))
    assert sink.received[0].rcpt_tos == ("matti@xn--kkset-fraa0m.fi",)


async def test_a_server_that_is_down_gives_a_retriable_error() -> None:
    """A relay outage must delay surveys, not fail them."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    with pytest.raises(MailRetriableError) as caught:
        await _mailer(port).send(_outgoing())
    assert caught.value.retriable
    assert not caught.value.outcome_unknown
    assert isinstance(caught.value, ConnectorError)


async def test_a_server_that_never_greets_times_out_as_retriable() -> None:
    """A hung relay must not hang the dispatcher; nothing was sent, so retrying is safe."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        mailer = SmtpMailer(_config(port, timeout=0.3), clock=lambda: NOW)
        with pytest.raises(MailRetriableError, match="timed out"):
            await mailer.send(_outgoing())
    finally:
        server.close()
        await server.wait_closed()


async def test_a_recipient_refused_with_550_is_permanent_and_names_no_address(
    sink: SmtpSink,
) -> None:
    """A dead mailbox never gets better; and the error goes to logs, so no address in it."""
    sink.recipient_replies[CITIZEN] = f"550 5.1.1 <{CITIZEN}>: Recipient address rejected"
    with pytest.raises(MailRecipientRefusedError) as caught:
        await _mailer(sink.port).send(_outgoing())
    error = caught.value
    assert not error.retriable
    assert error.code == 550
    assert CITIZEN not in str(error)
    assert CITIZEN not in repr(error)
    assert error.__cause__ is None
    assert error.__suppress_context__
    assert sink.received == []


async def test_a_recipient_deferred_with_451_is_retriable(sink: SmtpSink) -> None:
    """4xx means try later: greylisting and full mailboxes clear up."""
    sink.recipient_replies[CITIZEN] = "451 4.7.1 Greylisted, try again later"
    with pytest.raises(MailRetriableError) as caught:
        await _mailer(sink.port).send(_outgoing())
    assert caught.value.code == 451
    assert caught.value.retriable


async def test_a_message_refused_after_data_is_permanent(sink: SmtpSink) -> None:
    """A 5xx for the message itself (content policy) will not change on retry."""
    sink.data_reply = "554 5.7.1 Message rejected"
    with pytest.raises(MailPermanentError) as caught:
        await _mailer(sink.port).send(_outgoing())
    assert not isinstance(caught.value, MailRecipientRefusedError)
    assert caught.value.code == 554
    assert not caught.value.retriable


async def test_a_connection_lost_during_data_leaves_the_outcome_unknown(sink: SmtpSink) -> None:
    """The message may have been accepted: a blind retry could mail the citizen twice."""
    sink.drop_after_data = True
    with pytest.raises(MailOutcomeUnknownError) as caught:
        await _mailer(sink.port).send(_outgoing())
    assert caught.value.outcome_unknown
    assert not caught.value.retriable
    assert len(sink.received) == 1


@pytest.mark.parametrize(
    "hostile_subject_source",
    ["Kirjaamo\r\nBcc: victim@example.org", "Kirjaamo\nBcc: victim@example.org"],
)
async def test_a_line_break_in_a_header_is_refused_before_connecting(
    sink: SmtpSink, hostile_subject_source: str
) -> None:
    """Header injection would let configuration text add recipients or rewrite the body."""
    outgoing = _outgoing()
    hostile = OutgoingEmail(
        to=CITIZEN,
        content=type(outgoing.content)(
            language=outgoing.content.language,
            subject=hostile_subject_source,
            text=outgoing.content.text,
            html=outgoing.content.html,
        ),
        unsubscribe_url=outgoing.unsubscribe_url,
    )
    with pytest.raises(MailInvalidMessageError):
        await _mailer(sink.port).send(hostile)
    assert sink.connections == 0


@pytest.mark.parametrize(
    "to", ["victim@example.org\r\nBcc: other@example.org", "not an address", "mätti@example.fi"]
)
async def test_an_unusable_recipient_is_refused_before_connecting(sink: SmtpSink, to: str) -> None:
    """A bad address is permanent; it must not reach the relay, nor the error text."""
    with pytest.raises(MailInvalidMessageError) as caught:
        await _mailer(sink.port).send(_outgoing(to=to))
    assert isinstance(caught.value, ValueError)
    assert to not in str(caught.value)
    assert sink.connections == 0


def test_an_unusable_sender_is_a_configuration_error() -> None:
    """Found at start-up, not on the first survey."""
    with pytest.raises(MailConfigurationError):
        SmtpMailer(_config(25), unsubscribe_mailbox="not an address")


async def test_no_log_record_carries_the_address(
    sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """Addresses live only where sending needs them; logs are read by many."""
    caplog.set_level(logging.DEBUG)
    mailer = _mailer(sink.port)
    await mailer.send(_outgoing())
    sink.recipient_replies[CITIZEN] = f"550 5.1.1 <{CITIZEN}> unknown"
    with pytest.raises(MailError):
        await mailer.send(_outgoing())
    mailer_records = [r for r in caplog.records if r.name == "connectors.email"]
    assert len(mailer_records) == 2
    for record in mailer_records:
        assert CITIZEN not in record.getMessage()
        assert CITIZEN not in repr(vars(record))
    assert CITIZEN not in repr(_outgoing())


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCertificate:
    return LoopbackCertificate.create(tmp_path_factory.mktemp("smtp-tls"))


RELAY_PASSWORD = "relay-password"


def _tls_config(port: int, security: str, password: str = RELAY_PASSWORD) -> SmtpConfig:
    return SmtpConfig.model_validate(
        {
            "host": HOST,
            "port": port,
            "security": security,
            "sender": SENDER,
            "sender_name": "Espoon kaupunki",
            "username": "palaute",
            "password": SecretStr(password),
            "timeout_seconds": 10.0,
        }
    )


@pytest.mark.parametrize(("security", "implicit"), [("starttls", False), ("tls", True)])
async def test_mail_goes_over_tls_with_credentials(
    certificate: LoopbackCertificate, security: str, *, implicit: bool
) -> None:
    """Production relays take credentials over TLS only, by STARTTLS or from the first byte."""
    async with running_smtp_sink(
        tls_context=certificate.server_context(),
        implicit_tls=implicit,
        credentials=("palaute", "relay-password"),
    ) as sink:
        mailer = SmtpMailer(
            _tls_config(sink.port, security),
            tls_context=certificate.client_context(),
            clock=lambda: NOW,
        )
        await mailer.send(_outgoing())
    assert len(sink.received) == 1
    assert sink.received[0].over_tls
    assert sink.received[0].authenticated_as == "palaute"


async def test_wrong_credentials_are_a_configuration_error(
    certificate: LoopbackCertificate,
) -> None:
    """Every send would fail the same way: operators must fix it, retrying cannot."""
    async with running_smtp_sink(
        tls_context=certificate.server_context(), credentials=("palaute", "relay-password")
    ) as sink:
        mailer = SmtpMailer(
            _tls_config(sink.port, "starttls", password="wrong-password"),
            tls_context=certificate.client_context(),
        )
        with pytest.raises(MailConfigurationError) as caught:
            await mailer.send(_outgoing())
    assert caught.value.code == 535
    assert not caught.value.retriable
    assert sink.received == []


async def test_an_untrusted_relay_certificate_is_a_configuration_error(
    certificate: LoopbackCertificate,
) -> None:
    """Sending citizens' answers links to an impostor relay must fail loudly, not retry."""
    async with running_smtp_sink(
        tls_context=certificate.server_context(), implicit_tls=True
    ) as sink:
        mailer = SmtpMailer(_tls_config(sink.port, "tls"))  # the system trust store
        with pytest.raises(MailConfigurationError, match="certificate"):
            await mailer.send(_outgoing())
    assert sink.received == []


async def test_a_relay_without_starttls_is_refused_when_starttls_is_required(
    sink: SmtpSink,
) -> None:
    """A stripped STARTTLS offer (downgrade) must not send the password in clear."""
    mailer = SmtpMailer(_tls_config(sink.port, "starttls"))
    with pytest.raises(MailConfigurationError):
        await mailer.send(_outgoing())
    assert sink.received == []


@pytest.mark.parametrize(
    ("failure", "during_data", "kind", "retriable"),
    [
        (
            aiosmtplib.SMTPRecipientRefused(550, "no", CITIZEN),
            False,
            MailRecipientRefusedError,
            False,
        ),
        (aiosmtplib.SMTPRecipientRefused(452, "full", CITIZEN), False, MailRetriableError, True),
        (aiosmtplib.SMTPSenderRefused(553, "no", SENDER), False, MailConfigurationError, False),
        (aiosmtplib.SMTPAuthenticationError(535, "bad"), False, MailConfigurationError, False),
        (aiosmtplib.SMTPAuthenticationError(454, "later"), False, MailRetriableError, True),
        (aiosmtplib.SMTPDataError(552, "too big"), True, MailPermanentError, False),
        (aiosmtplib.SMTPDataError(451, "later"), True, MailRetriableError, True),
        (aiosmtplib.SMTPConnectResponseError(421, "busy"), False, MailRetriableError, True),
        (aiosmtplib.SMTPConnectResponseError(554, "no"), False, MailConfigurationError, False),
        (aiosmtplib.SMTPConnectTimeoutError("slow"), False, MailRetriableError, True),
        (aiosmtplib.SMTPReadTimeoutError("slow"), False, MailRetriableError, True),
        (aiosmtplib.SMTPReadTimeoutError("slow"), True, MailOutcomeUnknownError, False),
        (aiosmtplib.SMTPServerDisconnected("gone"), True, MailOutcomeUnknownError, False),
        (ConnectionRefusedError(), False, MailRetriableError, True),
        (aiosmtplib.SMTPException("STARTTLS not supported"), False, MailConfigurationError, False),
    ],
)
def test_every_failure_maps_to_one_meaning(
    failure: Exception, *, during_data: bool, kind: type[MailError], retriable: bool
) -> None:
    """The dispatcher decides retries from this table alone; 4xx always means later."""
    error = mail_error_for(failure, during_data=during_data)
    assert type(error) is kind
    assert error.retriable is retriable
    assert CITIZEN not in str(error)
