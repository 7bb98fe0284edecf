"""Pseudonymous citizen keys: stable, keyed, and never the identity itself."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter

from engine.pseudonym import citizen_key
from schemas.base import CitizenKey
from schemas.contacts import Citizen

SECRET = b"k" * 32
OTHER_SECRET = b"q" * 32
CRM = "/crm/helsinki"
BOOKING = "/booking/espoo"


def _citizen(**fields: object) -> Citizen:
    return Citizen.model_validate(fields)


def test_the_key_is_a_valid_citizen_key() -> None:
    """Events carry the key in a CitizenKey field; an invalid one would fail their validation."""
    key = citizen_key(SECRET, _citizen(phone="+358401234567"), source=CRM)
    assert TypeAdapter(CitizenKey).validate_python(key) == key
    assert re.fullmatch(r"[0-9a-f]{64}", key)


def test_the_same_citizen_gets_the_same_key_every_time() -> None:
    """Per-citizen rules only work when every contact of a person lands on one key."""
    first = citizen_key(SECRET, _citizen(id="c-1042", phone="+358401234567"), source=CRM)
    again = citizen_key(SECRET, _citizen(id="c-1042", email="x@example.com"), source=CRM)
    assert first == again


def test_the_key_differs_per_secret() -> None:
    """Without the secret, nobody can recompute keys from a list of phone numbers."""
    citizen = _citizen(phone="+358401234567")
    assert citizen_key(SECRET, citizen, source=CRM) != citizen_key(
        OTHER_SECRET, citizen, source=CRM
    )


@pytest.mark.parametrize(
    ("fields", "needles"),
    [
        ({"phone": "+358401234567"}, ["+358401234567", "358401234567", "0401234567"]),
        ({"email": "Matti.Meikalainen@example.com"}, ["matti", "example"]),
        ({"id": "c-1042", "phone": "+358401234567"}, ["c-1042", "1042", "358401234567"]),
    ],
)
def test_the_key_never_contains_the_identity(fields: dict[str, str], needles: list[str]) -> None:
    """The key travels in logs and metrics; it must not leak what it stands for."""
    key = citizen_key(SECRET, _citizen(**fields), source=CRM)
    for needle in needles:
        assert needle.lower() not in key


def test_the_source_reference_wins_over_phone_and_email() -> None:
    """A citizen changing numbers keeps one key while the source system knows them."""
    old = citizen_key(SECRET, _citizen(id="c-7", phone="+358401234567"), source=CRM)
    new = citizen_key(SECRET, _citizen(id="c-7", phone="+358501234567"), source=CRM)
    assert old == new


def test_the_same_reference_in_two_systems_is_two_people() -> None:
    """References are local to a system; merging strangers would share opt-outs and caps."""
    citizen = _citizen(id="c-1042", phone="+358401234567")
    assert citizen_key(SECRET, citizen, source=CRM) != citizen_key(SECRET, citizen, source=BOOKING)


def test_without_a_reference_the_phone_joins_systems() -> None:
    """The same mobile number reached through two systems is one citizen."""
    citizen = _citizen(phone="+358401234567", email="a@example.com")
    assert citizen_key(SECRET, citizen, source=CRM) == citizen_key(SECRET, citizen, source=BOOKING)


def test_phone_wins_over_email() -> None:
    """A phone number is the more stable identity when both are known."""
    with_email = citizen_key(
        SECRET, _citizen(phone="+358401234567", email="a@example.com"), source=CRM
    )
    phone_only = citizen_key(SECRET, _citizen(phone="+358401234567"), source=CRM)
    assert with_email == phone_only


def test_email_case_does_not_split_a_citizen() -> None:
    """Front-office systems capitalise addresses differently; the key must not."""
    upper = citizen_key(SECRET, _citizen(email="Maija.Virtanen@Example.COM"), source=CRM)
    lower = citizen_key(SECRET, _citizen(email="maija.virtanen@example.com"), source=CRM)
    assert upper == lower


def test_a_reference_that_reads_like_a_number_is_not_that_number() -> None:
    """Kinds are separated before hashing, so an id never collides with a phone."""
    by_id = citizen_key(SECRET, _citizen(id="358401234567", email="a@example.com"), source="")
    by_phone = citizen_key(SECRET, _citizen(phone="+358401234567"), source="")
    assert by_id != by_phone


def test_an_empty_secret_is_refused() -> None:
    """An HMAC with an empty key is a plain hash anyone can recompute."""
    with pytest.raises(ValueError, match="must not be empty"):
        citizen_key(b"", _citizen(phone="+358401234567"), source=CRM)
