"""Write the bad-input corpus: one file per malformed contact event, and the manifest.

Run ``python tests/corpus/build.py`` after changing a case; the files are
committed so that integrators can replay them against their own tooling
(``palaute events validate tests/corpus/contacts/<file>``) and so that a change
in the gate's answers shows up in review.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from schemas.decoding import Rejected, decode_contact
from schemas.samples import contact_completed

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
CONTACTS = HERE / "contacts"
MANIFEST = HERE / "contacts.expected.json"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HETU = "131052-308T"  # the public documentation's example code


def _sample() -> dict[str, Any]:
    return orjson.loads(contact_completed(NOW).model_dump_json())


def _with(path: str, value: Any) -> bytes:
    event = copy.deepcopy(_sample())
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node[part]
    node[last] = value
    return orjson.dumps(event)


def _without(path: str) -> bytes:
    event = copy.deepcopy(_sample())
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node[part]
    del node[last]
    return orjson.dumps(event)


def _nested(depth: int) -> bytes:
    event = _sample()
    text = orjson.dumps(event).decode()
    deep = "[" * depth + "]" * depth
    return text.replace('"team":"Neuvonta A"', f'"team":{deep}').encode()


def _repeated(member: str, first: Any) -> bytes:
    """Give the sample with ``member`` of ``data`` written twice: ``first``, then the real one."""
    text = orjson.dumps(_sample()).decode()
    return text.replace('"data":{', f'"data":{{"{member}":{json.dumps(first)},', 1).encode()


def _prefixed(prefix: bytes) -> bytes:
    return prefix + orjson.dumps(_sample())


# (file stem, raw bytes, expected first error path, expected code)
CASES: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("empty-body", lambda: b"", "$", "invalid_json"),
    ("whitespace-only", lambda: b"   \n\t ", "$", "invalid_json"),
    ("truncated-json", lambda: orjson.dumps(_sample())[:200], "$", "invalid_json"),
    ("trailing-garbage", lambda: orjson.dumps(_sample()) + b"}", "$", "invalid_json"),
    ("single-quotes", lambda: b"{'specversion': '1.0'}", "$", "invalid_json"),
    ("json-null", lambda: b"null", "$", "not_an_object"),
    ("json-string", lambda: b'"contact"', "$", "not_an_object"),
    ("json-array-of-events", lambda: b"[" + orjson.dumps(_sample()) + b"]", "$", "not_an_object"),
    ("invalid-utf8", lambda: b'{"type": "\xff\xfe"}', "$", "invalid_utf8"),
    ("overlong-utf8", lambda: b'{"type": "\xc0\xaf"}', "$", "invalid_utf8"),
    (
        "utf16-encoded",
        lambda: orjson.dumps(_sample()).decode().encode("utf-16"),
        "$",
        "invalid_utf8",
    ),
    ("utf8-bom", lambda: _prefixed(b"\xef\xbb\xbf"), "$", "invalid_json"),
    ("payload-2mb", lambda: b'{"pad": "' + b"x" * 2_000_000 + b'"}', "$", "payload_too_large"),
    ("deeply-nested-array", lambda: _nested(5000), "$", "too_deep"),
    ("nested-beyond-parser-limit", lambda: _nested(1100), "$", "too_deep"),
    ("nested-within-parser-limit", lambda: _nested(50), "data.contact.context.team", "string_type"),
    ("missing-type", lambda: _without("type"), "type", "missing"),
    ("null-type", lambda: _with("type", None), "type", "unknown_event_type"),
    (
        "unknown-type",
        lambda: _with("type", "fi.palaute.contact.cancelled.v1"),
        "type",
        "unknown_event_type",
    ),
    (
        "internal-event-type-on-contacts",
        lambda: _with("type", "SurveySent"),
        "type",
        "unknown_event_type",
    ),
    ("specversion-0.3", lambda: _with("specversion", "0.3"), "specversion", "literal_error"),
    ("specversion-number", lambda: _with("specversion", 1.0), "specversion", "literal_error"),
    ("missing-id", lambda: _without("id"), "id", "missing"),
    ("empty-id", lambda: _with("id", ""), "id", "string_too_short"),
    ("id-too-long", lambda: _with("id", "e" * 300), "id", "string_too_long"),
    ("empty-source", lambda: _with("source", ""), "source", "string_too_short"),
    (
        "source-with-spaces",
        lambda: _with("source", "/crm/helsinki contact centre"),
        "source",
        "string_pattern_mismatch",
    ),
    ("naive-time", lambda: _with("time", "2026-03-10T11:00:00"), "time", "naive_timestamp"),
    ("future-time", lambda: _with("time", "2099-01-01T00:00:00Z"), "time", "future_timestamp"),
    ("time-not-a-date", lambda: _with("time", "yesterday"), "time", "datetime_from_date_parsing"),
    (
        "time-february-30",
        lambda: _with("time", "2026-02-30T10:00:00Z"),
        "time",
        "datetime_from_date_parsing",
    ),
    (
        "time-bad-offset",
        lambda: _with("time", "2026-03-10T10:00:00+25:00"),
        "time",
        "datetime_from_date_parsing",
    ),
    (
        "wrong-content-type",
        lambda: _with("datacontenttype", "text/xml"),
        "datacontenttype",
        "literal_error",
    ),
    ("missing-data", lambda: _without("data"), "data", "missing"),
    ("data-is-array", lambda: _with("data", []), "data", "model_type"),
    (
        "unexpected-top-level-field",
        lambda: _with("priority", "high"),
        "priority",
        "extra_forbidden",
    ),
    (
        "contact-id-with-spaces",
        lambda: _with("data.contact.id", "c 1"),
        "data.contact.id",
        "string_pattern_mismatch",
    ),
    (
        "naive-ended-at",
        lambda: _with("data.contact.ended_at", "2026-03-10T11:00:00"),
        "data.contact.ended_at",
        "naive_timestamp",
    ),
    (
        "future-ended-at",
        lambda: _with("data.contact.ended_at", "2099-01-01T00:00:00+02:00"),
        "data.contact.ended_at",
        "future_timestamp",
    ),
    (
        "queue-wait-negative",
        lambda: _with("data.contact.context.queue_wait_seconds", -5),
        "data.contact.context.queue_wait_seconds",
        "greater_than_equal",
    ),
    (
        "queue-wait-huge",
        lambda: _with("data.contact.context.queue_wait_seconds", 10**9),
        "data.contact.context.queue_wait_seconds",
        "less_than_equal",
    ),
    (
        "queue-wait-fraction",
        lambda: _with("data.contact.context.queue_wait_seconds", 1.5),
        "data.contact.context.queue_wait_seconds",
        "int_from_float",
    ),
    (
        "tab-in-team",
        lambda: _with("data.contact.context.team", "Neuvonta\tA"),
        "data.contact.context.team",
        "control_characters",
    ),
    (
        "phone-as-number",
        lambda: _with("data.citizen.phone", 358401234567),
        "data.citizen.phone",
        "string_type",
    ),
    (
        "phone-with-letters",
        lambda: _with("data.citizen.phone", "+35840ABCDEFG"),
        "data.citizen.phone",
        "invalid_phone",
    ),
    (
        "phone-national-format",
        lambda: _with("data.citizen.phone", "040 123 4567"),
        "data.citizen.phone",
        "invalid_phone",
    ),
    (
        "phone-too-short",
        lambda: _with("data.citizen.phone", "+3584012"),
        "data.citizen.phone",
        "invalid_phone",
    ),
    (
        "phone-not-a-number",
        lambda: _with("data.citizen.phone", "+358 not a number"),
        "data.citizen.phone",
        "invalid_phone",
    ),
    (
        "email-double-at",
        lambda: _with("data.citizen.email", "maija@@example.com"),
        "data.citizen.email",
        "invalid_email",
    ),
    (
        "email-with-spaces",
        lambda: _with("data.citizen.email", "maija meikalainen@example.com"),
        "data.citizen.email",
        "invalid_email",
    ),
    (
        "email-header-injection",
        lambda: _with("data.citizen.email", "maija@example.com\r\nBcc: all@example.com"),
        "data.citizen.email",
        "invalid_email",
    ),
    (
        "email-too-long",
        lambda: _with("data.citizen.email", "m" * 250 + "@example.com"),
        "data.citizen.email",
        "string_too_long",
    ),
    (
        "no-phone-no-email",
        lambda: _with("data.citizen", {"language": "fi"}),
        "data.citizen",
        "unreachable_citizen",
    ),
    (
        "language-german",
        lambda: _with("data.citizen.language", "de"),
        "data.citizen.language",
        "enum",
    ),
    (
        "language-uppercase",
        lambda: _with("data.citizen.language", "FI"),
        "data.citizen.language",
        "enum",
    ),
    ("age-as-text", lambda: _with("data.citizen.age", "forty"), "data.citizen.age", "int_parsing"),
    ("age-200", lambda: _with("data.citizen.age", 200), "data.citizen.age", "less_than_equal"),
    (
        "age-negative",
        lambda: _with("data.citizen.age", -1),
        "data.citizen.age",
        "greater_than_equal",
    ),
    (
        "birth-year-1800",
        lambda: _with("data.citizen.birth_year", 1800),
        "data.citizen.birth_year",
        "greater_than_equal",
    ),
    (
        "consent-as-text",
        lambda: _with("data.citizen.consent.sms", "maybe"),
        "data.citizen.consent.sms",
        "bool_parsing",
    ),
    (
        "non-disclosure-as-text",
        lambda: _with("data.citizen.non_disclosure", "unknown"),
        "data.citizen.non_disclosure",
        "bool_parsing",
    ),
    (
        "unexpected-citizen-field",
        lambda: _with("data.citizen.ssn", "x"),
        "data.citizen.ssn",
        "extra_forbidden",
    ),
    ("missing-touchpoint", lambda: _without("data.touchpoint"), "data.touchpoint", "missing"),
    (
        "touchpoint-id-with-slash",
        lambda: _with("data.touchpoint.id", "phone/helsinki"),
        "data.touchpoint.id",
        "string_pattern_mismatch",
    ),
    (
        "touchpoint-name-empty",
        lambda: _with("data.touchpoint.name", ""),
        "data.touchpoint.name",
        "string_too_short",
    ),
    (
        "touchpoint-name-500-chars",
        lambda: _with("data.touchpoint.name", "n" * 500),
        "data.touchpoint.name",
        "string_too_long",
    ),
    (
        "touchpoint-name-header-injection",
        lambda: _with("data.touchpoint.name", "Puhelinpalvelu\r\nBcc: x@example.com"),
        "data.touchpoint.name",
        "control_characters",
    ),
    (
        "service-with-newline",
        lambda: _with("data.touchpoint.service", "Asumisen\ntuet"),
        "data.touchpoint.service",
        "control_characters",
    ),
    (
        "unknown-channel",
        lambda: _with("data.touchpoint.channel", "pigeon"),
        "data.touchpoint.channel",
        "enum",
    ),
    (
        "unknown-stage",
        lambda: _with("data.touchpoint.stage", "teleportation"),
        "data.touchpoint.stage",
        "enum",
    ),
    (
        "hetu-in-case-type",
        lambda: _with("data.contact.context.case_type", f"asia {HETU}"),
        "data.contact.context.case_type",
        "personal_identity_code",
    ),
    (
        "hetu-as-citizen-id",
        lambda: _with("data.citizen.id", "131052A308T"),
        "data.citizen.id",
        "personal_identity_code",
    ),
    (
        "hetu-in-subject",
        lambda: _with("subject", f"asiakas {HETU}"),
        "subject",
        "personal_identity_code",
    ),
    (
        "hetu-new-century-sign",
        lambda: _with("data.touchpoint.location", "010594Y9021"),
        "data.touchpoint.location",
        "personal_identity_code",
    ),
    (
        "hetu-lower-case",
        lambda: _with("data.contact.context.team", "tiimi 131052a308t"),
        "data.contact.context.team",
        "personal_identity_code",
    ),
    (
        "hetu-glued-to-text",
        lambda: _with("data.touchpoint.service", f"Asiakas{HETU}x"),
        "data.touchpoint.service",
        "personal_identity_code",
    ),
    ("hetu-in-source", lambda: _with("source", f"/crm/{HETU}"), "source", "personal_identity_code"),
    ("nested-300-levels", lambda: _nested(300), "data", "too_deep"),
    (
        "duplicate-contact-member",
        lambda: _repeated("contact", {"id": f"c-{HETU}"}),
        "data",
        "duplicate_member",
    ),
    (
        "duplicate-top-level-type",
        lambda: b'{"type":"SurveySent",' + orjson.dumps(_sample())[1:],
        "$",
        "duplicate_member",
    ),
]


def build() -> dict[str, dict[str, str]]:
    """Write every case and return the manifest, checking each against its intent."""
    CONTACTS.mkdir(exist_ok=True)
    for stale in CONTACTS.glob("*.raw"):
        stale.unlink()
    manifest: dict[str, dict[str, str]] = {}
    for number, (stem, make, path, code) in enumerate(CASES, 1):
        raw = make()
        result = decode_contact(raw, now=NOW)
        if not isinstance(result, Rejected):
            raise AssertionError(f"{stem}: accepted, but it is meant to be refused")  # noqa: TRY004 - a failed expectation, not a type error
        first = result.errors[0]
        if (first.path, first.code) != (path, code):
            raise AssertionError(f"{stem}: got {first.path} {first.code}, meant {path} {code}")
        name = f"{number:03d}-{stem}.raw"
        (CONTACTS / name).write_bytes(raw)
        manifest[name] = {"path": path, "code": code}
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


if __name__ == "__main__":
    print(f"wrote {len(build())} cases to {CONTACTS}")  # noqa: T201 - a build script reports
