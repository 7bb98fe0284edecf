"""Outbound SMS through the official twilio client, with one table of what each error means.

Creating a message has no idempotency key: a request that reached Twilio may
have sent the SMS even if its answer was lost. So this adapter never retries
by itself (its HTTP transport sends each request once, where the stock
``AsyncTwilioHttpClient(max_retries=...)`` would resend POSTs) and says,
for every failure, which of three things holds:

- retriable: Twilio provably did not process the request (429/20429, 503,
  a connection that never opened) and the same request may be sent again;
- permanent: it will never succeed for this recipient (21211 invalid number,
  21610 unsubscribed, ...), or never with this configuration (auth);
- outcome unknown: a timeout, a dropped connection or a 500/502/504 after the
  request was sent; the SMS may be on its way. The dispatcher, which recorded
  its intent before the call, decides; nothing here retries blindly.

Error messages from Twilio quote the phone number, so they are never copied
into our errors or logs: only the code, the HTTP status and our own reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from typing_extensions import override

from connectors.errors import ConnectorError

if TYPE_CHECKING:
    from types import TracebackType

_log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"


class SmsError(ConnectorError):
    """Root of SMS sending errors; ``retriable`` and ``opted_out`` tell the caller what to do.

    ``code`` is Twilio's error code and ``status`` the HTTP status, when known.
    The message never contains the phone number.
    """

    retriable: bool = False
    outcome_unknown: ClassVar[bool] = False
    opted_out: ClassVar[bool] = False

    def __init__(self, reason: str, *, code: int | None = None, status: int | None = None) -> None:
        self.reason = reason
        self.code = code
        self.status = status
        detail = ", ".join(
            part
            for part in (
                f"Twilio error {code}" if code is not None else "",
                f"HTTP {status}" if status is not None else "",
            )
            if part
        )
        super().__init__(f"{reason} ({detail})" if detail else reason)


class SmsRetriableError(SmsError):
    """Twilio did not process the request; sending it again cannot duplicate the SMS."""

    retriable = True


class SmsPermanentError(SmsError):
    """The message will never be accepted for this recipient; do not try again."""


class SmsOptedOutError(SmsPermanentError):
    """The recipient replied STOP: they must not get another SMS from this account."""

    opted_out = True


class SmsConfigurationError(SmsError, ValueError):
    """Our account, sender or credentials are wrong: every send will fail until fixed."""


class SmsOutcomeUnknownError(SmsError):
    """The request may have been processed: the SMS may or may not be on its way.

    Never retried automatically; the caller decides against its record of intent.
    """

    outcome_unknown = True


@dataclass(frozen=True, slots=True)
class _Meaning:
    kind: type[SmsError]
    reason: str


# The one table from Twilio error codes to our errors. Codes not listed fall
# back on the HTTP status (_BY_STATUS), then on the status class.
_BY_CODE: dict[int, _Meaning] = {
    20003: _Meaning(SmsConfigurationError, "authentication with Twilio failed"),
    20429: _Meaning(SmsRetriableError, "Twilio rate limit reached"),
    20500: _Meaning(SmsOutcomeUnknownError, "Twilio internal error"),
    20503: _Meaning(SmsRetriableError, "Twilio temporarily unavailable"),
    21211: _Meaning(SmsPermanentError, "invalid recipient number"),
    21408: _Meaning(SmsPermanentError, "sending to the recipient's region is not permitted"),
    21602: _Meaning(SmsPermanentError, "message body is required"),
    21603: _Meaning(SmsConfigurationError, "no sender configured"),
    21604: _Meaning(SmsPermanentError, "recipient number is required"),
    21606: _Meaning(SmsConfigurationError, "sender number cannot send SMS"),
    21610: _Meaning(SmsOptedOutError, "recipient has unsubscribed"),
    21612: _Meaning(SmsPermanentError, "recipient cannot be reached from this sender"),
    21614: _Meaning(SmsPermanentError, "recipient number is not a mobile number"),
    21617: _Meaning(SmsPermanentError, "message body is too long"),
}
_BY_STATUS: dict[int, _Meaning] = {
    401: _Meaning(SmsConfigurationError, "authentication with Twilio failed"),
    403: _Meaning(SmsConfigurationError, "Twilio refused the account"),
    429: _Meaning(SmsRetriableError, "Twilio rate limit reached"),
    503: _Meaning(SmsRetriableError, "Twilio temporarily unavailable"),
}
_SERVER_ERROR = 500


def error_for(code: int | None, status: int | None) -> SmsError:
    """Map a Twilio error code and HTTP status to our error, through the one table."""
    meaning = _BY_CODE.get(code) if code is not None else None
    if meaning is None and status is not None:
        meaning = _BY_STATUS.get(status)
    if meaning is None:
        if status is not None and status >= _SERVER_ERROR:
            # 500/502/504 may come after the message was created.
            meaning = _Meaning(SmsOutcomeUnknownError, "Twilio server error")
        else:
            meaning = _Meaning(SmsPermanentError, "Twilio refused the message")
    return meaning.kind(meaning.reason, code=code, status=status)


@dataclass(frozen=True, slots=True)
class SmsAccepted:
    """Twilio took the message: its SID, first status and the segments it is billed for."""

    sid: str
    status: str
    segments: int


class SmsGateway(Protocol):
    """Sends one SMS; raises :class:`SmsError` subclasses on failure."""

    async def send(
        self,
        to: str,
        body: str,
        status_callback: str | None,
        *,
        sender_id: str | None = None,
        messaging_service_sid: str | None = None,
    ) -> SmsAccepted:
        """Send ``body`` to ``to`` (E.164); Twilio reports progress to ``status_callback``.

        ``sender_id`` or ``messaging_service_sid`` sends this one message from
        another sender than the gateway's own (an organisation's).
        """
        ...


class RoutedTwilioHttpClient(AsyncHttpClient):  # type: ignore[misc] # untyped base
    """The twilio client's async HTTP transport, aimed at another host and never retrying.

    The twilio client builds every URL on ``https://api.twilio.com``; this
    rewrites that prefix to ``base_url`` (the simulator) when one is set. It
    replaces the stock ``AsyncTwilioHttpClient`` because that one retries POSTs
    when given ``max_retries``, ignores its own client-wide timeout, and uses
    aiohttp's deprecated ``BasicAuth``. Each request is sent exactly once.
    """

    def __init__(self, *, base_url: str | None = None, timeout: float = 10.0) -> None:
        super().__init__(logging.getLogger("twilio.async_http_client"), True, timeout)  # noqa: FBT003 -- the base's positional is_async
        self.base_url = base_url.rstrip("/") if base_url else None
        self._session: aiohttp.ClientSession | None = None

    @override
    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request to the configured host, with a timeout always set."""
        if self.base_url is not None and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        total = timeout if timeout is not None else self.timeout
        self.log_request(
            {"method": method.upper(), "url": url, "params": params, "headers": headers}
        )
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.request(
            method.upper(),
            url,
            params=params,  # type: ignore[arg-type] # the twilio client passes str values
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=total),
            allow_redirects=allow_redirects,
        ) as answer:
            text = await answer.text()
        self.log_response(answer.status, answer)
        return Response(answer.status, text, answer.headers)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class TwilioSmsGateway:
    """Sends SMS with the official twilio client, asynchronously.

    Give either ``from_`` (a number or alphanumeric sender ID) or
    ``messaging_service_sid``. ``base_url`` points the client at another host
    (the simulator in tests and the demo); leave it unset in production.
    Create and use it inside a running event loop; ``await aclose()`` after.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not from_ and not messaging_service_sid:
            raise SmsConfigurationError("a sender (from_ or messaging_service_sid) is required")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._from = from_
        self._messaging_service_sid = messaging_service_sid
        self._base_url = base_url
        self._timeout = timeout
        self._http: RoutedTwilioHttpClient | None = None
        self._client: Client | None = None

    def _twilio(self) -> Client:
        # Built lazily: aiohttp's session must be created inside the running loop.
        if self._client is None:
            self._http = RoutedTwilioHttpClient(base_url=self._base_url, timeout=self._timeout)
            self._client = Client(
                self._account_sid,
                self._auth_token,
                http_client=self._http,
                # Keep TWILIO_EDGE/TWILIO_REGION from the environment out of the URL.
                environment={"PALAUTE": "1"},
            )
        return self._client

    async def send(
        self,
        to: str,
        body: str,
        status_callback: str | None,
        *,
        sender_id: str | None = None,
        messaging_service_sid: str | None = None,
    ) -> SmsAccepted:
        """Create the message once; map every failure to an :class:`SmsError`.

        A ``sender_id`` or ``messaging_service_sid`` given here replaces the
        gateway's own sender for this message (an organisation's sender).
        """
        extra: dict[str, Any] = {}
        if sender_id:
            extra["from_"] = sender_id
        elif messaging_service_sid:
            extra["messaging_service_sid"] = messaging_service_sid
        else:
            if self._from:
                extra["from_"] = self._from
            if self._messaging_service_sid:
                extra["messaging_service_sid"] = self._messaging_service_sid
        if status_callback:
            extra["status_callback"] = status_callback
        try:
            message = await self._twilio().messages.create_async(to=to, body=body, **extra)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = error_for(_int_or_none(exc.code), _int_or_none(exc.status))
            _log.warning("SMS not accepted: %s", error)
            raise error from None  # the vendor's message quotes the number
        except aiohttp.ClientConnectorError:
            # The connection never opened, so nothing was sent.
            _log.warning("SMS not sent: Twilio unreachable")
            raise SmsRetriableError("Twilio unreachable") from None
        except TimeoutError:
            _log.warning("SMS outcome unknown: Twilio did not answer in time")
            raise SmsOutcomeUnknownError("Twilio did not answer in time") from None
        except aiohttp.ClientError as exc:
            _log.warning("SMS outcome unknown: %s", type(exc).__name__)
            raise SmsOutcomeUnknownError(
                f"connection to Twilio failed after sending ({type(exc).__name__})"
            ) from None
        segments = _int_or_none(message.num_segments) or 1
        _log.info("SMS %s accepted, %d segment(s)", message.sid, segments)
        return SmsAccepted(sid=str(message.sid), status=str(message.status), segments=segments)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
