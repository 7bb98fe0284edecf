"""Contacts in both CloudEvents content modes, as the CloudEvents SDK writes them, meet one gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from schemas.cloudevents_kafka import structured_event
from schemas.decoding import Rejected, decode_contact
from schemas.samples import contact_completed

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _sdk_event() -> CloudEvent:
    sample = contact_completed(NOW - timedelta(minutes=5))
    return CloudEvent(
        attributes={
            "id": sample.id,
            "source": sample.source,
            "type": sample.type,
            "time": sample.time,
            "datacontenttype": "application/json",
        },
        data=sample.data.model_dump(mode="json"),
    )


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_an_sdk_event_decodes_to_the_same_contact_in_either_mode(mode: str) -> None:
    """A front office may use either mode of the binding; both must mean the same event."""
    event = _sdk_event()
    convert = kafka.to_binary if mode == "binary" else kafka.to_structured
    message = convert(event, JSONFormat())
    structured = structured_event(message.value, message.headers)
    assert isinstance(structured, bytes)
    contact = decode_contact(structured, now=NOW)
    assert not isinstance(contact, Rejected), contact.reason
    expected = contact_completed(NOW - timedelta(minutes=5))
    assert contact.id == expected.id
    assert contact.source == expected.source
    assert contact.data == expected.data


def test_headers_that_are_no_event_attribute_are_ignored_in_any_form() -> None:
    """Tracing, type hints, repeats and null values are what real clients add; none may matter."""
    value = contact_completed(NOW - timedelta(minutes=5)).model_dump_json().encode()
    headers = (
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("__TypeId__", b"fi.example.Contact"),
        ("x-note", None),
        ("x-note", b"\xff\xfe not utf-8"),
        ("content-type", b"application/cloudevents+json; charset=utf-8"),
    )
    assert structured_event(value, headers) == value
    assert structured_event(value, list(headers)) == value
    assert structured_event(value, None) == value


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ((("ce_specversion", b"1.0"), ("ce_id", b"a"), ("ce_id", b"b")), "duplicate_header"),
        ((("ce_specversion", b"1.0"), ("ce_id", None)), "invalid_header"),
        ((("ce_specversion", b"1.0"), ("ce_id", b"\xff")), "invalid_header"),
        ((("content-type", b"text/plain"),), "unsupported_content_type"),
        ((("ce_specversion", b"1.0"), ("content-type", b"text/plain")), "unsupported_content_type"),
        ((("content-type", b"application/cloudevents-batch+json"),), "unsupported_content_mode"),
    ],
)
def test_headers_that_make_the_event_ambiguous_are_refused_with_a_reason(
    headers: tuple[tuple[str, bytes | None], ...], code: str
) -> None:
    """An attribute given twice has no one value: the record is set aside, never guessed at."""
    result = structured_event(b"{}", headers)
    assert isinstance(result, Rejected)
    assert result.code == code


def test_a_binary_mode_event_with_broken_data_names_the_data() -> None:
    """The integrator must learn that the value, not a header, is what is broken."""
    message = kafka.to_binary(_sdk_event(), JSONFormat())
    result = structured_event(b"{not json", message.headers)
    assert isinstance(result, Rejected)
    assert result.errors[0].path == "data"
    assert result.code == "invalid_json"


def test_attributes_of_a_binary_mode_event_are_validated_like_structured_ones() -> None:
    """A header attribute with an identity code is refused as it would be in the JSON."""
    message = kafka.to_binary(_sdk_event(), JSONFormat())
    headers = {**message.headers, "ce_subject": b"case of 010190-123M"}
    structured = structured_event(message.value, headers)
    assert isinstance(structured, bytes)
    assert orjson.loads(structured)["subject"] == "case of 010190-123M"
    contact = decode_contact(structured, now=NOW)
    assert isinstance(contact, Rejected)
    assert "personal_identity_code" in {error.code for error in contact.errors}
