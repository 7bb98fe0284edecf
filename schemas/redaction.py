"""Removing contact details and identity codes from citizens' free-text comments.

A comment is free text: a citizen may write "call me on 040 123 4567" or give
an email address or a personal identity code. Comments travel on a topic, reach
dashboards and backups, so these are replaced by placeholders before the
comment is written anywhere.

Why here, in schemas/: redaction is pure (no I/O) and needs ``phonenumbers``,
whose ``PhoneNumberMatcher`` finds numbers in running text in every national
and international format it knows (``040 123 4567``, ``+358 40 1234567``,
``09-123 4567``, ``0046 70 123 45 67``). engine/ may import only the standard
library and schemas/, so engine code and the web shell both reach it here.
Numbers are matched at ``Leniency.VALID``: a ticket or case number such as
``123456`` stays readable, which the looser ``POSSIBLE`` would blank out.

Identity codes are matched by shape, whether or not the check character is
right: a code with one mistyped digit still identifies a person. Email
addresses are found with a broad pattern (any ``local@domain.tld``), since
email-validator checks one address and does not search text. Written-out
addresses ("matti at example dot fi") are not recognised.

Placeholders are language-neutral and hold no digits and no ``@``, so a
redacted text never matches again; redaction repeats until nothing changes,
which also catches a code hidden by an overlapping look-alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import phonenumbers

from schemas.identity_codes import identity_code_spans

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: Numbers without a country code are read as Finnish ones.
DEFAULT_REGION = "FI"


class SensitiveKind(StrEnum):
    """What was removed; the value is the placeholder's name."""

    EMAIL = "email"
    IDENTITY_CODE = "id-code"
    PHONE = "phone"

    @property
    def placeholder(self) -> str:
        """The text put in place of what was removed."""
        return f"[{self.value}]"


@dataclass(frozen=True, slots=True)
class Redacted:
    """A redacted text and how many of each kind were removed from it."""

    text: str
    counts: Mapping[SensitiveKind, int]

    @property
    def total(self) -> int:
        """How many pieces were removed in all."""
        return sum(self.counts.values())


_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]+"
_DOMAIN = r"[\w-]+(?:\.[\w-]+)+"
EMAIL_PATTERN = re.compile(rf"{_LOCAL}@{_DOMAIN}")


def _email_spans(text: str) -> Iterable[tuple[int, int]]:
    return (match.span() for match in EMAIL_PATTERN.finditer(text))


def _phone_spans(text: str) -> Iterable[tuple[int, int]]:
    matcher = phonenumbers.PhoneNumberMatcher(
        text, DEFAULT_REGION, leniency=phonenumbers.Leniency.VALID
    )
    return ((match.start, match.end) for match in matcher)


def _identity_code_spans(text: str) -> Iterable[tuple[int, int]]:
    return identity_code_spans(text, checked=False)


# Emails first (an address may hold digits a number match would split), then
# codes (the phone matcher may take a code's digits for a number).
_FINDERS = (
    (SensitiveKind.EMAIL, _email_spans),
    (SensitiveKind.IDENTITY_CODE, _identity_code_spans),
    (SensitiveKind.PHONE, _phone_spans),
)


def _replace(text: str, spans: Iterable[tuple[int, int]], placeholder: str) -> tuple[str, int]:
    pieces: list[str] = []
    position = count = 0
    for start, end in spans:
        if start < position:
            continue
        pieces.extend((text[position:start], placeholder))
        position = end
        count += 1
    pieces.append(text[position:])
    return "".join(pieces), count


def redact(text: str) -> Redacted:
    """Replace phone numbers, email addresses and identity codes with placeholders."""
    counts = dict.fromkeys(SensitiveKind, 0)
    # Each pass that changes anything removes digits or an "@" and adds none,
    # so the loop ends.
    changed = True
    while changed:
        changed = False
        for kind, finder in _FINDERS:
            text, found = _replace(text, finder(text), kind.placeholder)
            counts[kind] += found
            changed = changed or found > 0
    return Redacted(text=text, counts=counts)
