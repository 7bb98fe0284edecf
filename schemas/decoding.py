"""Turning raw bytes into events, or into a rejection that says why.

This is the single gate every inbound record passes: the Kafka intake, the
HTTP ingress and ``palaute events validate`` all call it, so a front-office
developer sees exactly the errors the production pipeline would give.
A rejection is a value, not an exception: callers dead-letter it or answer
4xx with it, and never crash on it.

Before any schema, the gate refuses what parsers disagree on or cannot carry
further: a member name repeated in an object (``duplicate_member``; orjson
would keep the last one silently, while the bytes travel on with both) and
objects and arrays nested deeper than :data:`MAX_NESTING` (``too_deep``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ValidationError

from schemas.contacts import CONTACT_COMPLETED_TYPE, ContactCompleted
from schemas.identity_codes import may_hold_identity_code, paths_with_identity_codes
from schemas.topics import TOPICS

if TYPE_CHECKING:
    from datetime import datetime

#: Largest accepted event. A contact event is about 600 bytes; 64 KiB leaves
#: room for generous context while stopping accidental attachments and floods.
MAX_EVENT_BYTES = 64 * 1024

#: Deepest accepted nesting of objects and arrays (the top-level value is 1).
#: A contact is 4 deep; the limit leaves room for any honest ``context`` and
#: stays far below the recursion limits of the parsers and serialisers after
#: the gate (orjson refuses to write a value nested deeper than 254).
MAX_NESTING = 64


@dataclass(frozen=True)
class FieldError:
    """One problem, at one place in the event. The message never quotes input."""

    path: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class Rejected:
    """Why an event was refused: every problem found, in document order."""

    errors: tuple[FieldError, ...]

    @property
    def code(self) -> str:
        """The first error's code: the dead-letter reason code and metric label."""
        return self.errors[0].code

    @property
    def reason(self) -> str:
        """All errors on one line, safe to log and to put in a dead-letter header."""
        return "; ".join(str(error) for error in self.errors)


def _event_types() -> dict[str, type[BaseModel]]:
    registry: dict[str, type[BaseModel]] = {CONTACT_COMPLETED_TYPE: ContactCompleted}
    for spec in TOPICS:
        for model in spec.messages:
            default = model.model_fields["type"].default
            if isinstance(default, str):
                registry[default] = model
    return registry


#: Every event type Palaute knows, by the value of its ``type`` field.
EVENT_TYPES: dict[str, type[BaseModel]] = _event_types()


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "$"


def _validation_errors(error: ValidationError) -> list[FieldError]:
    # include_input=False: pydantic would otherwise carry the offending value,
    # which may be a phone number or an address.
    return [
        FieldError(_path(tuple(item["loc"])), item["type"], item["msg"])
        for item in error.errors(include_input=False, include_url=False)
    ]


def parse_json(raw: bytes, *, max_bytes: int = MAX_EVENT_BYTES) -> Any | Rejected:
    """Parse bytes as one JSON value, with the size and encoding checks first."""
    parsed = _parse(raw, max_bytes)
    return parsed if isinstance(parsed, Rejected) else parsed[1]


def _parse(raw: bytes, max_bytes: int) -> tuple[str, Any] | Rejected:
    """Give the text and the parsed value, so the identity-code search can use the text."""
    text = _text(raw, max_bytes)
    if isinstance(text, Rejected):
        return text
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if _nesting_of_text(text) > MAX_NESTING:
            return Rejected((_too_deep("$"),))
        return Rejected((FieldError("$", "invalid_json", f"not valid JSON: {error.msg}"),))
    # Cheap upper bound first: a text with few brackets cannot nest deeply.
    if (
        text.count("{") + text.count("[") > MAX_NESTING
        and (too_deep := _too_deep_at(value)) is not None
    ):
        return Rejected((_too_deep(too_deep),))
    if not _is_canonical(raw, value) and (duplicates := _duplicate_members(text)):
        return Rejected(duplicates)
    return text, value


def _is_canonical(raw: bytes, value: Any) -> bool:
    """Tell whether ``raw`` is exactly orjson's writing of ``value``.

    Such a text has no repeated member names (a dict has none to write), so
    the slower check can be skipped. It is the common case: the HTTP ingress
    writes records this way, and so do pydantic and orjson producers. A
    microsecond against the check's eight for a contact.
    """
    try:
        return orjson.dumps(value) == raw
    except orjson.JSONEncodeError:  # e.g. an integer orjson reads but does not write
        return False


def _text(raw: bytes, max_bytes: int) -> str | Rejected:
    """Check the size, then decode UTF-8."""
    if len(raw) > max_bytes:
        return Rejected(
            (
                FieldError(
                    "$",
                    "payload_too_large",
                    f"event is {len(raw)} bytes; the limit is {max_bytes}",
                ),
            )
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejected(
            (FieldError("$", "invalid_utf8", f"not valid UTF-8 at byte {error.start}"),)
        )


def _too_deep(path: str) -> FieldError:
    return FieldError(
        path,
        "too_deep",
        f"objects and arrays nest deeper than the limit of {MAX_NESTING} levels",
    )


def _too_deep_at(value: Any) -> str | None:
    """Give the path of the top-level member that nests too deeply, or None.

    The path stops at the first level: the full one would be as long as the
    nesting, and the member is enough for a producer to find its mistake.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "$")]
    while stack:
        node, depth, top = stack.pop()
        if depth > MAX_NESTING:
            return top
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            if isinstance(child, dict | list):
                where = top if depth > 1 else _path((key,))
                stack.append((child, depth + 1, where))
    return None


#: A JSON string, escapes included: what to skip when counting brackets in text.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')
_BRACKETS = re.compile(r"[\[\]{}]")


def _nesting_of_text(text: str) -> int:
    """Give how deep brackets nest in text that no parser accepted (strings skipped).

    Only for refused input: orjson stops at 1,024 levels with a parse error,
    and a producer deserves to hear that the nesting, not the syntax, is wrong.
    """
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class _DuplicateMemberError(ValueError):
    """Raised by the checking parser at the first object with a repeated member name."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _DuplicateMemberError
    return members


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; orjson has refused them already."""
    raise ValueError(name)  # pragma: no cover - orjson refuses these first


#: Sees every member of every object, which orjson does not: it keeps the last
#: of repeated names without a word. Made once; ``decode`` is reentrant.
_CHECKER = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_refuse_constant)
#: Member names safe to quote in an error: letters, ``_`` and ``-`` only, so
#: never a phone number, an address or an identity code.
_QUOTABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z_-]{0,63}$")


class _Members(list[tuple[str, Any]]):
    """An object's members in document order, repeats kept."""


#: The slow parse of refused text only: keeps every pair, to find where the repeats are.
_PAIRS_KEEPER = json.JSONDecoder(object_pairs_hook=_Members)


def _duplicate_members(text: str) -> tuple[FieldError, ...]:
    """Refuse repeated member names: each object that has one, in document order.

    orjson (like most parsers) keeps the last of repeated names, so a contact
    would be validated on one ``contact`` while its bytes, with the other,
    travel on; RFC 8259 leaves the meaning of such a document undefined.
    """
    try:
        _CHECKER.decode(text)
    except _DuplicateMemberError:
        pass
    except (ValueError, RecursionError):  # pragma: no cover - orjson accepted the text
        return ()
    else:
        return ()
    try:
        document = _PAIRS_KEEPER.decode(text)
    except (ValueError, RecursionError):  # pragma: no cover - as above
        document = None
    errors = list(_repeats(document, ()))
    return tuple(errors) or (_duplicate("$", []),)


def _repeats(node: Any, loc: tuple[int | str, ...]) -> list[FieldError]:
    errors: list[FieldError] = []
    if isinstance(node, _Members):
        names = [name for name, _ in node]
        repeated = sorted({name for name in names if names.count(name) > 1}, key=names.index)
        if repeated:
            errors.append(_duplicate(_path(loc), repeated))
        for name, child in node:
            errors.extend(_repeats(child, (*loc, name)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            errors.extend(_repeats(child, (*loc, index)))
    return errors


def _duplicate(path: str, names: list[str]) -> FieldError:
    quoted = ", ".join(f'"{name}"' for name in names if _QUOTABLE_NAME.match(name))
    which = f"member names repeat ({quoted})" if quoted else "a member name repeats"
    return FieldError(
        path, "duplicate_member", f"{which} in this object; each name may appear once"
    )


def validate_value(
    value: Any,
    *,
    now: datetime | None = None,
    expect: str | None = None,
    text: str | None = None,
) -> BaseModel | Rejected:
    """Validate a parsed JSON value as the event its ``type`` names.

    ``expect`` restricts the accepted type (the contacts topic takes only
    ContactCompleted). Identity codes are looked for everywhere, before and
    besides schema validation, and reported by path without the code itself.
    ``text``, the JSON the value was parsed from, lets one search of it stand
    for the walk of every string when it finds nothing that could be a code
    (the walk costs several times more, and almost no event has a candidate).
    """
    if not isinstance(value, dict):
        return Rejected((FieldError("$", "not_an_object", "event must be a JSON object"),))
    errors = (
        [
            FieldError(
                path,
                "personal_identity_code",
                "contains a Finnish personal identity code (henkilötunnus); "
                "identity codes are never accepted",
            )
            for path in paths_with_identity_codes(value)
        ]
        if text is None or may_hold_identity_code(text)
        else []
    )
    event_type = value.get("type")
    model = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if model is None or (expect is not None and event_type != expect):
        if "type" not in value:
            errors.append(FieldError("type", "missing", "Field required"))
        else:
            accepted = " or ".join([expect] if expect else sorted(EVENT_TYPES))
            errors.append(
                FieldError("type", "unknown_event_type", f"unknown event type; expected {accepted}")
            )
        return Rejected(tuple(errors))
    try:
        event = model.model_validate(value, context={"now": now} if now else None)
    except ValidationError as error:
        errors.extend(_validation_errors(error))
    if errors:
        return Rejected(tuple(errors))
    return event


def decode_event(
    raw: bytes,
    *,
    now: datetime | None = None,
    expect: str | None = None,
    max_bytes: int = MAX_EVENT_BYTES,
) -> BaseModel | Rejected:
    """Decode and validate one event from raw bytes."""
    parsed = _parse(raw, max_bytes)
    if isinstance(parsed, Rejected):
        return parsed
    text, value = parsed
    return validate_value(value, now=now, expect=expect, text=text)


def decode_contact(
    raw: bytes, *, now: datetime | None = None, max_bytes: int = MAX_EVENT_BYTES
) -> ContactCompleted | Rejected:
    """Decode a record of the contacts topic: only ContactCompleted is accepted."""
    event = decode_event(raw, now=now, expect=CONTACT_COMPLETED_TYPE, max_bytes=max_bytes)
    if isinstance(event, ContactCompleted | Rejected):
        return event
    raise AssertionError("validated as ContactCompleted but got another model")  # pragma: no cover
