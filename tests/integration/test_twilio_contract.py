"""Contract: what the twilio client sends and the simulator answers matches Twilio's OpenAPI.

Every request the real twilio client sent and every response the simulator
gave during a run covering success, fetch, list and each error path is checked
against Twilio's own description of its 2010-04-01 API, taken unchanged from
twilio/twilio-oai. Messages.json documents no error responses; their bodies are
checked against the error schema the same document gives elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from connectors.sms import SmsError, TwilioSmsGateway
from connectors.twilio_sim import FaultMode, RecordedExchange, SimulatorConfig, TwilioSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / ".." / "shared" / "vendor" / "twilio-oai" / "twilio_api_v2010.json"
TWILIO_HOST = "https://api.twilio.com"
MESSAGE_SCHEMA = "api.v2010.account.message"
ACCOUNT_SID = "AC" + "2e" * 16
AUTH_TOKEN = "contract-auth-token"
SENDER = "+358451234567"
SERVICE = "MG" + "3d" * 16
#: An alphanumeric sender ID, as an organisation configures it.
SENDER_ID = "Helsinki"
CITIZEN = "+358401234567"
OPTED_OUT = "+46701234567"


@pytest.fixture(scope="session")
def spec_document() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.fail(
            f"Twilio's OpenAPI document is missing at {SPEC.resolve()}: the contract test needs "
            "the shared/ directory beside the clone (shared/vendor/twilio-oai/)."
        )
    document: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="session")
def openapi(spec_document: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(spec_document)


def _walk(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.fixture(scope="session")
def error_schema(spec_document: dict[str, Any]) -> dict[str, Any]:
    """Twilio's REST error body, as the same document describes it (a 408 elsewhere)."""
    wanted = {"code", "message", "more_info", "status"}
    for node in _walk(spec_document["paths"]):
        properties = node.get("properties")
        if isinstance(properties, dict) and set(properties) == wanted:
            return {**node, "required": sorted(wanted)}
    pytest.fail("Twilio's OpenAPI document no longer describes its error body")


@pytest.fixture(scope="session")
def message_fields(spec_document: dict[str, Any]) -> set[str]:
    return set(spec_document["components"]["schemas"][MESSAGE_SCHEMA]["properties"])


@pytest.fixture(scope="session")
async def recorded() -> AsyncIterator[list[RecordedExchange]]:
    """Drive the real twilio client through every path once and keep what crossed the wire."""
    sim = TwilioSimulator(
        SimulatorConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            sms_number=SENDER,
            callback_delay=0.01,
            unsubscribed={OPTED_OUT},
        )
    )
    await sim.start("127.0.0.1", 0)
    common = {"account_sid": ACCOUNT_SID, "base_url": sim.url}
    by_number = TwilioSmsGateway(auth_token=AUTH_TOKEN, from_=SENDER, **common)
    by_service = TwilioSmsGateway(auth_token=AUTH_TOKEN, messaging_service_sid=SERVICE, **common)
    bad_login = TwilioSmsGateway(auth_token="wrong", from_=SENDER, **common)
    try:
        first = await by_number.send(CITIZEN, "Miten onnistuimme? Vastaa 1-5.", None)
        await by_service.send(CITIZEN, "Hur lyckades vi? 👍", "http://127.0.0.1:9/status")
        await by_number.send(CITIZEN, "ä" * 200, None)
        # An organisation's own senders: an alphanumeric sender ID, a Messaging Service.
        await by_number.send(CITIZEN, "Helsingin kaupunki: Vastaa 1-5.", None, sender_id=SENDER_ID)
        await by_number.send(CITIZEN, "Espoo: Vastaa 1-5.", None, messaging_service_sid=SERVICE)
        for fault in (FaultMode.HTTP_429, FaultMode.HTTP_503, FaultMode.HTTP_500):
            sim.inject_fault(fault, count=1)
            with pytest.raises(SmsError):
                await by_number.send(CITIZEN, "Vastaa 1-5.", None)
        for gateway, number in (
            (by_number, "+3584012"),
            (by_number, OPTED_OUT),
            (bad_login, CITIZEN),
        ):
            with pytest.raises(SmsError):
                await gateway.send(number, "Vastaa 1-5.", None)
        client = by_number._twilio()
        fetched = await client.messages(first.sid).fetch_async()
        assert fetched.sid == first.sid
        listed = await client.messages.list_async(to=CITIZEN, limit=20)
        assert len(listed) == 5
        with pytest.raises(Exception, match=r"20404|not found"):
            await client.messages("SM" + "0" * 32).fetch_async()
        yield list(sim.exchanges)
    finally:
        for gateway in (by_number, by_service, bad_login):
            await gateway.aclose()
        await sim.stop()


def _request(exchange: RecordedExchange) -> MockRequest:
    # The client addressed api.twilio.com; the transport only rewrote the host.
    return MockRequest(
        TWILIO_HOST,
        exchange.method,
        exchange.path,
        args={key: values[-1] for key, values in parse_qs(exchange.query_string).items()},
        headers=dict(exchange.headers),
        data=exchange.body,
        content_type=exchange.content_type,
    )


def _response(exchange: RecordedExchange, body: bytes | None = None) -> MockResponse:
    return MockResponse(
        exchange.response_body if body is None else body,
        status_code=exchange.status,
        content_type=exchange.response_content_type.split(";")[0],
    )


def test_run_covered_every_path(recorded: list[RecordedExchange]) -> None:
    """A contract checked on fewer paths than production uses proves less than it claims."""
    seen = {(ex.method, ex.status) for ex in recorded}
    assert {("POST", 201), ("POST", 400), ("POST", 401), ("POST", 429)} <= seen
    assert {("POST", 500), ("POST", 503), ("GET", 200), ("GET", 404)} <= seen
    codes = {json.loads(ex.response_body).get("code") for ex in recorded if ex.status >= 400}
    assert {21211, 21610, 20003, 20429, 20500, 20503, 20404} <= codes


def test_every_request_the_client_sent_matches_the_spec(
    openapi: OpenAPI, recorded: list[RecordedExchange]
) -> None:
    """The simulator must accept only what Twilio accepts, so the client is really exercised."""
    for exchange in recorded:
        openapi.validate_request(_request(exchange))


def test_an_organisations_own_sender_replaces_the_accounts_in_the_request(
    recorded: list[RecordedExchange],
) -> None:
    """The alphanumeric sender ID goes as From, a Messaging Service without one."""
    creates = [
        parse_qs(exchange.body.decode())
        for exchange in recorded
        if exchange.method == "POST" and exchange.path.endswith("/Messages.json")
    ]
    by_body = {form["Body"][0]: form for form in creates if "Body" in form}
    alphanumeric = by_body["Helsingin kaupunki: Vastaa 1-5."]
    assert alphanumeric["From"] == [SENDER_ID]
    assert "MessagingServiceSid" not in alphanumeric
    service = by_body["Espoo: Vastaa 1-5."]
    assert service["MessagingServiceSid"] == [SERVICE]
    assert "From" not in service


def test_every_success_response_matches_the_spec(
    openapi: OpenAPI, recorded: list[RecordedExchange], message_fields: set[str]
) -> None:
    """Twilio's shapes, not the simulator's idea of them, are what the client parses."""
    successes = [ex for ex in recorded if ex.status < 400]
    assert len(successes) >= 5
    for exchange in successes:
        openapi.validate_response(_request(exchange), _response(exchange))
        payload = json.loads(exchange.response_body)
        resources = payload.get("messages", [payload])
        for resource in resources:
            assert set(resource) == message_fields


def test_every_error_response_has_twilios_error_body(
    openapi: OpenAPI, recorded: list[RecordedExchange], error_schema: dict[str, Any]
) -> None:
    """The client reads code and message from error bodies; a wrong shape hides the reason."""
    errors = [ex for ex in recorded if ex.status >= 400]
    assert len(errors) >= 7
    validator = OAS30Validator(error_schema)
    for exchange in errors:
        with pytest.raises(ResponseNotFound):  # Messages.json documents no error statuses
            openapi.validate_response(_request(exchange), _response(exchange))
        body = json.loads(exchange.response_body)
        validator.validate(body)
        assert body["status"] == exchange.status
        assert body["more_info"].endswith(str(body["code"]))


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_segments", 1), ("status", "posted"), ("sid", "XX" + "0" * 32), ("error_code", "30003")],
)
def test_validator_rejects_a_malformed_message_response(
    openapi: OpenAPI, recorded: list[RecordedExchange], field: str, value: object
) -> None:
    """A contract check that cannot fail proves nothing: break one field and it must fail."""
    created = next(ex for ex in recorded if ex.method == "POST" and ex.status == 201)
    broken = {**json.loads(created.response_body), field: value}
    with pytest.raises(OpenAPIError):
        openapi.validate_response(
            _request(created), _response(created, json.dumps(broken).encode())
        )


def test_validator_rejects_a_malformed_request_and_error_body(
    openapi: OpenAPI, recorded: list[RecordedExchange], error_schema: dict[str, Any]
) -> None:
    """Both halves must be able to fail: a request without To, an error with a bad code."""
    created = next(ex for ex in recorded if ex.method == "POST" and ex.status == 201)
    form = parse_qs(created.body.decode())
    form.pop("To")
    stripped = "&".join(f"{key}={values[0]}" for key, values in form.items()).encode()
    request = MockRequest(
        TWILIO_HOST,
        "POST",
        created.path,
        headers=dict(created.headers),
        data=stripped,
        content_type=created.content_type,
    )
    with pytest.raises(OpenAPIError):
        openapi.validate_request(request)
    failed = next(ex for ex in recorded if ex.status >= 400)
    body = json.loads(failed.response_body)
    body["code"] = str(body["code"])
    assert list(OAS30Validator(error_schema).iter_errors(body))
    body.pop("code")
    assert list(OAS30Validator(error_schema).iter_errors(body))
