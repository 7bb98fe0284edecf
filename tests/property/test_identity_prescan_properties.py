"""The one-search pre-scan for identity codes never lets a code through that the walk finds."""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from schemas.decoding import Rejected, decode_event
from schemas.identity_codes import may_hold_identity_code, paths_with_identity_codes

# Valid codes of each century sign, a temporary one and lower case, plus look-alikes.
CODES = ("131052-308T", "010594Y9032", "010594Y9021", "020202A0202", "131052-308t")
PIECES = (*CODES, "13105", "2-308T", "0000000000", "abc", "ä", "\\", '"', "\n", " ", "-")

texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=6).map("".join)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


@given(values)
def test_a_document_the_prescan_clears_holds_no_code(value: object) -> None:
    """The pre-scan skips the walk, so a False from it must be exact or a code gets in."""
    for text in (orjson.dumps(value).decode(), json.dumps(value), json.dumps(value, indent=1)):
        if not may_hold_identity_code(text):
            assert list(paths_with_identity_codes(value)) == []


@given(st.sampled_from(CODES[:4]), st.booleans())
def test_a_code_hidden_by_json_escapes_is_still_refused(code: str, escape_all: bool) -> None:
    r"""An escape such as \u0031 keeps a code out of the raw text but not out of the value."""
    event = {"type": "fi.palaute.contact.completed.v1", "subject": f"case {code}"}
    text = json.dumps(event)
    escaped = "".join(
        f"\\u{ord(char):04x}" if escape_all or char.isdigit() else char for char in code
    )
    raw = text.replace(code, escaped).encode()
    assert code not in raw.decode()
    result = decode_event(raw)
    assert isinstance(result, Rejected)
    assert ("subject", "personal_identity_code") in [(e.path, e.code) for e in result.errors]
