"""The real twilio client, through TwilioSmsGateway, against the Twilio API simulator."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from connectors.sms import (
    SmsConfigurationError,
    SmsOptedOutError,
    SmsOutcomeUnknownError,
    SmsPermanentError,
    SmsRetriableError,
    TwilioSmsGateway,
)
from connectors.twilio_sim import FaultMode, SimulatorConfig, TwilioSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ACCOUNT_SID = "AC" + "1f" * 16
AUTH_TOKEN = "integration-auth-token"
SENDER = "+358451234567"
CITIZEN = "+358401234567"
OTHER_CITIZEN = "+46701234567"
UNREACHABLE = "+358501234567"
QUESTION = "Kiitos asioinnista! Miten onnistuimme? Vastaa 1-5. Tack för ditt ärende!"


@dataclass
class Receiver:
    """A local webhook endpoint that records what arrives and checks Twilio's signature."""

    url: str
    validator: RequestValidator
    received: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def valid(self, index: int) -> bool:
        """Check the signature of the ``index``-th request against the exact URL and form."""
        url, form, headers = self.received[index]
        return bool(self.validator.validate(url, form, headers.get("X-Twilio-Signature", "")))


@pytest.fixture
async def simulator() -> AsyncIterator[TwilioSimulator]:
    sim = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            sms_number=SENDER,
            callback_delay=0.01,
            delivery_failures={UNREACHABLE: 30003},
        )
    )
    await sim.start("127.0.0.1", 0)
    yield sim
    await sim.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    runner = web.AppRunner(app)
    holder: list[Receiver] = []

    async def record(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        holder[0].received.append((str(request.url), form, dict(request.headers)))
        return web.Response(text="<Response/>", content_type="text/xml")

    app.router.add_post("/{name}", record)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    holder.append(Receiver(f"http://127.0.0.1:{port}", RequestValidator(AUTH_TOKEN)))
    yield holder[0]
    await runner.cleanup()


@pytest.fixture
async def gateway(simulator: TwilioSimulator) -> AsyncIterator[TwilioSmsGateway]:
    gw = TwilioSmsGateway(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_=SENDER,
        base_url=simulator.url,
        timeout=30.0,  # the simulator answers at once; a busy machine may not run it at once
    )
    yield gw
    await gw.aclose()


async def test_accepted_message_has_twilio_sid_and_gsm7_segment_count(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway
) -> None:
    """The dispatcher records the SID and the billed segments from Twilio's answer."""
    accepted = await gateway.send(CITIZEN, QUESTION, None)
    assert re.fullmatch(r"SM[0-9a-f]{32}", accepted.sid)
    assert accepted.status == "queued"
    assert accepted.segments == 1
    assert simulator.message(accepted.sid)["body"] == QUESTION
    assert simulator.message(accepted.sid)["to"] == CITIZEN
    longer = await gateway.send(CITIZEN, "ä" * 161, None)
    assert longer.segments == 2
    emoji = await gateway.send(CITIZEN, "Kiitos 👍", None)
    assert emoji.segments == 1


async def test_invalid_number_is_permanent_21211_and_never_named(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """Retrying an invalid number wastes sends; naming it in an error leaks personal data."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SmsPermanentError) as caught:
        await gateway.send("+3584012", QUESTION, None)
    error = caught.value
    assert (error.code, error.status) == (21211, 400)
    assert not error.retriable
    assert not error.opted_out
    assert "3584012" not in str(error)
    assert "3584012" not in caplog.text
    assert simulator.messages == []


async def test_unsubscribed_recipient_is_opted_out_21610(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway
) -> None:
    """A citizen who said STOP must be recorded as opted out, never retried."""
    simulator.unsubscribe(OTHER_CITIZEN)
    with pytest.raises(SmsOptedOutError) as caught:
        await gateway.send(OTHER_CITIZEN, QUESTION, None)
    assert caught.value.code == 21610
    assert caught.value.opted_out
    assert not caught.value.retriable


async def test_stop_reply_from_citizen_unsubscribes_them(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway, receiver: Receiver
) -> None:
    """Twilio blocks sends after STOP; the simulator must too, or opt-out goes untested."""
    await gateway.send(CITIZEN, QUESTION, None)
    await simulator.send_inbound(CITIZEN, " stop ", url=f"{receiver.url}/inbound")
    with pytest.raises(SmsOptedOutError):
        await gateway.send(CITIZEN, QUESTION, None)
    await simulator.send_inbound(CITIZEN, "START", url=f"{receiver.url}/inbound")
    assert (await gateway.send(CITIZEN, QUESTION, None)).status == "queued"


async def test_injected_429_is_retriable_and_sent_once(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway
) -> None:
    """429 was never processed: safe to retry later, but the client must not resend itself."""
    simulator.inject_fault(FaultMode.HTTP_429, count=1)
    with pytest.raises(SmsRetriableError) as caught:
        await gateway.send(CITIZEN, QUESTION, None)
    assert (caught.value.code, caught.value.status) == (20429, 429)
    assert simulator.api_requests("POST") == 1
    assert simulator.messages == []
    assert (await gateway.send(CITIZEN, QUESTION, None)).status == "queued"


async def test_rate_limit_answers_20429(simulator: TwilioSimulator) -> None:
    """A burst over the account's rate gets Twilio's 20429, which we retry later."""
    limited = TwilioSimulator(
        # One request per 20 s: the burst is over the rate however slowly the machine runs
        # (at 2 a second, four sends that took half a second each would all go through).
        SimulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, rate_limit_per_second=0.05)
    )
    await limited.start("127.0.0.1", 0)
    gw = TwilioSmsGateway(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_=SENDER, base_url=limited.url
    )
    try:
        outcomes: list[int | None] = []
        for _ in range(4):
            try:
                await gw.send(CITIZEN, QUESTION, None)
                outcomes.append(None)
            except SmsRetriableError as exc:
                outcomes.append(exc.code)
        assert outcomes == [None, 20429, 20429, 20429]
        assert limited.api_requests("POST") == 4
    finally:
        await gw.aclose()
        await limited.stop()
    assert simulator.messages == []


async def test_injected_503_is_retriable_and_sent_once(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway
) -> None:
    """503 means Twilio shed the request unprocessed; one attempt reaches the server."""
    simulator.inject_fault(FaultMode.HTTP_503, count=5)
    with pytest.raises(SmsRetriableError) as caught:
        await gateway.send(CITIZEN, QUESTION, None)
    assert caught.value.status == 503
    assert simulator.api_requests("POST") == 1


async def test_injected_500_is_outcome_unknown(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway
) -> None:
    """A 500 may come after the message was created; retrying blindly could send twice."""
    simulator.inject_fault(FaultMode.HTTP_500, count=1)
    with pytest.raises(SmsOutcomeUnknownError) as caught:
        await gateway.send(CITIZEN, QUESTION, None)
    assert caught.value.outcome_unknown
    assert not caught.value.retriable
    assert simulator.api_requests("POST") == 1


async def test_timeout_is_outcome_unknown_though_message_was_created(
    simulator: TwilioSimulator,
) -> None:
    """The simulator did create the SMS: exactly why a timeout must never be retried blindly."""
    simulator.inject_fault(FaultMode.TIMEOUT, count=1, hang=5.0)
    gw = TwilioSmsGateway(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_=SENDER,
        base_url=simulator.url,
        timeout=0.3,
    )
    try:
        with pytest.raises(SmsOutcomeUnknownError):
            await gw.send(CITIZEN, QUESTION, None)
    finally:
        await gw.aclose()
    assert len(simulator.messages) == 1
    assert simulator.messages[0]["to"] == CITIZEN
    assert simulator.api_requests("POST") == 1


async def test_unreachable_twilio_is_retriable() -> None:
    """A connection that never opened sent nothing; retrying cannot duplicate."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gw = TwilioSmsGateway(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_=SENDER,
        base_url=f"http://127.0.0.1:{port}",
        timeout=2.0,
    )
    try:
        with pytest.raises(SmsRetriableError):
            await gw.send(CITIZEN, QUESTION, None)
    finally:
        await gw.aclose()


async def test_wrong_auth_token_is_configuration_error(simulator: TwilioSimulator) -> None:
    """Bad credentials fail every send: the operator must be told, not the citizen skipped."""
    gw = TwilioSmsGateway(
        account_sid=ACCOUNT_SID, auth_token="wrong", from_=SENDER, base_url=simulator.url
    )
    try:
        with pytest.raises(SmsConfigurationError) as caught:
            await gw.send(CITIZEN, QUESTION, None)
    finally:
        await gw.aclose()
    assert (caught.value.code, caught.value.status) == (20003, 401)
    assert simulator.messages == []


async def test_status_callbacks_arrive_signed_in_order(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway, receiver: Receiver
) -> None:
    """Delivery reports drive SurveySent/SurveyFailed; unsigned ones must be refusable."""
    accepted = await gateway.send(CITIZEN, QUESTION, f"{receiver.url}/status")
    async with asyncio.timeout(60):
        await simulator.settle()
    statuses = [form["MessageStatus"] for _, form, _ in receiver.received]
    assert statuses == ["queued", "sent", "delivered"]
    for index, (url, form, headers) in enumerate(receiver.received):
        assert url == f"{receiver.url}/status"
        assert form["MessageSid"] == accepted.sid
        assert form["AccountSid"] == ACCOUNT_SID
        assert headers["I-Twilio-Idempotency-Token"]
        assert receiver.valid(index)
    url, form, headers = receiver.received[0]
    assert not RequestValidator("another-token").validate(url, form, headers["X-Twilio-Signature"])
    assert simulator.message(accepted.sid)["status"] == "delivered"
    assert simulator.message(accepted.sid)["date_sent"] is not None


async def test_undeliverable_number_reports_error_code(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway, receiver: Receiver
) -> None:
    """A carrier rejection arrives only by callback; its 30xxx code must reach us."""
    accepted = await gateway.send(UNREACHABLE, QUESTION, f"{receiver.url}/status")
    async with asyncio.timeout(60):
        await simulator.settle()
    final = receiver.received[-1][1]
    assert final["MessageStatus"] == "undelivered"
    assert final["ErrorCode"] == "30003"
    assert receiver.valid(len(receiver.received) - 1)
    assert simulator.message(accepted.sid)["error_code"] == 30003


async def test_inbound_sms_is_signed_and_repeats_keep_their_token(
    simulator: TwilioSimulator, receiver: Receiver
) -> None:
    """The webhook de-duplicates by I-Twilio-Idempotency-Token, so a retry must carry the same."""
    delivery = await simulator.send_inbound(CITIZEN, "4", url=f"{receiver.url}/inbound", repeat=2)
    assert [attempt.status for attempt in delivery.attempts] == [200, 200]
    assert len(receiver.received) == 2
    (_, first, first_headers), (_, second, second_headers) = receiver.received
    assert first == second
    assert first["Body"] == "4"
    assert first["From"] == CITIZEN
    assert first["To"] == SENDER
    assert first["MessageSid"] == delivery.sid
    assert first["FromCountry"] == "FI"
    token = first_headers["I-Twilio-Idempotency-Token"]
    assert token == second_headers["I-Twilio-Idempotency-Token"]
    assert receiver.valid(0)
    assert receiver.valid(1)


async def test_admin_endpoints_inject_faults_and_list_messages(
    simulator: TwilioSimulator, gateway: TwilioSmsGateway, receiver: Receiver
) -> None:
    """The demo and out-of-process tests drive the simulator over HTTP only."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{simulator.url}/_sim/faults", json={"mode": "503", "count": 1}) as r:
            assert r.status == 201
        async with http.post(f"{simulator.url}/_sim/faults", json={"mode": "teapot"}) as r:
            assert r.status == 400
        with pytest.raises(SmsRetriableError):
            await gateway.send(CITIZEN, QUESTION, None)
        accepted = await gateway.send(CITIZEN, QUESTION, None)
        async with http.get(f"{simulator.url}/_sim/messages") as r:
            listed = (await r.json())["messages"]
        assert [message["sid"] for message in listed] == [accepted.sid]
        inbound = {"from": CITIZEN, "body": "5", "url": f"{receiver.url}/inbound"}
        async with http.post(f"{simulator.url}/_sim/inbound", json=inbound) as r:
            answer = await r.json()
        assert answer["attempts"][0]["status"] == 200
        assert receiver.received[-1][1]["Body"] == "5"


async def test_command_line_simulator_serves_the_api_and_stops_on_ctrl_c() -> None:
    """The demo starts the simulator as `palaute twilio-sim`; Ctrl-C must stop it cleanly."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "palaute",
        "twilio-sim",
        "--port",
        "0",
        "--account-sid",
        ACCOUNT_SID,
        "--auth-token",
        AUTH_TOKEN,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            banner = (await process.stdout.readline()).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert url is not None, banner
        gw = TwilioSmsGateway(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_=SENDER, base_url=url.group()
        )
        try:
            assert (await gw.send(CITIZEN, QUESTION, None)).status == "queued"
        finally:
            await gw.aclose()
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            rest = (await process.stdout.read()).decode()
            status = await process.wait()
    assert status == 0
    assert "stopped" in rest
