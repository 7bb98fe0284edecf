"""How many SMS segments a text costs, and in which encoding.

A survey SMS must fit one segment: a second one doubles the price and some
handsets show the parts out of order. Finnish and Swedish letters (ä, ö, å
and their capitals) are in the GSM 03.38 basic set, so Nordic text stays in
GSM-7 (160 septets) unless one character outside the set (õ, the Sámi letters
á, č, š, ŋ, an emoji, a typographic quote) switches the whole message to
UCS-2 (70 code units).

The alphabet is the ``gsm0338`` codec's: each character costs the septets it
encodes to (two for the extension table: ``€``, ``[``, ``{``, ...). What is
counted here is what Twilio bills (``num_segments``); the Twilio simulator and
``palaute config check`` count with this module.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec

_CODEC = "gsm03.38"

# Per-segment capacity: a single message has the whole payload; a concatenated
# one loses room to the user data header (6 octets: 7 septets, or 3 code units).
GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67
_BMP_END = 0xFFFF


class SmsEncoding(enum.StrEnum):
    """The alphabet a message goes out in; one character decides for all."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SmsSegments:
    """What a text costs: encoding, length in its units, segments, room left.

    ``units`` is septets for GSM-7 and UTF-16 code units for UCS-2 (an emoji
    outside the Basic Multilingual Plane takes two).
    """

    encoding: SmsEncoding
    units: int
    segments: int
    per_segment: int

    @property
    def fits_one_segment(self) -> bool:
        """Whether the text goes out as a single, unconcatenated SMS."""
        return self.segments <= 1


def _septets(char: str) -> int | None:
    """Septets of one character in GSM 03.38 (2 for the extension table), None outside it."""
    if char == "\x1b":  # the escape to the extension table, not a character of its own
        return None
    try:
        return len(char.encode(_CODEC))
    except UnicodeEncodeError:
        return None


def is_gsm7(text: str) -> bool:
    """Whether every character is in the GSM 03.38 basic or extension table."""
    return all(_septets(char) is not None for char in text)


def _ucs2_costs(text: str) -> list[int]:
    return [2 if ord(char) > _BMP_END else 1 for char in text]


def _pack(costs: list[int], single: int, multi: int) -> int:
    """Count segments; an escape pair or surrogate pair is never split across two."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments, used = segments + 1, 0
        used += cost
    return segments


def count_segments(text: str) -> SmsSegments:
    """Count the segments ``text`` is sent in, choosing GSM-7 when it can.

    An empty text is zero segments: there is nothing to send.
    """
    septets = [_septets(char) for char in text]
    if all(cost is not None for cost in septets):
        costs = [cost for cost in septets if cost is not None]
        segments = _pack(costs, GSM7_SINGLE, GSM7_MULTI)
        per_segment = GSM7_SINGLE if segments <= 1 else GSM7_MULTI
        return SmsSegments(SmsEncoding.GSM7, sum(costs), segments, per_segment)
    costs = _ucs2_costs(text)
    segments = _pack(costs, UCS2_SINGLE, UCS2_MULTI)
    per_segment = UCS2_SINGLE if segments <= 1 else UCS2_MULTI
    return SmsSegments(SmsEncoding.UCS2, sum(costs), segments, per_segment)


def non_gsm7_characters(text: str) -> str:
    """Name the characters that force UCS-2, each once, so a template can be fixed."""
    seen: dict[str, None] = {}
    for char in text:
        if _septets(char) is None:
            seen.setdefault(char, None)
    return "".join(seen)
