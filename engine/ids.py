"""Identifiers Palaute makes, spelt so that none can ever read as an identity code.

Since 2023 the letters A-F are century signs of the henkilötunnus, so a hex
identifier (a digest, a UUID) now and then holds six digits, a letter A-F,
three digits and a matching check character: a valid identity code by shape
and check. Every event Palaute reads passes the identity-code check
(:mod:`schemas.identity_codes`), so such an id got a citizen's answer refused
at the boundary, and the privacy scan flagged topics that hold none.

The ids made here are hex written with the letters a-p for the sixteen
digits (``0`` is ``a``, ``f`` is ``p``). A code needs six digits in a row,
so a digit-free id cannot be one, or be part of one with what stands next to
it: the separators used around ids (``-``, ``:``, ``|``, quotes) are not
digits either. The check itself stays as strict as before; it is the ids
that can no longer take the shape.

The same bits take as many characters as hex did, so ids in SMS links (inside
the signed tokens of :mod:`engine.tokens`) are no longer than before, and
writing them is one ``str.translate`` (the intake derives three per contact).
"""

from __future__ import annotations

import hashlib

#: The alphabet of every id made here: a-p stand for the hex digits 0-f.
ALPHABET = "abcdefghijklmnop"
#: Bytes of entropy of a random id, and of a derived one: 32 letters.
RANDOM_BYTES = 16
#: Letters of a fingerprint: 80 bits, plenty to tell apart one citizen's contacts.
FINGERPRINT_LETTERS = 20
_HEX_AS_LETTERS = str.maketrans("0123456789abcdef", ALPHABET)


def letters(raw: bytes, length: int | None = None) -> str:
    """Write bytes as letters, two per byte (the first ``length`` of them, if given)."""
    return raw.hex()[:length].translate(_HEX_AS_LETTERS)


def _digest(label: str, parts: tuple[str, ...]) -> bytes:
    """Hash the label and the length-prefixed parts: ("a:b", "c") and ("a", "b:c") differ."""
    message = label + "\x00" + "".join([f"{len(part)}:{part}" for part in parts])
    return hashlib.sha256(message.encode()).digest()


def derived_id(label: str, *parts: str) -> str:
    """Derive an id of 128 bits (32 letters) from its parts, alike in every process and replay."""
    return letters(_digest(label, parts)[:RANDOM_BYTES])


def fingerprint(label: str, *parts: str, length: int = FINGERPRINT_LETTERS) -> str:
    """Derive a shorter fingerprint to remember something by, as :func:`derived_id` does."""
    return letters(_digest(label, parts), length)
