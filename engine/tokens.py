"""Signed, expiring tokens for the links in survey messages.

A token names a survey, what the link is for (a score, the survey page, the
unsubscribe action), the score when the link is one, and when the link stops
working. It is signed, not encrypted: nothing in it is secret (the survey id
is a random identifier, never a phone number or an address), but nobody can
forge one or change its score without the key.

Tokens are short because they travel in SMS, where every character counts
against one 160-septet segment: the payload is packed into bytes and written in
base64url without padding, so a link ``https://palaute.example.fi/r/<token>``
stays under 80 characters for the usual survey ids.

Layout (version 1), before base64url::

    byte 0        version (high nibble) and purpose (low nibble)
    byte 1        score, or 255 when the link carries none
    bytes 2..5    expiry, whole seconds since the Unix epoch, big-endian
    byte 6        length k of the key id
    k bytes       key id (ASCII)
    n bytes       survey id (ASCII; everything up to the tag)
    12 bytes      tag: HMAC-SHA256 over a context label and all bytes above,
                  truncated to 96 bits

Why 96 bits of tag: a forger has no offline test, each guess costs one HTTP
request to our endpoint, and succeeds with probability 2**-96; at a million
requests a second that is about 10**15 years of expected work. NIST SP 800-107
allows HMAC truncation far below that when guesses are limited (it sets 32 bits
as the floor); 96 bits is what IPsec's HMAC-SHA1-96 uses. The birthday bound that
RFC 2104 mentions for choosing half the hash length concerns collisions an
attacker cannot find without the key. Each further byte would cost 1.3
characters in every SMS.

SMS links carry a **survey code** instead (:meth:`TokenSigner.survey_code`):
16 characters, the first 96 bits of an HMAC-SHA256 of the survey id, written
in base64url. It says nothing by itself; the web service looks it up among
the open surveys it knows (it computes the same code for each one), and the
survey's own expiry ends the link. Forging one is as hard as forging a
token's tag: without the key, a guess hits one of a million open surveys
with probability 2**-76 per request. It keeps an SMS link at 45 characters
(``https://palaute.example.fi/r/`` and the code) where a token made it 104, and
the question, the organisation and the link fit one 160-septet segment.

Key rotation: the first key signs; every key listed verifies. A retiring key
keeps a ``not_after`` instant, after which tokens it signed are refused, so
links already sent keep working for a grace period after the new key takes over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

VERSION = 1
TAG_BYTES = 12
MAX_KEY_ID_LENGTH = 8
MIN_SECRET_BYTES = 32
MAX_SCORE = 254
_NO_SCORE = 255
_HEADER = struct.Struct(">BBIB")
_CONTEXT = b"palaute-link-token\x00"
_MAX_EXPIRY = 2**32 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_CODE_CONTEXT = b"palaute-survey-code\x00"
#: Characters of a survey code: 12 bytes (96 bits, as a token's tag) in base64url.
SURVEY_CODE_LENGTH = 16
_SURVEY_CODE = re.compile(r"[A-Za-z0-9_-]{16}")
_KEY_ID = re.compile(r"[A-Za-z0-9]{1,8}")
# The Identifier pattern of schemas.base, restated for bytes-level parsing.
_SURVEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


class TokenPurpose(StrEnum):
    """What following the link does."""

    SCORE = "score"  # a one-tap score link: opens the page with this score chosen
    PAGE = "page"  # the survey page (the SMS link, "answer here" in email)
    UNSUBSCRIBE = "unsubscribe"  # List-Unsubscribe and the unsubscribe link


class _PurposeCode(IntEnum):
    SCORE = 1
    PAGE = 2
    UNSUBSCRIBE = 3


_CODE_OF = {
    TokenPurpose.SCORE: _PurposeCode.SCORE,
    TokenPurpose.PAGE: _PurposeCode.PAGE,
    TokenPurpose.UNSUBSCRIBE: _PurposeCode.UNSUBSCRIBE,
}
_PURPOSE_OF = {code: purpose for purpose, code in _CODE_OF.items()}


class RejectReason(StrEnum):
    """Why a token was refused; safe to log and count (it names no person)."""

    EXPIRED = "expired"
    BAD_SIGNATURE = "bad-signature"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"


@dataclass(frozen=True, slots=True)
class TokenPayload:
    """What a token says.

    ``expires_at`` is kept in whole seconds (UTC), rounded down: that is the
    precision the token carries, and rounding down never extends a link's life.
    A score link needs a score; other links must not carry one.
    """

    survey_id: str
    purpose: TokenPurpose
    expires_at: datetime
    score: int | None = None

    def __post_init__(self) -> None:
        if not _SURVEY_ID.fullmatch(self.survey_id):
            raise ValueError("survey id is not an Identifier (1-128 URL-safe ASCII characters)")
        if self.expires_at.tzinfo is None or self.expires_at.utcoffset() is None:
            raise ValueError("expires_at needs a time zone")
        if (self.purpose is TokenPurpose.SCORE) != (self.score is not None):
            raise ValueError("a score link needs a score, and only a score link has one")
        if self.score is not None and not 0 <= self.score <= MAX_SCORE:
            raise ValueError(f"score must lie in 0..{MAX_SCORE}")
        seconds = (self.expires_at - _EPOCH) // _SECOND
        if not 0 <= seconds <= _MAX_EXPIRY:
            raise ValueError("expires_at is outside 1970..2106")
        object.__setattr__(self, "expires_at", _EPOCH + seconds * _SECOND)

    def is_expired(self, now: datetime) -> bool:
        """Tell whether the link is dead: it works before its expiry instant, not at it."""
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class TokenRejected:
    """A token that must not be acted on, and why."""

    reason: RejectReason


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One HMAC key: a short id written into each token, and the secret.

    ``not_after`` marks a retiring key: tokens it signed verify until then,
    which is the grace period for links already in citizens' phones.
    """

    key_id: str
    secret: bytes = field(repr=False)
    not_after: datetime | None = None

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            raise ValueError(f"key id must be 1-{MAX_KEY_ID_LENGTH} ASCII letters or digits")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a signing secret needs at least {MIN_SECRET_BYTES} random bytes")
        if self.not_after is not None and self.not_after.utcoffset() is None:
            raise ValueError("not_after needs a time zone")

    def accepts_at(self, now: datetime) -> bool:
        """Whether tokens signed with this key are still honoured at ``now``."""
        return self.not_after is None or now < self.not_after


class TokenSigner:
    """Signs with the first key and verifies with any key still in its grace period."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("a token signer needs at least one key")
        ids = [key.key_id for key in keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique")
        if keys[0].not_after is not None:
            raise ValueError("the signing key (the first) must not be a retiring key")
        self._signing_key = keys[0]
        self._keys = {key.key_id: key for key in keys}

    def sign(self, payload: TokenPayload, now: datetime) -> str:
        """Return the URL-safe token for ``payload``.

        ``now`` is taken so that signing an already expired link is refused
        at once rather than discovered by a citizen.
        """
        if payload.is_expired(now):
            raise ValueError("refusing to sign a token that is already expired")
        key = self._signing_key
        key_id = key.key_id.encode("ascii")
        body = (
            _HEADER.pack(
                (VERSION << 4) | _CODE_OF[payload.purpose],
                _NO_SCORE if payload.score is None else payload.score,
                (payload.expires_at - _EPOCH) // _SECOND,
                len(key_id),
            )
            + key_id
            + payload.survey_id.encode("ascii")
        )
        return _b64encode(body + _tag(key.secret, body))

    def survey_code(self, survey_id: str) -> str:
        """Return the opaque code of a survey's SMS link, made with the signing key."""
        return _survey_code(self._signing_key.secret, survey_id)

    def survey_codes(self, survey_id: str) -> dict[str, str]:
        """Return the code of a survey under every key, code to key id, for looking codes up."""
        return {_survey_code(key.secret, survey_id): key.key_id for key in self._keys.values()}

    def accepts_key(self, key_id: str, now: datetime) -> bool:
        """Whether links made with the key ``key_id`` are still honoured at ``now``."""
        key = self._keys.get(key_id)
        return key is not None and key.accepts_at(now)

    def verify(self, token: str, now: datetime) -> TokenPayload | TokenRejected:
        """Return the payload of a genuine, unexpired token, or why it is refused.

        The signature is checked before expiry, so an expired-looking forgery
        reports a bad signature, and the reason counted is the true one.
        """
        unpacked = _unpack(token)
        if unpacked is None:
            return TokenRejected(RejectReason.MALFORMED)
        key = self._keys.get(unpacked.key_id)
        if key is None or not key.accepts_at(now):
            return TokenRejected(RejectReason.UNKNOWN_KEY)
        if not hmac.compare_digest(unpacked.tag, _tag(key.secret, unpacked.body)):
            return TokenRejected(RejectReason.BAD_SIGNATURE)
        if unpacked.payload.is_expired(now):
            return TokenRejected(RejectReason.EXPIRED)
        return unpacked.payload


@dataclass(frozen=True, slots=True)
class _Unpacked:
    """A token taken apart, not yet authenticated."""

    key_id: str
    body: bytes
    tag: bytes
    payload: TokenPayload


def _unpack(token: str) -> _Unpacked | None:
    """Split a token into its fields; None when it cannot be a token at all."""
    raw = _b64decode(token)
    if raw is None or len(raw) < _HEADER.size + 1 + TAG_BYTES:
        return None
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    version_purpose, score, expiry, key_id_length = _HEADER.unpack_from(body)
    key_id_end = _HEADER.size + key_id_length
    if version_purpose >> 4 != VERSION:
        return None
    try:
        key_id = body[_HEADER.size : key_id_end].decode("ascii")
        payload = TokenPayload(
            survey_id=body[key_id_end:].decode("ascii"),
            purpose=_PURPOSE_OF[_PurposeCode(version_purpose & 0x0F)],
            expires_at=_EPOCH + expiry * _SECOND,
            score=None if score == _NO_SCORE else score,
        )
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    if not _KEY_ID.fullmatch(key_id):
        return None
    return _Unpacked(key_id=key_id, body=body, tag=tag, payload=payload)


def token_length(survey_id_length: int, key_id_length: int) -> int:
    """Characters in a token, for budgeting SMS text before any token exists."""
    raw = _HEADER.size + key_id_length + survey_id_length + TAG_BYTES
    return (raw * 8 + 5) // 6


def is_survey_code(text: str) -> bool:
    """Whether ``text`` has the shape of a survey code (a token is always longer)."""
    return _SURVEY_CODE.fullmatch(text) is not None


def _survey_code(secret: bytes, survey_id: str) -> str:
    digest = hmac.new(secret, _CODE_CONTEXT + survey_id.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(digest[:TAG_BYTES])


def _tag(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + body, hashlib.sha256).digest()[:TAG_BYTES]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(token: str) -> bytes | None:
    """Decode strict base64url; None for anything but the one canonical spelling.

    The standard decoder skips unknown characters and ignores the spare low
    bits of the last character, so different strings could decode to the same
    bytes. Re-encoding and comparing makes every changed character a rejection.
    """
    if not token.isascii() or len(token) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == token else None
