"""Properties of SMS reply parsing and comment redaction over generated texts."""

from __future__ import annotations

import unicodedata

import phonenumbers
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.replies import Score, Unrecognised, UnrecognisedReason, parse_reply
from schemas.base import Scale
from schemas.identity_codes import contains_identity_code
from schemas.redaction import EMAIL_PATTERN, redact

scales = st.sampled_from(Scale)


def _no_numbers(char: str) -> bool:
    if char == "\N{KEYCAP TEN}":
        return False
    normal = unicodedata.normalize("NFKC", char)
    return unicodedata.numeric(char, None) is None and not any(
        unicodedata.numeric(part, None) is not None for part in normal
    )


noise = st.text(st.characters().filter(_no_numbers), max_size=20)


@given(st.text(), scales)
@example("9" * 5000, Scale.CSAT_5)
@example("\N{KEYCAP TEN}\N{VULGAR FRACTION ONE HALF}", Scale.NPS_11)
def test_parse_never_raises_and_scores_stay_on_the_scale(text: str, scale: Scale) -> None:
    """Any text a phone can send gets an answer, and no score off the scale is counted."""
    result = parse_reply(text, scale)
    if isinstance(result, Score):
        assert scale.contains(result.value)


@given(scales.flatmap(lambda s: st.tuples(st.just(s), st.integers(s.low, s.high))), noise, noise)
def test_one_number_in_any_noise_is_that_score(
    scale_and_score: tuple[Scale, int], before: str, after: str
) -> None:
    """Emoji, words and punctuation around the digits never change the score."""
    scale, score = scale_and_score
    assert parse_reply(f"{before} {score} {after}", scale) == Score(score)


@given(scales, st.integers(min_value=11), noise)
def test_numbers_above_every_scale_are_out_of_scale(scale: Scale, number: int, around: str) -> None:
    """45 is never read as a 4: a truncated number would be a wrong score."""
    assert parse_reply(f"{around} {number} {around}", scale) == Unrecognised(
        UnrecognisedReason.OUT_OF_SCALE
    )


# --- redaction ---------------------------------------------------------------------

_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


@st.composite
def identity_codes(draw: st.DrawFn) -> str:
    day, month, year = draw(st.integers(1, 28)), draw(st.integers(1, 12)), draw(st.integers(0, 99))
    individual = draw(st.integers(2, 999))
    digits = f"{day:02d}{month:02d}{year:02d}{individual:03d}"
    sign = draw(st.sampled_from("+-ABCDEFUVWXY"))
    return f"{digits[:6]}{sign}{digits[6:]}{_CHECK[int(digits) % 31]}"


emails = st.emails().map(str)
phones = st.sampled_from(
    ["040 123 4567", "+358 40 1234567", "09-123 4567", "0501234567", "+46 70 123 45 67"]
)
comments = st.lists(
    st.one_of(st.text(max_size=15), identity_codes(), emails, phones), max_size=8
).map(" ".join)


@settings(deadline=None)
@given(comments)
@example("010101-0101" + "31052-308T")
def test_redacted_comment_holds_no_email_or_identity_code(comment: str) -> None:
    """Whatever a citizen writes, no address or identity code leaves the web service."""
    result = redact(comment)
    assert EMAIL_PATTERN.search(result.text) is None
    assert "@" not in result.text or result.counts  # the counts are always reported
    assert not contains_identity_code(result.text)


@settings(deadline=None)
@given(comments)
def test_redacted_comment_holds_no_phone_number(comment: str) -> None:
    """The same number finder that removed numbers finds none left afterwards."""
    text = redact(comment).text
    assert list(phonenumbers.PhoneNumberMatcher(text, "FI")) == []


@settings(deadline=None)
@given(identity_codes())
def test_generated_identity_codes_are_valid(code: str) -> None:
    """The generator must make real codes, or the redaction property proves nothing."""
    assert contains_identity_code(code)


@settings(deadline=None)
@given(comments)
def test_redaction_is_idempotent(comment: str) -> None:
    """A stored comment re-read through redaction stays exactly as it was."""
    once = redact(comment)
    again = redact(once.text)
    assert again.text == once.text
    assert again.total == 0
