"""The scheduler's executor: hand a composed survey message to Twilio or the SMTP relay, once.

:class:`Deliveries` carries out a
:class:`~streams.stages.dispatch_records.SendSurvey` command: it counts the
call in the channel's send window, asks a :class:`Senders` to send, maps
any error onto what the lifecycle needs to know (:func:`outcome_of`), and
gives back the outcome as a record for the survey's partition
(:func:`streams.stages.dispatch.outcome_record`). The runtime calls it only
once the survey is stored as DISPATCHING and that is acknowledged
(:meth:`streams.runtime.checkpoint.Checkpoint.carry_out`).

:class:`ProviderSenders` is the real one (the twilio client, aiosmtplib);
the in-memory behaviour tests give a recorder of sends instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from connectors.email import MailConfigurationError, MailError, OutgoingEmail, SmtpMailer
from connectors.sms import SmsConfigurationError, SmsError, TwilioSmsGateway
from engine.lifecycle import Accepted, ProviderOutcome, Refused, Transient, Unknown
from schemas.base import SurveyChannel
from streams.stages.dispatch import outcome_record
from streams.stages.dispatch_records import SendSurvey, SmsMessage

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from schemas.config import Settings
    from streams.runtime.model import Produce
    from streams.scheduling import Pacer

log = logging.getLogger(__name__)


def outcome_of(error: Exception) -> ProviderOutcome:
    """Map a connector's error onto what the lifecycle needs to know."""
    if isinstance(error, SmsError | MailError):
        if error.outcome_unknown:
            return Unknown(error.reason)
        if error.retriable or isinstance(error, SmsConfigurationError | MailConfigurationError):
            # Configuration errors (credentials, sender) last until an operator
            # fixes them: the surveys wait, as during an outage.
            return Transient(error.reason)
        opted_out = isinstance(error, SmsError) and error.opted_out
        return Refused(error.reason, None if error.code is None else str(error.code), opted_out)
    return Unknown(f"unexpected {type(error).__name__}")


class Senders(Protocol):
    """Whatever hands a composed message to its channel's provider."""

    async def send(self, command: SendSurvey) -> ProviderOutcome:
        """Send once; a connector error raised here is mapped by :func:`outcome_of`."""


@dataclass
class ProviderSenders:
    """The outside systems, built lazily inside the running loop."""

    settings: Settings
    _sms: TwilioSmsGateway | None = None
    _mail: SmtpMailer | None = None

    def sms(self) -> TwilioSmsGateway | None:
        """Give the Twilio gateway, or None when ``[twilio]`` is not configured."""
        twilio = self.settings.twilio
        if self._sms is None and twilio is not None:
            self._sms = TwilioSmsGateway(
                account_sid=twilio.account_sid,
                auth_token=twilio.auth_token.get_secret_value(),
                from_=twilio.from_number or twilio.sender_id,
                messaging_service_sid=twilio.messaging_service_sid,
                base_url=None if twilio.api_base_url is None else str(twilio.api_base_url),
            )
        return self._sms

    def mail(self) -> SmtpMailer | None:
        """Give the SMTP mailer, or None when ``[smtp]`` is not configured."""
        if self._mail is None and self.settings.smtp is not None:
            self._mail = SmtpMailer(self.settings.smtp)
        return self._mail

    async def send(self, command: SendSurvey) -> ProviderOutcome:
        """Send by the command's channel; a channel with no provider configured waits."""
        message = command.message
        if isinstance(message, SmsMessage):
            gateway = self.sms()
            if gateway is None:
                return Transient("no SMS provider configured")
            accepted = await gateway.send(
                message.to,
                message.body,
                message.status_callback,
                sender_id=message.sender_id,
                messaging_service_sid=message.messaging_service_sid,
            )
            return Accepted(accepted.sid, accepted.segments)
        mailer = self.mail()
        if mailer is None:
            return Transient("no SMTP relay configured")
        email = OutgoingEmail(
            to=message.to, content=message.content, unsubscribe_url=message.unsubscribe_url
        )
        return Accepted((await mailer.send(email)).message_id)

    async def aclose(self) -> None:
        """Close the Twilio client's HTTP session (the mailer connects per message)."""
        if self._sms is not None:
            await self._sms.aclose()
            self._sms = None


class Deliveries:
    """The executor of the scheduler's commands: one provider call each, its outcome fed back."""

    def __init__(
        self,
        senders: Senders,
        pacer: Pacer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._senders = senders
        self._pacer = pacer
        self._clock = clock

    async def __call__(self, command: Any) -> Sequence[Produce]:
        """Carry out one send; every failure ends in a recorded outcome."""
        if not isinstance(command, SendSurvey):
            return ()
        window = self._pacer.windows[SurveyChannel(command.channel)]
        window.started()
        try:
            outcome = await self._senders.send(command)
        except Exception as error:  # noqa: BLE001 - every failure must end in a recorded outcome
            if not isinstance(error, SmsError | MailError):
                log.warning(
                    "survey %s: unexpected %s while sending",
                    command.survey_id,
                    type(error).__name__,
                )
            outcome = outcome_of(error)
        finally:
            window.ended(self._pacer.monotonic())
        return (outcome_record(command, outcome, self._clock()),)
