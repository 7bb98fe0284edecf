"""A Twilio API simulator: the Messages resource of the 2010-04-01 REST API over aiohttp.

Tests and the demo point the real twilio client at it, so the dispatcher runs
the same code it runs against Twilio. It answers with Twilio's shapes and
error codes, signs its status callbacks and inbound webhooks as Twilio does,
records every API exchange for the contract test, and injects faults on
request. Phone numbers stay in its state (a test needs them) and out of its logs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import phonenumbers
from aiohttp import web
from twilio.request_validator import RequestValidator

from connectors.sms_segments import count_segments
from connectors.twilio_sim import resources
from connectors.twilio_sim.faults import Fault, FaultMode, TokenBucket

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

_log = logging.getLogger(__name__)

API_PREFIX = f"/{resources.API_VERSION}/"
MAX_BODY = 1600
# Twilio's default opt-out and opt-in keywords for long codes.
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
_FAULT_ERRORS = {
    FaultMode.HTTP_429: resources.TOO_MANY_REQUESTS,
    FaultMode.HTTP_500: resources.INTERNAL,
    FaultMode.HTTP_503: resources.UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class RecordedExchange:
    """One API request as received and the response as given, byte for byte."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    content_type: str
    body: bytes
    status: int
    response_content_type: str
    response_body: bytes


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """A signed POST the simulator made: a status callback or an inbound webhook."""

    url: str
    params: Mapping[str, str]
    signature: str
    idempotency_token: str
    status: int | None
    error: str | None = None
    response_text: str = ""


@dataclass(frozen=True, slots=True)
class InboundDelivery:
    """What happened to a simulated inbound SMS: its SID and each webhook attempt."""

    sid: str
    attempts: tuple[CallbackAttempt, ...]


@dataclass(slots=True)
class SimulatorConfig:
    """How the simulated account behaves.

    ``delivery_failures`` maps a recipient number to the 30xxx error its
    messages end with; ``permitted_countries`` (ISO 3166 codes) limits where
    the account may send, as Twilio's geographic permissions do (21408).
    """

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "simulator-auth-token"  # noqa: S105 -- a local simulator's default, not a secret
    sms_number: str = "+358451234567"
    inbound_url: str | None = None
    rate_limit_per_second: float | None = None
    callback_delay: float = 0.05
    permitted_countries: frozenset[str] | None = None
    delivery_failures: dict[str, int] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Outbound:
    resource: dict[str, Any]
    status_callback: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _json(status: int, payload: object) -> web.Response:
    return web.json_response(payload, status=status)


def _error(error: resources.ApiError) -> web.Response:
    return _json(error.status, error.body())


class TwilioSimulator:
    """The embeddable simulator: ``await start()``, point a client at ``url``, ``await stop()``."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.exchanges: list[RecordedExchange] = []
        # (method, path) of each API request on arrival, before any answer (or hang).
        self.arrivals: list[tuple[str, str]] = []
        self.callbacks: list[CallbackAttempt] = []
        self._messages: dict[str, _Outbound] = {}
        self._faults: list[Fault] = []
        self._bucket = (
            TokenBucket(self.config.rate_limit_per_second)
            if self.config.rate_limit_per_second
            else None
        )
        self._validator = RequestValidator(self.config.auth_token)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url: str | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL the twilio client should be pointed at."""
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    def build_app(self) -> web.Application:
        """Build the aiohttp application (also usable with aiohttp's test server)."""
        app = web.Application(middlewares=[self._record])
        account = f"{API_PREFIX}Accounts/{{account_sid}}"
        app.router.add_post(f"{account}/Messages.json", self._create_message)
        app.router.add_get(f"{account}/Messages.json", self._list_messages)
        app.router.add_get(f"{account}/Messages/{{sid}}.json", self._fetch_message)
        app.router.add_route("*", f"{API_PREFIX}{{tail:.*}}", self._not_found)
        app.router.add_get("/_sim/messages", self._admin_messages)
        app.router.add_get("/_sim/requests", self._admin_requests)
        app.router.add_get("/_sim/faults", self._admin_faults)
        app.router.add_post("/_sim/faults", self._admin_add_fault)
        app.router.add_delete("/_sim/faults", self._admin_clear_faults)
        app.router.add_post("/_sim/inbound", self._admin_inbound)
        app.router.add_post("/_sim/unsubscribed", self._admin_unsubscribe)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port) and return the base URL."""
        self._stopping.clear()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._runner = web.AppRunner(self.build_app(), shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self._url = f"http://{host}:{bound_port}"
        _log.info("Twilio simulator listening on %s", self._url)
        return self._url

    async def stop(self) -> None:
        """Stop serving; pending callbacks and hanging responses are abandoned."""
        self._stopping.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._url = None

    async def settle(self) -> None:
        """Wait until every message has reached its final status and every callback is sent.

        Wrap it in ``asyncio.timeout`` where a hang must fail a test.
        """
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- state for tests and the demo ---------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message the simulator holds, oldest first, as Twilio would return it."""
        return [dict(outbound.resource) for outbound in self._messages.values()]

    def message(self, sid: str) -> dict[str, Any]:
        """Return one message by SID."""
        return dict(self._messages[sid].resource)

    def api_requests(self, method: str = "POST", suffix: str = "/Messages.json") -> int:
        """Count the API requests received, by method and path ending, answered or not."""
        return sum(1 for verb, path in self.arrivals if verb == method and path.endswith(suffix))

    def inject_fault(
        self,
        mode: FaultMode | str,
        *,
        count: int | None = None,
        seconds: float | None = None,
        hang: float = 30.0,
    ) -> Fault:
        """Make the next ``count`` API requests (or those for ``seconds``) fail as ``mode``."""
        fault = Fault(FaultMode(mode), count=count, seconds=seconds, hang=hang)
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def unsubscribe(self, number: str) -> None:
        """Put a number on the account's opt-out list, as a STOP reply does."""
        self.config.unsubscribed.add(number)

    # -- the API -------------------------------------------------------------

    @web.middleware
    async def _record(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        self.arrivals.append((request.method, request.path))
        body = await request.read()
        response = await handler(request)
        sent = response.body if isinstance(response, web.Response) else b""
        self.exchanges.append(
            RecordedExchange(
                method=request.method,
                path=request.path,
                query_string=request.query_string,
                headers=dict(request.headers),
                content_type=request.headers.get("Content-Type", ""),
                body=body,
                status=response.status,
                response_content_type=response.headers.get("Content-Type", ""),
                response_body=sent if isinstance(sent, bytes) else b"",
            )
        )
        return response

    def _active_fault(self) -> Fault | None:
        self._faults = [fault for fault in self._faults if fault.active]
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.consume()
        return fault

    def _authenticated(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            secrets.compare_digest(user, self.config.account_sid)
            and secrets.compare_digest(password, self.config.auth_token)
            and request.match_info.get("account_sid") == self.config.account_sid
        )

    async def _hang(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _gate(self, request: web.Request) -> tuple[web.Response | None, Fault | None]:
        """Apply faults and authentication; return an error response, or the hang to apply."""
        fault = self._active_fault()
        if fault is not None and fault.mode in _FAULT_ERRORS:
            return _error(_FAULT_ERRORS[fault.mode]), None
        if not self._authenticated(request):
            return _error(resources.AUTHENTICATION), None
        return None, fault

    @staticmethod
    def _missing(form: Mapping[str, str]) -> resources.ApiError | None:
        body = form.get("Body", "")
        if not form.get("To", "").strip():
            return resources.TO_REQUIRED
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return resources.FROM_REQUIRED
        if not body and not form.get("MediaUrl"):
            return resources.BODY_REQUIRED
        if len(body) > MAX_BODY:
            return resources.BODY_TOO_LONG
        return None

    def _validate(self, form: Mapping[str, str]) -> resources.ApiError | None:
        missing = self._missing(form)
        if missing is not None:
            return missing
        to = form["To"].strip()
        try:
            number = phonenumbers.parse(to, None)
        except phonenumbers.NumberParseException:
            return resources.invalid_to(to)
        if not phonenumbers.is_valid_number(number):
            return resources.invalid_to(to)
        permitted = self.config.permitted_countries
        if permitted is not None and phonenumbers.region_code_for_number(number) not in permitted:
            return resources.region_not_permitted(to)
        if to in self.config.unsubscribed:
            return resources.UNSUBSCRIBED
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        refused, fault = await self._gate(request)
        if refused is not None:
            return refused
        if self._bucket is not None and not self._bucket.take():
            return _error(resources.TOO_MANY_REQUESTS)
        form = {
            key: value for key, value in (await request.post()).items() if isinstance(value, str)
        }
        invalid = self._validate(form)
        if invalid is not None:
            _log.info("message refused with %d", invalid.code)
            return _error(invalid)
        body = form.get("Body", "")
        new = resources.NewMessage(
            account_sid=self.config.account_sid,
            to=form["To"].strip(),
            from_=form.get("From") or None,
            messaging_service_sid=form.get("MessagingServiceSid") or None,
            body=body,
            num_segments=max(count_segments(body).segments, 1),
        )
        sid = resources.new_sid("SM")
        resource = resources.message_resource(new, sid, _now())
        outbound = _Outbound(resource, form.get("StatusCallback") or None)
        self._messages[sid] = outbound
        _log.info("message %s queued", sid)
        self._spawn(self._deliver(outbound))
        if fault is not None:  # a timeout: created, but the answer comes too late
            await self._hang(fault.hang)
        return _json(201, resource)

    async def _fetch_message(self, request: web.Request) -> web.Response:
        refused, fault = await self._gate(request)
        if refused is not None:
            return refused
        if fault is not None:
            await self._hang(fault.hang)
        outbound = self._messages.get(request.match_info["sid"])
        if outbound is None:
            return _error(resources.NOT_FOUND)
        return _json(200, outbound.resource)

    async def _list_messages(self, request: web.Request) -> web.Response:
        refused, fault = await self._gate(request)
        if refused is not None:
            return refused
        if fault is not None:
            await self._hang(fault.hang)
        to, from_ = request.query.get("To"), request.query.get("From")
        chosen = [
            outbound.resource
            for outbound in reversed(self._messages.values())
            if (to is None or outbound.resource["to"] == to)
            and (from_ is None or outbound.resource["from"] == from_)
        ]
        try:
            page_size = min(max(int(request.query.get("PageSize", "50")), 1), 1000)
        except ValueError:
            page_size = 50
        return _json(200, resources.message_page(self.config.account_sid, chosen, page_size))

    async def _not_found(self, request: web.Request) -> web.Response:
        refused, _ = await self._gate(request)
        return refused or _error(resources.NOT_FOUND)

    # -- status callbacks and inbound webhooks ------------------------------

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_signed(self, url: str, params: dict[str, str], token: str) -> CallbackAttempt:
        """POST a form the way Twilio does: signed with the auth token over URL and params."""
        signature = self._validator.compute_signature(url, params)
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": "TwilioProxy/1.1",
        }
        if self._session is None:
            raise RuntimeError("the simulator is not started")
        try:
            async with self._session.post(url, data=params, headers=headers) as response:
                text = await response.text()
                attempt = CallbackAttempt(
                    url, params, signature, token, response.status, None, text
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            attempt = CallbackAttempt(url, params, signature, token, None, type(exc).__name__)
        self.callbacks.append(attempt)
        return attempt

    async def _deliver(self, outbound: _Outbound) -> None:
        """Move a message queued → sent → delivered (or a failure), calling back at each step."""
        resource = outbound.resource
        failure = self.config.delivery_failures.get(resource["to"])
        await self._status(outbound, "queued", None)
        await asyncio.sleep(self.config.callback_delay)
        resource["date_sent"] = resources.rfc2822(_now())
        await self._status(outbound, "sent", None)
        await asyncio.sleep(self.config.callback_delay)
        if failure is None:
            await self._status(outbound, "delivered", None)
        else:
            final = "failed" if failure in resources.FAILED_DELIVERY_CODES else "undelivered"
            await self._status(outbound, final, failure)

    async def _status(self, outbound: _Outbound, status: str, error_code: int | None) -> None:
        resource = outbound.resource
        resource["status"] = status
        resource["date_updated"] = resources.rfc2822(_now())
        if error_code is not None:
            resource["error_code"] = error_code
            resource["error_message"] = resources.DELIVERY_ERRORS.get(error_code)
        if outbound.status_callback is None:
            return
        params = {
            "AccountSid": resource["account_sid"],
            "ApiVersion": resources.API_VERSION,
            "From": resource["from"] or self.config.sms_number,
            "MessageSid": resource["sid"],
            "MessageStatus": status,
            "SmsSid": resource["sid"],
            "SmsStatus": status,
            "To": resource["to"],
        }
        if resource["messaging_service_sid"]:
            params["MessagingServiceSid"] = resource["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        await self._post_signed(outbound.status_callback, params, str(uuid.uuid4()))

    async def send_inbound(
        self,
        from_: str,
        body: str,
        *,
        to: str | None = None,
        url: str | None = None,
        repeat: int = 1,
    ) -> InboundDelivery:
        """Deliver an SMS from a citizen to the inbound webhook, as Twilio does.

        STOP-type keywords put the sender on the opt-out list first (Twilio
        still forwards them). ``repeat`` sends the same request again with the
        same idempotency token, as Twilio's retries do, to test de-duplication.
        """
        target = url or self.config.inbound_url
        if target is None:
            raise ValueError("no inbound webhook URL configured")
        keyword = body.strip().upper()
        if keyword in STOP_KEYWORDS:
            self.config.unsubscribed.add(from_)
        elif keyword in START_KEYWORDS:
            self.config.unsubscribed.discard(from_)
        recipient = to or self.config.sms_number
        sid = resources.new_sid("SM")
        new = resources.NewMessage(
            account_sid=self.config.account_sid,
            to=recipient,
            from_=from_,
            messaging_service_sid=None,
            body=body,
            num_segments=max(count_segments(body).segments, 1),
            direction="inbound",
        )
        self._messages[sid] = _Outbound(resources.message_resource(new, sid, _now()), None)
        params = {
            "ToCountry": _country(recipient),
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": _country(from_),
            "To": recipient,
            "ToZip": "",
            "NumSegments": str(new.num_segments),
            "MessageSid": sid,
            "AccountSid": self.config.account_sid,
            "From": from_,
            "ApiVersion": resources.API_VERSION,
        }
        token = str(uuid.uuid4())
        attempts = [await self._post_signed(target, params, token) for _ in range(max(repeat, 1))]
        return InboundDelivery(sid, tuple(attempts))

    # -- admin endpoints -----------------------------------------------------

    async def _admin_messages(self, _: web.Request) -> web.Response:
        return _json(200, {"messages": self.messages})

    async def _admin_requests(self, _: web.Request) -> web.Response:
        return _json(
            200,
            {
                "requests": [
                    {
                        "method": ex.method,
                        "path": ex.path,
                        "query_string": ex.query_string,
                        "content_type": ex.content_type,
                        "body": ex.body.decode(errors="replace"),
                        "status": ex.status,
                        "response_content_type": ex.response_content_type,
                        "response_body": ex.response_body.decode(errors="replace"),
                    }
                    for ex in self.exchanges
                ]
            },
        )

    async def _admin_faults(self, _: web.Request) -> web.Response:
        return _json(200, {"faults": [f.describe() for f in self._faults if f.active]})

    async def _admin_add_fault(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            fault = self.inject_fault(
                spec["mode"],
                count=spec.get("count"),
                seconds=spec.get("seconds"),
                hang=float(spec.get("hang", 30.0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            modes = ", ".join(mode.value for mode in FaultMode)
            return _json(400, {"error": f"bad fault ({exc!s}); mode is one of {modes}"})
        return _json(201, fault.describe())

    async def _admin_clear_faults(self, _: web.Request) -> web.Response:
        self.clear_faults()
        return _json(200, {"faults": []})

    async def _admin_inbound(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            delivery = await self.send_inbound(
                str(spec["from"]),
                str(spec["body"]),
                to=spec.get("to"),
                url=spec.get("url"),
                repeat=int(spec.get("repeat", 1)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"error": f"bad inbound message: {exc!s}"})
        return _json(
            200,
            {
                "sid": delivery.sid,
                "attempts": [
                    {"status": a.status, "error": a.error, "response": a.response_text}
                    for a in delivery.attempts
                ],
            },
        )

    async def _admin_unsubscribe(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            self.unsubscribe(str(spec["number"]))
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"error": f"bad request: {exc!s}"})
        return _json(200, {"unsubscribed": len(self.config.unsubscribed)})


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    except phonenumbers.NumberParseException:
        return ""
