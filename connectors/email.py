"""Outbound survey email through an SMTP relay (aiosmtplib), with one table of what failures mean.

Each message is multipart/alternative (text and HTML in the citizen's
language), with a Message-ID, Content-Language and RFC 8058 one-click
unsubscribe headers. The HTTPS unsubscribe link acts on POST only (the page
serving it is elsewhere): mail security scanners fetch every link with GET.

Failures fall into four kinds, told apart by the SMTP stage and reply code:

- retriable: the relay could not be reached, timed out before the message
  was handed over, or answered 4xx (try later); nothing was delivered;
- permanent: a 5xx for this recipient or this message; never retried;
- configuration: our credentials, sender, TLS or relay are wrong; every send
  fails until an operator fixes it (also a ``ValueError``);
- outcome unknown: the connection dropped or timed out during DATA, after the
  message may have been accepted. Retrying could mail the citizen twice, so the
  caller decides against its record of intent.

Relay replies and aiosmtplib's messages quote the recipient's address, so they
are never copied into our errors or logs: only the reply code and our own
reason. Errors are raised ``from None`` for the same reason.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Protocol

import aiosmtplib
from email_validator import EmailNotValidError, validate_email

from connectors.errors import ConnectorError

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.messages import EmailContent
    from schemas.config import SmtpConfig

logger = logging.getLogger(__name__)

#: Serialising policy: CRLF line ends, RFC 2047 for non-ASCII headers, and lines
#: folded only at RFC 5322's hard limit. The default 78 would fold a long
#: List-Unsubscribe URL into encoded words, which no mail client can follow.
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)
_TRANSIENT_REPLY = range(400, 500)


class MailError(ConnectorError):
    """Root of email sending errors; ``code`` is the SMTP reply code when there was one.

    The message never contains an email address.
    """

    outcome_unknown: bool = False

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        self.reason = reason
        self.code = code
        super().__init__(f"{reason} (SMTP {code})" if code is not None else reason)


class MailRetriableError(MailError):
    """Nothing was delivered and trying again later may succeed."""

    retriable = True


class MailPermanentError(MailError):
    """The relay will never accept this message for this recipient."""


class MailRecipientRefusedError(MailPermanentError):
    """The relay refused the recipient with a 5xx (no such mailbox, domain, policy)."""


class MailInvalidMessageError(MailPermanentError, ValueError):
    """The message cannot be built: a bad recipient address, or a line break in a header."""


class MailConfigurationError(MailError, ValueError):
    """Credentials, sender, TLS or the relay itself are wrong; every send fails until fixed."""


class MailOutcomeUnknownError(MailError):
    """The connection failed during DATA: the message may or may not have been accepted."""

    outcome_unknown = True


@dataclass(frozen=True, slots=True)
class _Meaning:
    kind: type[MailError]
    reason: str


#: What each failure means when the relay gave a 5xx or no reply at all; a 4xx
#: reply always makes it retriable. First match wins, so subclasses come first.
_MEANINGS: tuple[tuple[type[BaseException], _Meaning], ...] = (
    (
        ssl.SSLCertVerificationError,
        _Meaning(MailConfigurationError, "the relay's TLS certificate did not verify"),
    ),
    (
        aiosmtplib.SMTPAuthenticationError,
        _Meaning(MailConfigurationError, "the relay refused our credentials"),
    ),
    (
        aiosmtplib.SMTPSenderRefused,
        _Meaning(MailConfigurationError, "the relay refused the sender address"),
    ),
    (
        aiosmtplib.SMTPRecipientRefused,
        _Meaning(MailRecipientRefusedError, "the relay refused the recipient"),
    ),
    (
        aiosmtplib.SMTPRecipientsRefused,
        _Meaning(MailRecipientRefusedError, "the relay refused the recipient"),
    ),
    (aiosmtplib.SMTPDataError, _Meaning(MailPermanentError, "the relay refused the message")),
    (
        aiosmtplib.SMTPConnectResponseError,
        _Meaning(MailConfigurationError, "the relay refused the connection"),
    ),
    (aiosmtplib.SMTPHeloError, _Meaning(MailConfigurationError, "the relay refused our greeting")),
    (
        aiosmtplib.SMTPNotSupported,
        _Meaning(MailConfigurationError, "the relay lacks STARTTLS or AUTH, which we require"),
    ),
    (aiosmtplib.SMTPTimeoutError, _Meaning(MailRetriableError, "the relay timed out")),
    (aiosmtplib.SMTPServerDisconnected, _Meaning(MailRetriableError, "the relay disconnected")),
    (aiosmtplib.SMTPConnectError, _Meaning(MailRetriableError, "could not connect to the relay")),
    (OSError, _Meaning(MailRetriableError, "could not connect to the relay")),
    (aiosmtplib.SMTPResponseException, _Meaning(MailPermanentError, "the relay refused")),
    # aiosmtplib raises the bare base class when the relay lacks STARTTLS or AUTH.
    (
        aiosmtplib.SMTPException,
        _Meaning(MailConfigurationError, "the relay does not offer STARTTLS or AUTH as required"),
    ),
)


def mail_error_for(exc: BaseException, *, during_data: bool = False) -> MailError:
    """Translate a failure into our error, through the one table above.

    ``during_data`` says the message was being handed over: a lost connection
    or timeout then leaves the outcome unknown instead of retriable.
    """
    code = _reply_code(exc)
    if during_data and isinstance(exc, aiosmtplib.SMTPServerDisconnected | TimeoutError):
        return MailOutcomeUnknownError("the connection failed while the message was handed over")
    meaning = _meaning(exc)
    if code in _TRANSIENT_REPLY:
        return MailRetriableError(f"{meaning.reason}, temporarily", code=code)
    return meaning.kind(meaning.reason, code=code)


def _meaning(exc: BaseException) -> _Meaning:
    # A certificate failure arrives wrapped in a connect error: look at the causes too.
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__
    for error_type, meaning in _MEANINGS:
        if any(isinstance(link, error_type) for link in chain):
            return meaning
    return _Meaning(MailRetriableError, "the SMTP exchange failed")


def _reply_code(exc: BaseException) -> int | None:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return exc.recipients[0].code
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code
    return None


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One survey email to one citizen. The address is left out of the repr, and so of logs."""

    to: str = field(repr=False)
    content: EmailContent
    unsubscribe_url: str


@dataclass(frozen=True, slots=True)
class MailAccepted:
    """The relay took the message; ``message_id`` goes into SurveySent.provider_message_id."""

    message_id: str


class Mailer(Protocol):
    """Sends one survey email; raises MailError subclasses saying what to do next."""

    async def send(self, message: OutgoingEmail) -> MailAccepted:
        """Hand the message to the relay."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SmtpMailer:
    """A Mailer on one SMTP relay; a fresh connection per message keeps failures independent.

    ``message_id_domain`` defaults to the sender's domain, so Message-IDs are
    recognisably ours without revealing the host name. ``unsubscribe_mailbox``
    adds a mailto: to List-Unsubscribe for clients that do not do one-click.
    ``tls_context`` replaces the system trust store (private CAs, tests).
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        message_id_domain: str | None = None,
        unsubscribe_mailbox: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._config = config
        try:
            self._sender = Address(
                display_name=config.sender_name or "",
                addr_spec=_ascii_address(config.sender),
            )
            self._unsubscribe_mailbox = (
                None if unsubscribe_mailbox is None else _ascii_address(unsubscribe_mailbox)
            )
        except ValueError:
            raise MailConfigurationError(
                "the sender or unsubscribe address cannot be used in headers"
            ) from None
        self._domain = message_id_domain or self._sender.domain
        self._tls_context = tls_context
        self._clock = clock

    def build(self, message: OutgoingEmail) -> EmailMessage:
        """Build the MIME message; raises MailInvalidMessageError for a bad address or header.

        ``EmailMessage`` refuses CR and LF in header values, so no text from a
        touchpoint's configuration can add a header (Bcc:) or start the body.
        """
        content = message.content
        if not message.unsubscribe_url.startswith(("https://", "http://")):
            raise MailInvalidMessageError("the unsubscribe link must be an http(s) URL")
        try:
            recipient = Address(addr_spec=_ascii_address(message.to))
            email = EmailMessage(policy=policy.default)
            email["From"] = self._sender
            email["To"] = recipient
            email["Subject"] = content.subject
            email["Date"] = format_datetime(self._clock())
            email["Message-ID"] = make_msgid(domain=self._domain)
            email["List-Unsubscribe"] = self._list_unsubscribe(message.unsubscribe_url)
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            email["Auto-Submitted"] = "auto-generated"
            # Keeps Exchange from sending out-of-office replies to a no-reply sender.
            email["X-Auto-Response-Suppress"] = "All"
            email.set_content(content.text, cte="quoted-printable")
            email.add_alternative(content.html, subtype="html", cte="quoted-printable")
            # Last: setting the content clears every Content-* header set before it.
            email["Content-Language"] = content.language.value
        except ValueError:
            raise MailInvalidMessageError(
                "the message cannot be built (bad address, or a line break in a header)"
            ) from None
        return email

    async def send(self, message: OutgoingEmail) -> MailAccepted:
        """Send one message over a new connection; see the module docstring for the errors."""
        email = self.build(message)
        message_id = str(email["Message-ID"])
        wire = email.as_bytes(policy=WIRE_POLICY)
        envelope_to = email["To"].addresses[0].addr_spec
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            username=config.username,
            password=None if config.password is None else config.password.get_secret_value(),
            timeout=config.timeout_seconds,
            local_hostname=self._domain,
            tls_context=self._tls_context,
        )
        during_data = False
        try:
            await client.connect()
            await client.mail(self._sender.addr_spec)
            await client.rcpt(envelope_to)
            during_data = True
            await client.data(wire)
        except (aiosmtplib.SMTPException, OSError) as exc:
            error = mail_error_for(exc, during_data=during_data)
            logger.warning(
                "mail not sent: %s",
                error.reason,
                extra={"smtp_code": error.code, "retriable": error.retriable},
            )
            raise error from None
        finally:
            await _close(client)
        logger.info("mail accepted by the relay", extra={"message_id": message_id})
        return MailAccepted(message_id=message_id)

    def _list_unsubscribe(self, url: str) -> str:
        links = [f"<{url}>"]
        if self._unsubscribe_mailbox is not None:
            links.append(f"<mailto:{self._unsubscribe_mailbox}?subject=unsubscribe>")
        return ", ".join(links)


async def _close(client: aiosmtplib.SMTP) -> None:
    """Say QUIT politely; a failure here changes nothing about the message."""
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def _ascii_address(address: str) -> str:
    """Normalise an address to ASCII (IDNA for the domain); ValueError if it cannot be.

    A non-ASCII local part would need SMTPUTF8 end to end, which relays do not
    promise; such a citizen gets SMS or no survey rather than a bounce.
    """
    try:
        validated = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("not a valid email address") from None
    if validated.ascii_email is None:
        raise ValueError("the address needs SMTPUTF8")
    return validated.ascii_email
