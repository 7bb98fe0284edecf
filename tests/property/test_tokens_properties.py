"""Properties of signed link tokens over generated payloads and edits."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from engine.tokens import (
    MAX_SCORE,
    SigningKey,
    TokenPayload,
    TokenPurpose,
    TokenRejected,
    TokenSigner,
)

SIGNER = TokenSigner(
    [
        SigningKey("k2", b"new-secret-with-32-bytes-or-more"),
        SigningKey(
            "k1", b"old-secret-with-32-bytes-or-more", not_after=datetime(2100, 1, 1, tzinfo=UTC)
        ),
    ]
)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

survey_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:\-]{0,60}\Z")
lifetimes = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=400))


@st.composite
def payloads(draw: st.DrawFn) -> TokenPayload:
    purpose = draw(st.sampled_from(TokenPurpose))
    score = draw(st.integers(0, MAX_SCORE)) if purpose is TokenPurpose.SCORE else None
    return TokenPayload(
        survey_id=draw(survey_ids),
        purpose=purpose,
        expires_at=NOW + timedelta(seconds=1) + draw(lifetimes),
        score=score,
    )


@given(payload=payloads(), elapsed=st.floats(0, 1))
def test_a_token_verifies_to_its_payload_at_any_time_before_expiry(
    payload: TokenPayload, elapsed: float
) -> None:
    """Every link works for its whole life, with the exact survey, purpose and score."""
    token = SIGNER.sign(payload, NOW)
    moment = NOW + (payload.expires_at - NOW - timedelta(microseconds=1)) * elapsed
    assert SIGNER.verify(token, moment) == payload


@given(payload=payloads())
def test_a_token_is_refused_from_its_expiry_on(payload: TokenPayload) -> None:
    """No link outlives its survey."""
    token = SIGNER.sign(payload, NOW)
    assert isinstance(SIGNER.verify(token, payload.expires_at), TokenRejected)


@given(
    payload=payloads(),
    position=st.integers(min_value=0),
    replacement=st.characters(),
)
def test_any_single_character_change_is_rejected(
    payload: TokenPayload, position: int, replacement: str
) -> None:
    """One changed character (tampering or a typo) never yields a valid token."""
    token = SIGNER.sign(payload, NOW)
    index = position % len(token)
    tampered = token[:index] + replacement + token[index + 1 :]
    assume(tampered != token)
    assert isinstance(SIGNER.verify(tampered, NOW), TokenRejected)


@given(text=st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=120))
def test_random_strings_are_never_accepted(text: str) -> None:
    """Guessing a token must not work; anything not signed by us is refused."""
    assert isinstance(SIGNER.verify(text, NOW), TokenRejected)
