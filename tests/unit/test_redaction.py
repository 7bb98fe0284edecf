"""Comments lose phone numbers, email addresses and identity codes before they go anywhere."""

from __future__ import annotations

import pytest

from schemas.identity_codes import contains_identity_code, identity_code_spans
from schemas.redaction import SensitiveKind, redact

PHONE = SensitiveKind.PHONE
EMAIL = SensitiveKind.EMAIL
CODE = SensitiveKind.IDENTITY_CODE


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("Soita 040 123 4567 kiitos", "Soita [phone] kiitos"),
        ("numeroni +358 40 1234567.", "numeroni [phone]."),
        ("Helsingin numero 09-123 4567", "Helsingin numero [phone]"),
        ("puh. 050-1234567", "puh. [phone]"),
        ("0401234567", "[phone]"),
        ("00358 40 123 4567", "[phone]"),
        ("ring +46 70 123 45 67", "ring [phone]"),
        ("call +44 20 7946 0958 please", "call [phone] please"),
    ],
)
def test_phone_numbers_in_every_format_are_replaced(comment: str, expected: str) -> None:
    """Citizens write numbers as they say them; every common form must go."""
    result = redact(comment)
    assert result.text == expected
    assert result.counts[PHONE] == 1


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("s-posti matti.meikalainen@example.fi", "s-posti [email]"),
        ("Mail: a.b+c@posti.example.com.", "Mail: [email]."),
        ("<anna_k@kunta.fi>", "<[email]>"),
        ("åsa@exempel.se tack", "[email] tack"),
    ],
)
def test_email_addresses_are_replaced(comment: str, expected: str) -> None:
    """An address in a comment would reach every dashboard and backup."""
    result = redact(comment)
    assert result.text == expected
    assert result.counts[EMAIL] == 1


@pytest.mark.parametrize(
    "code",
    ["131052-308T", "131052A308T", "010190-123F", "131052-308X"],  # the last has a wrong check
)
def test_identity_codes_are_replaced_even_with_a_wrong_check_character(code: str) -> None:
    """A mistyped code still points at one person."""
    result = redact(f"hetu {code}, kiitos")
    assert result.text == "hetu [id-code], kiitos"
    assert result.counts[CODE] == 1
    assert result.counts[PHONE] == 0


@pytest.mark.parametrize(
    "comment",
    [
        "Odotin 45 minuuttia, klo 14.30 vasta vastattiin.",
        "Tiketti 123456 ja asia 12345678 ovat yhä auki.",
        "Arvosana 4/5, vuonna 2026 parempi kuin 2025.",
        "Palvelu oli erinomaista!",
    ],
)
def test_ordinary_numbers_and_text_stay(comment: str) -> None:
    """Case numbers, times and years are what makes feedback actionable."""
    result = redact(comment)
    assert result.text == comment
    assert result.total == 0


def test_several_kinds_in_one_comment_are_counted_by_kind() -> None:
    """The counts tell operations what kind of details citizens leave, without the details."""
    result = redact(
        "Soittakaa 040 123 4567 tai 09-123 4567, tai matti@example.fi; hetu 131052-308T."
    )
    assert result.text == "Soittakaa [phone] tai [phone], tai [email]; hetu [id-code]."
    assert dict(result.counts) == {PHONE: 2, EMAIL: 1, CODE: 1}
    assert result.total == 4


def test_redacting_twice_changes_nothing() -> None:
    """Placeholders hold no digits or "@", so a stored comment is stable when re-read."""
    once = redact("040 123 4567 / a@b.fi / 131052-308T")
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.total == 0


def test_code_overlapping_a_look_alike_never_survives_whole() -> None:
    """A valid code sharing characters with a look-alike must not slip through."""
    text = "010101-0101" + "31052-308T"  # the look-alike's last digit starts a valid code
    assert "131052-308T" in text
    result = redact(text)
    assert not contains_identity_code(result.text)
    assert "131052-308T" not in result.text
    assert result.counts[CODE] == 1


def test_identity_code_spans_checked_and_unchecked() -> None:
    """Refusing events needs valid codes only; removing them takes every look-alike."""
    text = "a 131052-308T b 131052-308X"
    assert list(identity_code_spans(text)) == [(2, 13)]
    assert list(identity_code_spans(text, checked=False)) == [(2, 13), (16, 27)]
