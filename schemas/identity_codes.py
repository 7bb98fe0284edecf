"""Detection of Finnish personal identity codes (henkilötunnus) in any text.

Palaute never accepts a personal identity code: a satisfaction survey has no
use for one, and a code that slips into a free-text field (a case note, a team
name) would spread to every topic, log and backup downstream. Candidates are
found by shape and confirmed with python-stdnum's check-character validation,
so ordinary numbers that merely look similar are not refused.

Since 2023 the century signs include A-F, so hex can spell a valid code. The
check stays as strict as it is; instead, the ids Palaute makes are letters
only (``engine/ids.py``) and citizen keys are derived to hold no code
(``engine/pseudonym.py``), so nothing of Palaute's own is ever refused here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from stdnum.exceptions import ValidationError
from stdnum.fi import hetu

if TYPE_CHECKING:
    from collections.abc import Iterator

# DDMMYY, a century sign (including the signs added in 2023), three digits and a
# check character. Word boundaries are not used: codes glued to text still count.
_CANDIDATE = re.compile(
    r"(?<![0-9])[0-3][0-9][01][0-9]{3}[-+A-FU-Y][0-9]{3}[0-9A-Y]", re.IGNORECASE
)


def identity_code_spans(text: str, *, checked: bool = True) -> Iterator[tuple[int, int]]:
    """Yield the start and end of every identity code in a text, in order.

    With ``checked=False`` every string of the code's shape counts, whether or
    not its check character is right: a code with one mistyped digit still
    points at a person, which matters when the aim is to remove codes rather
    than to refuse them.
    """
    for match in _CANDIDATE.finditer(text):
        if checked:
            try:
                hetu.validate(match.group(0).upper(), allow_temporary=True)
            except ValidationError:
                continue
        yield match.span()


def contains_identity_code(text: str) -> bool:
    """Tell whether a text contains a valid personal identity code (temporary ones too)."""
    for match in _CANDIDATE.finditer(text):
        try:
            hetu.validate(match.group(0).upper(), allow_temporary=True)
        except ValidationError:
            continue
        return True
    return False


def may_hold_identity_code(json_text: str) -> bool:
    """Tell whether a JSON document's text could hold a code anywhere, in one search.

    A False answer is exact: without a backslash every string and key of the
    document stands verbatim in its text, so a code in any of them has the
    shape the search looks for there too. With a backslash an escape could
    hide a code's characters, and the answer is True: walk the parsed value
    (:func:`paths_with_identity_codes`), which is what decides.
    """
    return "\\" in json_text or _CANDIDATE.search(json_text) is not None


def paths_with_identity_codes(value: Any, path: str = "") -> Iterator[str]:
    """Yield the dotted path of every string in a JSON value that holds a code.

    Keys are scanned as well as values: a code used as a map key is still a code.
    """
    if isinstance(value, str):
        if contains_identity_code(value):
            yield path or "$"
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and contains_identity_code(key):
                yield child
            yield from paths_with_identity_codes(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_with_identity_codes(item, f"{path}[{index}]")
