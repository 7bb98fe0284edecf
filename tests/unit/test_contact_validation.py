"""The decoding gate refuses bad contact events with the exact, documented error."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from schemas.contacts import ContactCompleted
from schemas.decoding import MAX_EVENT_BYTES, Rejected, decode_contact
from schemas.samples import contact_completed

if TYPE_CHECKING:
    from collections.abc import Callable

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HETU = "131052-308T"  # a valid code (check character T), from the public documentation


def sample() -> dict[str, Any]:
    return orjson.loads(contact_completed(NOW).model_dump_json())


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def mutate(change: Callable[[dict[str, Any]], None]) -> bytes:
    event = copy.deepcopy(sample())
    change(event)
    return encode(event)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = event
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = event
        for part in parents:
            node = node[part]
        del node[last]

    return change


BAD_INPUTS: list[tuple[str, bytes, str, str]] = [
    # (case, raw bytes, expected path, expected code)
    ("not json", b"{not json", "$", "invalid_json"),
    ("json but not an object", b"[1, 2, 3]", "$", "not_an_object"),
    ("invalid utf-8", b'{"type": "\xff\xfe"}', "$", "invalid_utf8"),
    ("payload of 2 MB", b'{"pad": "' + b"x" * 2_000_000 + b'"}', "$", "payload_too_large"),
    (
        "unknown event type",
        mutate(_set("type", "fi.palaute.contact.cancelled.v1")),
        "type",
        "unknown_event_type",
    ),
    ("missing type", mutate(_delete("type")), "type", "missing"),
    (
        "wrong cloudevents version",
        mutate(_set("specversion", "0.3")),
        "specversion",
        "literal_error",
    ),
    ("missing event id", mutate(_delete("id")), "id", "missing"),
    ("empty source", mutate(_set("source", "")), "source", "string_too_short"),
    ("naive event time", mutate(_set("time", "2026-03-10T11:00:00")), "time", "naive_timestamp"),
    (
        "naive contact end",
        mutate(_set("data.contact.ended_at", "2026-03-10T11:00:00")),
        "data.contact.ended_at",
        "naive_timestamp",
    ),
    (
        "event time a day ahead",
        mutate(_set("time", (NOW + timedelta(days=1)).isoformat())),
        "time",
        "future_timestamp",
    ),
    (
        "time not a timestamp",
        mutate(_set("time", "yesterday")),
        "time",
        "datetime_from_date_parsing",
    ),
    (
        "phone is not a number",
        mutate(_set("data.citizen.phone", "+358 not a number")),
        "data.citizen.phone",
        "invalid_phone",
    ),
    (
        "phone without country code",
        mutate(_set("data.citizen.phone", "0401234567")),
        "data.citizen.phone",
        "invalid_phone",
    ),
    (
        "phone too short for finland",
        mutate(_set("data.citizen.phone", "+3584012")),
        "data.citizen.phone",
        "invalid_phone",
    ),
    (
        "invalid email",
        mutate(_set("data.citizen.email", "maija@@example.com")),
        "data.citizen.email",
        "invalid_email",
    ),
    (
        "header injection in email",
        mutate(_set("data.citizen.email", "maija@example.com\r\nBcc: all@example.com")),
        "data.citizen.email",
        "invalid_email",
    ),
    (
        "header injection in touchpoint name",
        mutate(_set("data.touchpoint.name", "Puhelinpalvelu\r\nBcc: x@example.com")),
        "data.touchpoint.name",
        "control_characters",
    ),
    (
        "neither phone nor email",
        mutate(lambda e: (e["data"]["citizen"].pop("phone"), e["data"]["citizen"].pop("email"))),
        "data.citizen",
        "unreachable_citizen",
    ),
    (
        "unknown language",
        mutate(_set("data.citizen.language", "de")),
        "data.citizen.language",
        "enum",
    ),
    ("age as text", mutate(_set("data.citizen.age", "forty")), "data.citizen.age", "int_parsing"),
    (
        "negative queue wait",
        mutate(_set("data.contact.context.queue_wait_seconds", -5)),
        "data.contact.context.queue_wait_seconds",
        "greater_than_equal",
    ),
    (
        "unknown touchpoint channel",
        mutate(_set("data.touchpoint.channel", "pigeon")),
        "data.touchpoint.channel",
        "enum",
    ),
    (
        "unexpected field",
        mutate(_set("data.citizen.ssn", "x")),
        "data.citizen.ssn",
        "extra_forbidden",
    ),
    ("missing touchpoint", mutate(_delete("data.touchpoint")), "data.touchpoint", "missing"),
    (
        "identity code in a free-text field",
        mutate(_set("data.contact.context.case_type", f"asumistuki {HETU}")),
        "data.contact.context.case_type",
        "personal_identity_code",
    ),
    (
        "identity code as the citizen id",
        mutate(_set("data.citizen.id", HETU.replace("-", "A"))),
        "data.citizen.id",
        "personal_identity_code",
    ),
    (
        "identity code in the subject",
        mutate(_set("subject", f"asiakas {HETU}")),
        "subject",
        "personal_identity_code",
    ),
]


@pytest.mark.parametrize(
    ("raw", "path", "code"),
    [pytest.param(raw, path, code, id=case) for case, raw, path, code in BAD_INPUTS],
)
def test_bad_contact_event_is_rejected_with_the_exact_error(
    raw: bytes, path: str, code: str
) -> None:
    """Integrators fix what the error names; a vague or wrong error costs them a day."""
    result = decode_contact(raw, now=NOW)
    assert isinstance(result, Rejected)
    assert (result.errors[0].path, result.errors[0].code) == (path, code)


def test_table_covers_at_least_twenty_bad_inputs() -> None:
    """The acceptance asks for twenty distinct failures; keep the table honest."""
    assert len({case for case, *_ in BAD_INPUTS}) >= 20


def test_identity_code_is_never_echoed_in_the_reason() -> None:
    """A rejection reason goes to logs and the dead-letter topic: it must not spread the code."""
    raw = mutate(_set("data.contact.context.team", f"tiimi {HETU} ja muut"))
    result = decode_contact(raw, now=NOW)
    assert isinstance(result, Rejected)
    assert HETU not in result.reason
    assert "308T" not in result.reason


def test_invalid_phone_is_never_echoed_in_the_reason() -> None:
    """Phone numbers belong only where sending needs them, never in an error."""
    raw = mutate(_set("data.citizen.phone", "+3584012"))
    result = decode_contact(raw, now=NOW)
    assert isinstance(result, Rejected)
    assert "4012" not in result.reason


def test_number_resembling_an_identity_code_but_failing_its_check_is_accepted() -> None:
    """Refusing every 11-character number would refuse legitimate case references."""
    raw = mutate(_set("data.contact.context.case_type", "ref 131052-308U"))
    assert isinstance(decode_contact(raw, now=NOW), ContactCompleted)


def test_valid_sample_decodes_field_for_field() -> None:
    """The sample is what integrators copy; it must pass the gate unchanged."""
    original = contact_completed(NOW)
    decoded = decode_contact(original.model_dump_json().encode(), now=NOW)
    assert decoded == original


def test_phone_is_normalised_to_e164() -> None:
    """Per-citizen rules compare numbers; one number must have one spelling."""
    raw = mutate(_set("data.citizen.phone", "+358 40 123 4567"))
    decoded = decode_contact(raw, now=NOW)
    assert isinstance(decoded, ContactCompleted)
    assert decoded.data.citizen.phone == "+358401234567"


def test_payload_just_under_the_limit_is_judged_on_content_not_size() -> None:
    """The size limit must not cut off legitimate events near it."""
    event = sample()
    event["data"]["contact"]["context"]["team"] = "x" * 10
    raw = encode(event)
    padded = raw[:-1] + b" " * (MAX_EVENT_BYTES - len(raw)) + b"}"
    assert len(padded) == MAX_EVENT_BYTES
    assert isinstance(decode_contact(padded, now=NOW), ContactCompleted)


def test_every_error_of_an_event_is_reported_at_once() -> None:
    """Fixing one field at a time through a release cycle is slow; report them all."""
    event = sample()
    event["data"]["citizen"]["email"] = "bad"
    event["data"]["citizen"]["language"] = "xx"
    result = decode_contact(encode(event), now=NOW)
    assert isinstance(result, Rejected)
    assert {e.path for e in result.errors} == {"data.citizen.email", "data.citizen.language"}
