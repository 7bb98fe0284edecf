"""Repeated member names and deep nesting are refused at the one gate every inbound event passes.

orjson, like most parsers, keeps the last of two members with one name. A
contact with ``contact`` written twice was validated on one and forwarded,
bytes and all, with the other; the gate must refuse such a document with a
code of its own, wherever it comes from (Kafka, HTTP, the command line, an
answer). Nesting is bounded for the same reason: what the gate lets through,
every serialiser after it must be able to write.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from schemas.decoding import (
    MAX_NESTING,
    Rejected,
    decode_contact,
    decode_event,
    parse_json,
)
from schemas.samples import SAMPLES

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HETU = "131052-308T"


def _contact() -> str:
    return SAMPLES["contact-completed"](NOW).model_dump_json(exclude_none=True)


def _rejected(result: object) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


def test_a_contact_member_written_twice_is_refused_naming_its_object() -> None:
    """The leak of the issue: an identity code in the first ``contact``, a clean one last."""
    text = _contact().replace('"data":{', f'"data":{{"contact":{{"id":"c-{HETU}"}},', 1)
    rejected = _rejected(decode_contact(text.encode(), now=NOW))
    assert [(error.path, error.code) for error in rejected.errors] == [("data", "duplicate_member")]
    assert '"contact"' in rejected.reason
    assert HETU not in rejected.reason
    assert "308T" not in rejected.reason


def test_the_same_document_without_the_repeat_is_accepted() -> None:
    """The check refuses repeats only: names shared by different objects (``id``) are fine."""
    assert not isinstance(decode_contact(_contact().encode(), now=NOW), Rejected)


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (b'{"type":"a","type":"b"}', "$"),
        (b'{"a":{"b":{"c":1,"c":1}}}', "a.b"),
        (b'{"a":[{"x":1},{"y":1,"y":2}]}', "a[1]"),
        (b'[{"x":1},{"x":1,"x":1}]', "[1]"),
        # The same name, once escaped: a parser comparing raw text would miss it.
        (b'{"ab":1,"\\u0061b":2}', "$"),
    ],
)
def test_parse_json_finds_the_repeat_at_any_depth(document: bytes, path: str) -> None:
    """Batches over HTTP and webhook bodies go through parse_json; every object is checked."""
    rejected = _rejected(parse_json(document))
    assert [(error.path, error.code) for error in rejected.errors] == [(path, "duplicate_member")]


def test_every_object_with_a_repeat_is_named_in_document_order() -> None:
    """An integrator fixes all of them in one go."""
    rejected = _rejected(parse_json(b'{"a":{"x":1,"x":2},"b":[{"y":1,"y":2}]}'))
    assert [error.path for error in rejected.errors] == ["a", "b[0]"]


@pytest.mark.parametrize("name", ["0401234567", "maija@example.com", HETU, "+358401234567"])
def test_a_repeated_name_that_could_be_personal_data_is_not_quoted(name: str) -> None:
    """Keys of ``context`` are free text: the error names the object, not such a key."""
    document = f'{{"context":{{"{name}":1,"{name}":2}}}}'.encode()
    rejected = _rejected(parse_json(document))
    assert rejected.code == "duplicate_member"
    assert rejected.errors[0].path == "context"
    assert name not in rejected.errors[0].message


def test_an_answer_with_a_repeated_member_is_refused() -> None:
    """Answers (the responses topic) pass the same gate as contacts."""
    rating = SAMPLES["rating-received"](NOW).model_dump_json()
    value = orjson.loads(rating)
    assert "score" in value
    repeated = rating.replace('"score":', '"score":1,"score":', 1)
    rejected = _rejected(decode_event(repeated.encode(), now=NOW))
    assert rejected.code == "duplicate_member"
    assert not isinstance(decode_event(rating.encode(), now=NOW), Rejected)


def _nested_team(depth: int) -> bytes:
    """Give the sample contact with ``team`` (4 levels down) holding ``depth`` nested arrays."""
    return _contact().replace('"team":"Neuvonta A"', '"team":' + "[" * depth + "]" * depth).encode()


def test_any_nesting_depth_is_refused_as_a_value_never_an_exception() -> None:
    """A 253-1022 deep field once passed the gate and broke the re-serialisation (a 500)."""
    wrong: list[tuple[int, str]] = []
    for depth in range(1, 2001):
        result = decode_contact(_nested_team(depth), now=NOW)
        total = 4 + depth  # the top-level object is level 1; ``team`` holds level 5
        # Within the limit the schema speaks (``team`` is a string); beyond it, the limit.
        expected = "too_deep" if total > MAX_NESTING else "string_type"
        if not isinstance(result, Rejected) or result.code != expected:
            wrong.append((depth, result.code if isinstance(result, Rejected) else "accepted"))
        elif expected == "too_deep" and str(MAX_NESTING) not in result.reason:
            wrong.append((depth, "the limit is not named"))
    assert wrong == []


def test_nesting_up_to_the_limit_passes_the_parser_and_orjson_writes_it() -> None:
    """The limit must sit below what the serialisers after the gate can write."""
    document = b"[" * MAX_NESTING + b"]" * MAX_NESTING
    value = parse_json(document)
    assert not isinstance(value, Rejected)
    assert orjson.dumps(value) == document
    rejected = _rejected(parse_json(b"[" + document + b"]"))
    assert (rejected.errors[0].path, rejected.code) == ("[0]", "too_deep")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Only structure nests: a string full of brackets is an ordinary value."""
    document = orjson.dumps({"note": "[" * 500 + "{" * 500, "list": [[1]] * 100})
    assert not isinstance(parse_json(document), Rejected)
