"""Identifiers Palaute makes, spelt so that none can ever read as an identity code.

Since 2023 the letters A-F are century signs of the henkilötunnus, so a hex
identifier (a digest, a UUID) now and then holds six digits, a letter A-F,
three digits and a matching check character: a valid identity code by shape
and check. Every event Palaute reads passes the identity-code check
(:mod:`schemas.identity_codes`), so such an id got a citizen's answer refused
at the boundary, and the privacy scan flagged topics that hold none.

The ids made here are written in lowercase letters only. A code needs six
digits in a row, so a digit-free id cannot be one, or be part of one with
what stands next to it: the separators used around ids (``-``, ``:``, quotes)
are not digits either. The check itself stays as strict as before; it is the
ids that can no longer take the shape.

Twenty-six characters of 26 letters carry about 122 bits, as many as a
random UUID, in fewer characters than 32 hex digits: ids travel in SMS links
(inside the signed tokens of :mod:`engine.tokens`), where every character counts.
"""

from __future__ import annotations

import hashlib

#: The alphabet of every id made here; no digits, URL-safe, one case.
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
#: Letters in an id: 26**26 is about 2**122.
ID_LETTERS = 26
#: Bytes of entropy a random id should be given (more than the letters can hold).
RANDOM_BYTES = 16
_TRIPLES = tuple(a + b + c for a in ALPHABET for b in ALPHABET for c in ALPHABET)
_CHUNK_LETTERS = 6
_CHUNK = len(ALPHABET) ** _CHUNK_LETTERS


def letters(raw: bytes, length: int = ID_LETTERS) -> str:
    """Write bytes as ``length`` letters of :data:`ALPHABET` (the number they read, modulo).

    Give at least ``length * 4.7`` bits (16 bytes for the default 26 letters)
    so every letter is uniform enough for an identifier. Six letters are
    taken per division of the big number, through a table of all three-letter
    strings: the intake derives several ids per contact.
    """
    number = int.from_bytes(raw, "big")
    chunks: list[str] = []
    for _ in range(-(-length // _CHUNK_LETTERS)):
        number, chunk = divmod(number, _CHUNK)
        high, low = divmod(chunk, len(_TRIPLES))
        chunks.append(_TRIPLES[high] + _TRIPLES[low])
    return "".join(reversed(chunks))[-length:]


def derived_id(label: str, *parts: str, length: int = ID_LETTERS) -> str:
    """Derive an id from its parts, identically in every process and replay.

    Each part is length-prefixed before hashing, so ("a:b", "c") and
    ("a", "b:c") never give the same id.
    """
    digest = hashlib.sha256(label.encode() + b"\x00")
    for part in parts:
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    # 128 bits are more than 26 letters hold (about 122), and a smaller number divides faster.
    return letters(digest.digest()[:RANDOM_BYTES], length)
