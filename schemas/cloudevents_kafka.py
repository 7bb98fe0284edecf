"""The CloudEvents Kafka protocol binding: a record in either content mode, as one event.

Front-office systems write contacts with whatever client they have, and the
CloudEvents SDKs write them in two ways (the binding's "content modes"):

* **structured**: the whole event as JSON in the value, with
  ``content-type: application/cloudevents+json`` (or no content type at
  all, as most hand-written producers do);
* **binary**: the event's attributes in ``ce_*`` headers (``ce_specversion``,
  ``ce_id``, ``ce_source`` ...), its data alone in the value, and the data's
  media type in ``content-type``.

:func:`structured_event` turns either into the structured JSON the decoding
gate reads, so both modes meet the same validation, the same identity-code
search and the same errors. Every other header (``traceparent``, a
framework's type hints, repeated names, ``None`` values) is ignored: it says
nothing about the event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from schemas.decoding import FieldError, Rejected, parse_json

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The header that marks binary mode: every binary-mode event carries it.
SPECVERSION_HEADER = "ce_specversion"
ATTRIBUTE_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"
STRUCTURED_MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
#: Attributes are short strings; a header far longer is not an attribute.
MAX_ATTRIBUTE_BYTES = 4096


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _reject(path: str, code: str, message: str) -> Rejected:
    return Rejected((FieldError(path, code, message),))


def _header_text(name: str, value: bytes | None) -> str | Rejected:
    if value is None:
        return _reject(f"header {name}", "invalid_header", "header has no value")
    if len(value) > MAX_ATTRIBUTE_BYTES:
        return _reject(
            f"header {name}", "invalid_header", f"longer than {MAX_ATTRIBUTE_BYTES} bytes"
        )
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        return _reject(f"header {name}", "invalid_header", f"not valid UTF-8 at byte {error.start}")


def _event_headers(
    headers: Iterable[tuple[str, bytes | None]], *, binary: bool
) -> dict[str, str] | Rejected:
    """Collect the headers that describe the event; refuse a name given twice.

    In binary mode these are the ``ce_*`` attributes and the data's content
    type; in structured mode only the content type: ``ce_*`` headers beside a
    structured event say nothing the event itself does not.
    """
    found: dict[str, str] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        wanted = name == CONTENT_TYPE_HEADER or (binary and name.startswith(ATTRIBUTE_PREFIX))
        if not wanted:
            continue
        if name in found:
            return _reject(
                f"header {name}",
                "duplicate_header",
                "the header is given more than once; an event attribute has one value",
            )
        text = _header_text(name, value)
        if isinstance(text, Rejected):
            return text
        found[name] = text
    return found


def structured_event(value: bytes | None, headers: Any) -> bytes | Rejected:
    """Give a contacts record as structured CloudEvents JSON, or say why it cannot be one.

    ``headers`` is the record's headers in any form a client produces
    (a tuple or list of pairs, a mapping, None).
    """
    items = list((headers.items() if isinstance(headers, dict) else headers) or ())
    binary = any(name.lower() == SPECVERSION_HEADER for name, _value in items)
    found = _event_headers(items, binary=binary)
    if isinstance(found, Rejected):
        return found
    content_type = found.pop(CONTENT_TYPE_HEADER, None)
    media_type = None if content_type is None else _media_type(content_type)
    if not binary:
        if media_type == BATCH_MEDIA_TYPE:
            return _reject(
                "header content-type",
                "unsupported_content_mode",
                "batched CloudEvents are not accepted on Kafka; send one event per record",
            )
        if media_type is not None and not _is_json(media_type):
            return _reject(
                "header content-type",
                "unsupported_content_type",
                f"content type {media_type!r} is not JSON; send structured "
                f"{STRUCTURED_MEDIA_TYPE} or binary mode with ce_* headers",
            )
        return value or b""
    return _binary_event(value, found, media_type)


def _binary_event(
    value: bytes | None, attributes: dict[str, str], media_type: str | None
) -> bytes | Rejected:
    if media_type is not None and not _is_json(media_type):
        return _reject(
            "header content-type",
            "unsupported_content_type",
            f"the event data's content type {media_type!r} is not JSON",
        )
    event: dict[str, Any] = {
        name.removeprefix(ATTRIBUTE_PREFIX): text for name, text in attributes.items()
    }
    if "data" in event or "datacontenttype" in event:
        return _reject(
            "header ce_data",
            "invalid_header",
            "data and its content type travel in the value and the content-type header",
        )
    if media_type is not None:
        event["datacontenttype"] = "application/json"
    if value is not None:
        data = parse_json(value)
        if isinstance(data, Rejected):
            return Rejected(
                tuple(
                    FieldError(
                        "data" if error.path == "$" else f"data.{error.path}",
                        error.code,
                        error.message,
                    )
                    for error in data.errors
                )
            )
        event["data"] = data
    try:
        return orjson.dumps(event)
    except orjson.JSONEncodeError:
        return _reject("data", "too_deep", "the event data is nested too deeply")
