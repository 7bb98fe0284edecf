"""SMS segment counting: Nordic text must stay GSM-7 and in one segment."""

from __future__ import annotations

import pytest

from connectors.sms_segments import (
    SmsEncoding,
    count_segments,
    is_gsm7,
    non_gsm7_characters,
)

FINNISH_QUESTION = "Kiitos asioinnista! Miten onnistuimme? Vastaa 1-5. Äänestys on vapaaehtoinen."
SWEDISH_QUESTION = "Tack för ditt ärende! Hur lyckades vi? Svara 1-5. Åsikten är frivillig."


#: The GSM 03.38 extension table: each costs two septets (escape + code).
GSM7_EXTENSION = "\f^{}\\[~]|€"


@pytest.mark.parametrize("char", ["@", "£", "$", "¥", "è", "é", "Ç", "Ø", "Δ", "ß", "É", "¡", "¿"])
def test_basic_table_characters_cost_one_septet(char: str) -> None:
    """The codec's table, not a hand-written one, decides: these are GSM-7 at one septet."""
    assert count_segments(char).encoding is SmsEncoding.GSM7
    assert count_segments(char).units == 1


@pytest.mark.parametrize("char", ["á", "č", "đ", "ŋ", "š", "ŧ", "ž", "õ", "ç", "\x1b"])
def test_sami_and_other_letters_outside_the_alphabet_force_ucs2(char: str) -> None:
    """Northern Sámi letters are outside GSM 03.38: a Sámi text goes out as UCS-2."""
    assert count_segments(char).encoding is SmsEncoding.UCS2


@pytest.mark.parametrize("letter", ["ä", "ö", "å", "Ä", "Ö", "Å"])
def test_finnish_and_swedish_letters_are_gsm7(letter: str) -> None:
    """These letters are in every Nordic survey; UCS-2 for them would halve capacity."""
    result = count_segments(letter * 160)
    assert result.encoding is SmsEncoding.GSM7
    assert result.units == 160
    assert result.segments == 1


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        (FINNISH_QUESTION, SmsEncoding.GSM7, len(FINNISH_QUESTION), 1),
        (SWEDISH_QUESTION, SmsEncoding.GSM7, len(SWEDISH_QUESTION), 1),
        ("a" * 160, SmsEncoding.GSM7, 160, 1),
        ("a" * 161, SmsEncoding.GSM7, 161, 2),
        ("a" * 306, SmsEncoding.GSM7, 306, 2),
        ("a" * 307, SmsEncoding.GSM7, 307, 3),
        ("€" * 80, SmsEncoding.GSM7, 160, 1),
        ("€" + "a" * 159, SmsEncoding.GSM7, 161, 2),
        ("[" * 81, SmsEncoding.GSM7, 162, 2),
        ("õ", SmsEncoding.UCS2, 1, 1),
        ("ä" * 69 + "õ", SmsEncoding.UCS2, 70, 1),
        ("ä" * 70 + "õ", SmsEncoding.UCS2, 71, 2),
        ("👍", SmsEncoding.UCS2, 2, 1),
        ("a" * 68 + "👍", SmsEncoding.UCS2, 70, 1),
        ("a" * 69 + "👍", SmsEncoding.UCS2, 71, 2),
        ("a" * 134, SmsEncoding.GSM7, 134, 1),
        ("õ" * 134, SmsEncoding.UCS2, 134, 2),
        ("õ" * 135, SmsEncoding.UCS2, 135, 3),
        ("", SmsEncoding.GSM7, 0, 0),
    ],
)
def test_segment_count_table(text: str, encoding: SmsEncoding, units: int, segments: int) -> None:
    """Each row is a boundary where the price of a survey changes."""
    result = count_segments(text)
    assert (result.encoding, result.units, result.segments) == (encoding, units, segments)


def test_extension_pair_is_not_split_across_segments() -> None:
    """A handset cannot join an escape in one part to its character in the next."""
    # 152 septets, then € (2 septets) does not fit in the 153 of part one.
    text = "a" * 152 + "€" + "a" * 10
    result = count_segments(text)
    assert result.units == 164
    assert result.segments == 2
    # 306 septets would fill two parts exactly, but the pair moves to part two.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text).units == 306
    assert count_segments(text).segments == 3


def test_surrogate_pair_is_not_split_across_segments() -> None:
    """An emoji split across two parts arrives as two broken characters."""
    text = "õ" * 66 + "👍" + "õ" * 66
    result = count_segments(text)
    assert result.units == 134
    assert result.segments == 3


def test_per_segment_capacity_drops_for_concatenated_messages() -> None:
    """The user data header takes room: 153 septets and 67 code units per part."""
    assert count_segments("a" * 160).per_segment == 160
    assert count_segments("a" * 161).per_segment == 153
    assert count_segments("õ").per_segment == 70
    assert count_segments("õ" * 71).per_segment == 67


def test_fits_one_segment_follows_the_count() -> None:
    """The policy asks this one question; it must agree with the count."""
    assert count_segments(FINNISH_QUESTION).fits_one_segment
    assert not count_segments("a" * 161).fits_one_segment


@pytest.mark.parametrize("char", list(GSM7_EXTENSION))
def test_every_extension_character_is_gsm7_and_costs_two(char: str) -> None:
    """Brackets and the euro sign keep GSM-7 but use two septets each."""
    assert is_gsm7(char)
    assert count_segments(char).units == 2


def test_non_gsm7_characters_names_the_culprits_once_in_order() -> None:
    """An operator fixing a template needs to know which character to replace."""
    assert non_gsm7_characters("Hyvää päivää “Õnne” õ 👍") == "“Õ”õ👍"
    assert non_gsm7_characters(SWEDISH_QUESTION) == ""
