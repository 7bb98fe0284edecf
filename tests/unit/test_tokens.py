"""Signed link tokens: round trip, expiry, tampering, key rotation, length."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta

import pytest

from engine.tokens import (
    TAG_BYTES,
    RejectReason,
    SigningKey,
    TokenPayload,
    TokenPurpose,
    TokenRejected,
    TokenSigner,
    token_length,
)

NOW = datetime(2026, 3, 2, 9, 30, 15, 250_000, tzinfo=UTC)
SURVEY_ID = "s-01JD7Q9X4K2M"
NEW_KEY = SigningKey("k2", b"n" * 32)
OLD_KEY = SigningKey("k1", b"o" * 32)
LINK_BASE = "https://palaute.example.fi/r/"
B64URL = string.ascii_letters + string.digits + "-_"


def _payload(
    purpose: TokenPurpose = TokenPurpose.PAGE,
    score: int | None = None,
    lifetime: timedelta = timedelta(days=7),
    survey_id: str = SURVEY_ID,
) -> TokenPayload:
    return TokenPayload(
        survey_id=survey_id, purpose=purpose, expires_at=NOW + lifetime, score=score
    )


@pytest.mark.parametrize(
    ("purpose", "score"),
    [
        (TokenPurpose.SCORE, 0),
        (TokenPurpose.SCORE, 5),
        (TokenPurpose.SCORE, 10),
        (TokenPurpose.PAGE, None),
        (TokenPurpose.UNSUBSCRIBE, None),
    ],
)
def test_a_signed_token_verifies_to_the_same_payload(
    purpose: TokenPurpose, score: int | None
) -> None:
    """Each link in a message must lead back to exactly the survey and score it was made for."""
    signer = TokenSigner([NEW_KEY])
    payload = _payload(purpose, score)
    assert signer.verify(signer.sign(payload, NOW), NOW) == payload


def test_tokens_are_url_safe_without_padding() -> None:
    """A token goes into a URL path and an SMS as is, with no escaping."""
    token = TokenSigner([NEW_KEY]).sign(_payload(), NOW)
    assert set(token) <= set(B64URL)


def test_expiry_is_kept_in_whole_seconds_rounded_down() -> None:
    """The token carries seconds; rounding down never lets a link live longer than asked."""
    payload = _payload()
    assert payload.expires_at == (NOW + timedelta(days=7)).replace(microsecond=0)


def test_a_token_works_until_one_second_before_expiry_and_not_at_it() -> None:
    """The boundary is exact, so a survey's expiry and its links' expiry agree."""
    signer = TokenSigner([NEW_KEY])
    payload = _payload()
    token = signer.sign(payload, NOW)
    assert signer.verify(token, payload.expires_at - timedelta(microseconds=1)) == payload
    assert signer.verify(token, payload.expires_at) == TokenRejected(RejectReason.EXPIRED)
    assert signer.verify(token, payload.expires_at + timedelta(days=30)) == TokenRejected(
        RejectReason.EXPIRED
    )


def test_signing_an_already_expired_payload_is_refused() -> None:
    """A dead link in a message would only be found by the citizen who taps it."""
    signer = TokenSigner([NEW_KEY])
    with pytest.raises(ValueError, match="expired"):
        signer.sign(_payload(lifetime=timedelta(seconds=-1)), NOW)


def test_changing_any_character_of_a_token_is_rejected() -> None:
    """A forged or mistyped link must never cast a vote or unsubscribe someone."""
    signer = TokenSigner([NEW_KEY])
    token = signer.sign(_payload(TokenPurpose.SCORE, 4), NOW)
    for position, original in enumerate(token):
        for replacement in B64URL:
            if replacement == original:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            assert isinstance(signer.verify(tampered, NOW), TokenRejected), (position, replacement)


def test_flipping_any_bit_of_the_decoded_token_is_rejected() -> None:
    """Tampering below the text encoding, bit by bit, fails too."""
    signer = TokenSigner([NEW_KEY])
    token = signer.sign(_payload(TokenPurpose.SCORE, 4), NOW)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            encoded = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
            assert isinstance(signer.verify(encoded, NOW), TokenRejected), (index, bit)


def test_raising_the_score_with_a_recomputed_layout_fails_the_signature() -> None:
    """The attack that matters: a valid-looking token whose score was changed."""
    signer = TokenSigner([NEW_KEY])
    token = signer.sign(_payload(TokenPurpose.SCORE, 1), NOW)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[1] = 5  # the score byte
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert signer.verify(forged, NOW) == TokenRejected(RejectReason.BAD_SIGNATURE)


@pytest.mark.parametrize(
    "token",
    ["", "a", "abcde", "!!!!", "ä" * 40, "A" * 200, "AAAA" * 4, "Ev9p" + "=" * 4, "Ev9p.Ev9p"],
)
def test_garbage_is_reported_as_malformed(token: str) -> None:
    """Scanners and typos send anything; the reason must say it was not a token at all."""
    assert TokenSigner([NEW_KEY]).verify(token, NOW) == TokenRejected(RejectReason.MALFORMED)


def test_an_unknown_key_id_is_reported_as_such() -> None:
    """After a key is removed its links fail with a reason operators can recognise."""
    token = TokenSigner([OLD_KEY]).sign(_payload(), NOW)
    assert TokenSigner([NEW_KEY]).verify(token, NOW) == TokenRejected(RejectReason.UNKNOWN_KEY)


def test_a_token_signed_with_another_secret_under_the_same_key_id_is_a_bad_signature() -> None:
    """The key id only selects a key; it proves nothing by itself."""
    impostor = TokenSigner([SigningKey("k2", b"x" * 32)])
    token = impostor.sign(_payload(), NOW)
    assert TokenSigner([NEW_KEY]).verify(token, NOW) == TokenRejected(RejectReason.BAD_SIGNATURE)


def test_rotation_signs_with_the_new_key_and_accepts_the_old_one_during_its_grace_period() -> None:
    """Links already in citizens' phones keep working for a while after the key changes."""
    grace_end = NOW + timedelta(days=14)
    old_signer = TokenSigner([OLD_KEY])
    rotated = TokenSigner([NEW_KEY, SigningKey("k1", OLD_KEY.secret, not_after=grace_end)])
    payload = _payload(lifetime=timedelta(days=30))
    old_token = old_signer.sign(payload, NOW)
    new_token = rotated.sign(payload, NOW)

    assert new_token != old_token
    assert old_signer.verify(new_token, NOW) == TokenRejected(RejectReason.UNKNOWN_KEY)
    assert rotated.verify(old_token, grace_end - timedelta(seconds=1)) == payload
    assert rotated.verify(old_token, grace_end) == TokenRejected(RejectReason.UNKNOWN_KEY)
    assert rotated.verify(new_token, grace_end + timedelta(days=1)) == payload


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "at least one key"),
        ([NEW_KEY, SigningKey("k2", b"z" * 32)], "unique"),
        ([SigningKey("k1", b"o" * 32, not_after=NOW)], "retiring"),
    ],
)
def test_a_signer_refuses_a_key_set_that_cannot_work(keys: list[SigningKey], message: str) -> None:
    """Configuration mistakes are found at start-up, not when the first link fails."""
    with pytest.raises(ValueError, match=message):
        TokenSigner(keys)


@pytest.mark.parametrize(
    ("key_id", "secret", "message"),
    [
        ("", b"s" * 32, "key id"),
        ("toolongid", b"s" * 32, "key id"),
        ("k-1", b"s" * 32, "key id"),
        ("k1", b"short", "32 random bytes"),
    ],
)
def test_a_signing_key_must_be_short_named_and_long_enough(
    key_id: str, secret: bytes, message: str
) -> None:
    """A short secret could be guessed; a long key id would lengthen every SMS."""
    with pytest.raises(ValueError, match=message):
        SigningKey(key_id, secret)


def test_the_secret_never_appears_in_a_keys_repr() -> None:
    """Keys end up in debug output and tracebacks."""
    assert "sssss" not in repr(SigningKey("k1", b"s" * 32))


@pytest.mark.parametrize(
    ("purpose", "score", "message"),
    [
        (TokenPurpose.SCORE, None, "score"),
        (TokenPurpose.PAGE, 3, "score"),
        (TokenPurpose.SCORE, 255, "score"),
        (TokenPurpose.SCORE, -1, "score"),
    ],
)
def test_a_payload_needs_a_score_exactly_when_it_is_a_score_link(
    purpose: TokenPurpose, score: int | None, message: str
) -> None:
    """A page link that carried a score could be replayed as a vote."""
    with pytest.raises(ValueError, match=message):
        _payload(purpose, score)


@pytest.mark.parametrize("survey_id", ["", "has space", "ä-survey", "x" * 129, "-leading"])
def test_a_payload_refuses_survey_ids_that_are_not_identifiers(survey_id: str) -> None:
    """The survey id goes into the token verbatim and must be safe in a URL."""
    with pytest.raises(ValueError, match="Identifier"):
        _payload(survey_id=survey_id)


def test_a_naive_expiry_is_refused() -> None:
    """A naive time is off by two or three hours in Finland."""
    with pytest.raises(ValueError, match="time zone"):
        TokenPayload(SURVEY_ID, TokenPurpose.PAGE, datetime(2026, 3, 9, 12, 0))  # noqa: DTZ001 -- the naive time is the point


@pytest.mark.parametrize(
    ("survey_id", "max_link"),
    [
        (SURVEY_ID, 80),  # the ids the scheduler makes today (14 characters)
        ("0b7a2f3c-5d1e-4f60-9a8b-7c6d5e4f3a2b", 110),  # a UUID in its text form
    ],
)
def test_an_sms_link_stays_short(survey_id: str, max_link: int) -> None:
    """The link shares one 160-character SMS with the question and the reply hint."""
    signer = TokenSigner([NEW_KEY])
    token = signer.sign(_payload(survey_id=survey_id), NOW)
    link = LINK_BASE + token
    assert len(token) == token_length(len(survey_id), len(NEW_KEY.key_id))
    assert len(link) <= max_link
    # What each part costs: 7 header bytes, the key id, the survey id and the 96-bit tag.
    assert len(token) == -(-(7 + 2 + len(survey_id) + TAG_BYTES) * 4 // 3)


def test_the_tag_is_at_least_96_bits() -> None:
    """Shorter tags would make online guessing of a valid score link thinkable."""
    assert TAG_BYTES * 8 >= 96
