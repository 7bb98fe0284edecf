"""Alert notifiers: an email to the operations mailbox and a signed JSON webhook.

Both sit behind :class:`AlertNotifier` (one method), so the alerting stage
neither knows nor cares where an alert goes. An alert names a touchpoint,
figures and evidence only: nothing here ever holds a citizen's phone number
or address, and the only mailbox is the operations team's own.

The webhook owns its retries, unlike the survey connectors: a notification
is idempotent for the receiver (it carries ``alert_id`` and ``state``), so a
repeat after a lost answer is harmless, and ops tools (Slack, Teams, an
incident manager) are the usual flaky receivers. A 5xx, a 429, a timeout or a
refused connection is tried again after an exponentially growing, jittered
pause; any other 4xx means the receiver will never take this body and is not
retried.

Signature: ``X-Palaute-Signature: sha256=<hex>`` is HMAC-SHA256 with the
configured secret over ``<timestamp>.<body>``, where the timestamp is the
``X-Palaute-Timestamp`` header (Unix seconds). Receivers recompute it over
the raw body and refuse old timestamps, which stops replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC
from email.message import EmailMessage
from typing import TYPE_CHECKING, Final, Protocol

import aiohttp
import aiosmtplib

from connectors.email import mail_error_for
from connectors.errors import ConnectorError
from engine.alert_text import AlertWords, explain
from schemas.alerts import AlertState

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable
    from datetime import tzinfo

    from schemas.alerts import ScoreDropAlert
    from schemas.config import SmtpConfig

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Palaute-Signature"
TIMESTAMP_HEADER = "X-Palaute-Timestamp"
_TOO_MANY_REQUESTS = 429
_CLIENT_ERRORS = range(400, 500)


class NotifierError(ConnectorError):
    """An alert could not be delivered; ``retriable`` says whether later may work."""


class WebhookRejectedError(NotifierError):
    """The receiver answered 4xx: this body will never be taken."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the webhook receiver refused the alert with HTTP {status}")
        self.status = status


class WebhookUnavailableError(NotifierError):
    """Every attempt failed with a 5xx, a timeout or no connection."""

    retriable = True


class AlertNotifier(Protocol):
    """Delivers one alert somewhere operations will see it."""

    @property
    def name(self) -> str:
        """A short name for logs and metrics: ``email``, ``webhook``."""
        ...

    async def notify(self, alert: ScoreDropAlert) -> None:
        """Deliver, or raise :class:`NotifierError`."""
        ...


def _same_name(touchpoint_id: str, _language: str) -> str:
    return touchpoint_id


@dataclass(frozen=True, slots=True)
class AlertWording:
    """How notifications tell an alert: the language, the time zone and touchpoint names.

    The same :func:`engine.alert_text.explain` writes the dashboard's alerts,
    so a person reads the same sentence in the mail, the chat and the page.
    """

    language: str = "en"
    zone: tzinfo = UTC
    name: Callable[[str, str], str] = _same_name

    def words(self, alert: ScoreDropAlert) -> AlertWords:
        """Tell the alert in this wording's language."""
        touchpoint = self.name(alert.touchpoint_id, self.language)
        return explain(alert, self.language, zone=self.zone, touchpoint=touchpoint)


_DASHBOARD = {"fi": "Hallintanäkymä", "sv": "Översikt", "en": "Dashboard"}


def summary_text(alert: ScoreDropAlert, wording: AlertWording | None = None) -> str:
    """Summarise an alert in one message that Slack and Teams render as is.

    Plain text with the link on its own, so both render it and both make the
    link clickable; no markup that one of them would show literally. The
    ``[FIRING]``/``[RESOLVED]`` tag stays in English for mail filters.
    """
    wording = wording or AlertWording()
    head = "RESOLVED" if alert.state is AlertState.RESOLVED else "FIRING"
    words = wording.words(alert)
    lines = [f"[{head}] {words.lines()[0]}", *words.lines()[1:]]
    if alert.dashboard_url:
        label = _DASHBOARD.get(wording.language, _DASHBOARD["en"])
        lines.append(f"{label}: {alert.dashboard_url}")
    return "\n".join(lines)


def webhook_body(alert: ScoreDropAlert, wording: AlertWording | None = None) -> bytes:
    """Serialise every field of the alert plus ``text``, the chat-friendly summary."""
    payload = {**alert.model_dump(mode="json"), "text": summary_text(alert, wording)}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Compute the signature header's value over ``<timestamp>.<body>``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def backoff_delays(
    attempts: int,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    rng: Callable[[], float] = random.random,
) -> list[float]:
    """Pauses between attempts: doubling from ``base``, capped, with full jitter.

    Full jitter (a uniform share of the doubled pause) keeps many workers
    that failed together from retrying together.
    """
    return [min(cap, base * 2**n) * (0.5 + rng() / 2) for n in range(max(attempts - 1, 0))]


class WebhookNotifier:
    """POSTs each alert as signed JSON to one URL."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout: float = 10.0,
        attempts: int = 5,
        base_delay: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        wording: AlertWording | None = None,
    ) -> None:
        self._wording = wording or AlertWording()
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep
        self._clock = clock

    async def notify(self, alert: ScoreDropAlert) -> None:
        """Deliver with retries; raise WebhookRejectedError or WebhookUnavailableError."""
        body = webhook_body(alert, self._wording)
        delays = backoff_delays(self._attempts, base=self._base_delay)
        last = "no attempt"
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            for attempt in range(self._attempts):
                if attempt:
                    await self._sleep(delays[attempt - 1])
                timestamp = str(int(self._clock()))
                headers = {
                    "Content-Type": "application/json",
                    TIMESTAMP_HEADER: timestamp,
                    SIGNATURE_HEADER: signature(self._secret, timestamp, body),
                }
                try:
                    async with session.post(self._url, data=body, headers=headers) as response:
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    last = type(error).__name__
                    logger.warning("webhook attempt %d failed: %s", attempt + 1, last)
                    continue
                if status < 300:  # noqa: PLR2004 - any 2xx is success
                    return
                if status in _CLIENT_ERRORS and status != _TOO_MANY_REQUESTS:
                    raise WebhookRejectedError(status)
                last = f"HTTP {status}"
                logger.warning("webhook attempt %d failed: %s", attempt + 1, last)
        raise WebhookUnavailableError(
            f"the webhook receiver failed {self._attempts} attempts (last: {last})"
        )


class EmailNotifier:
    """Mails each alert to the operations mailbox over the configured relay."""

    name = "email"

    def __init__(
        self,
        smtp: SmtpConfig,
        to: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        wording: AlertWording | None = None,
    ) -> None:
        self._wording = wording or AlertWording()
        self._smtp = smtp
        self._to = to
        self._tls_context = tls_context

    def build(self, alert: ScoreDropAlert) -> EmailMessage:
        """Build the message: a subject that sorts and filters well, the summary as the body."""
        head = "RESOLVED" if alert.state is AlertState.RESOLVED else "FIRING"
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = self._to
        words = self._wording.words(alert)
        message["Subject"] = (
            f"[Palaute {head}] {words.title}: {words.touchpoint} ({words.severity})"
        )
        message["Auto-Submitted"] = "auto-generated"
        message["X-Palaute-Alert-Id"] = alert.alert_id
        message.set_content(
            summary_text(alert, self._wording) + "\n\n" + _details(alert, self._wording)
        )
        return message

    async def notify(self, alert: ScoreDropAlert) -> None:
        """Send one message; raise NotifierError (retriable or not) on failure."""
        smtp = self._smtp
        try:
            await aiosmtplib.send(
                self.build(alert),
                hostname=smtp.host,
                port=smtp.port,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                username=smtp.username,
                password=None if smtp.password is None else smtp.password.get_secret_value(),
                timeout=smtp.timeout_seconds,
                tls_context=self._tls_context,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            mail_error = mail_error_for(exc)
            error = NotifierError(f"alert mail not sent: {mail_error.reason}")
            error.retriable = mail_error.retriable
            raise error from None


_DETAILS: Final = {
    "fi": ("hälytyksen tunnus", "tila", "alkoi", "päättyi", "ennen", "jälkeen", "vastauksia"),
    "sv": ("larmets id", "status", "började", "slutade", "före", "efter", "svar"),
    "en": ("alert id", "state", "started", "resolved", "before", "after", "sample size"),
}


def _details(alert: ScoreDropAlert, wording: AlertWording) -> str:
    """List the alert's identifiers and raw figures under the text, for the follow-up."""
    labels = _DETAILS.get(wording.language, _DETAILS["en"])
    zone = wording.zone
    values = (
        alert.alert_id,
        wording.words(alert).state,
        alert.started_at.astimezone(zone).isoformat(timespec="minutes"),
        alert.resolved_at.astimezone(zone).isoformat(timespec="minutes")
        if alert.resolved_at
        else "-",
        "-" if alert.before is None else f"{alert.before:g}",
        "-" if alert.after is None else f"{alert.after:g}",
        str(alert.sample_size),
    )
    return "\n".join(f"{label}: {value}" for label, value in zip(labels, values, strict=True))


async def notify_all(notifiers: list[AlertNotifier], alert: ScoreDropAlert) -> dict[str, str]:
    """Deliver to every notifier; one failing never stops the others.

    Returns the failures by notifier name (empty when all delivered).
    """
    failures: dict[str, str] = {}
    for notifier in notifiers:
        try:
            await notifier.notify(alert)
        except NotifierError as error:
            failures[notifier.name] = str(error)
            logger.warning("alert %s not delivered by %s: %s", alert.alert_id, notifier.name, error)
    return failures
