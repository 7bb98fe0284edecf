"""Value types of the contracts: scales, identity codes, dead-letter headers, topics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.base import Scale
from schemas.deadletter import DeadLetter
from schemas.decoding import EVENT_TYPES, Rejected, decode_event
from schemas.identity_codes import contains_identity_code, paths_with_identity_codes
from schemas.samples import SAMPLES
from schemas.topics import TOPICS, topic

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("scale", "low", "high"),
    [(Scale.CSAT_5, 1, 5), (Scale.NPS_11, 0, 10), (Scale.CES_7, 1, 7), (Scale.SMILEY_4, 1, 4)],
)
def test_scale_bounds(scale: Scale, low: int, high: int) -> None:
    """Reply parsing and metrics both rely on the bounds being right for each instrument."""
    assert (scale.low, scale.high) == (low, high)
    assert scale.normalise(low) == 0.0
    assert scale.normalise(high) == 1.0
    assert not scale.contains(low - 1)
    assert not scale.contains(high + 1)


def test_normalise_refuses_scores_off_the_scale() -> None:
    """A 6 on a five-point scale is a bug upstream, not a very good rating."""
    with pytest.raises(ValueError, match="outside"):
        Scale.CSAT_5.normalise(6)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("131052-308T", True),  # 1900s, classic separator
        ("131052A308T", True),  # 2000s
        ("010594Y9021", True),  # 1900s, separator introduced in 2023; temporary number
        ("020502E902X", True),  # 2000s, separator introduced in 2023
        ("020502E902Y", False),  # wrong check character
        ("nimi 131052-308T, asia", True),
        ("131052-308U", False),  # wrong check character
        ("321352-308T", False),  # no such date
        ("tilausnumero 1310523308", False),
        ("", False),
    ],
)
def test_identity_code_detection(text: str, found: bool) -> None:
    """Refuse real codes wherever they hide, and only real codes."""
    assert contains_identity_code(text) is found


def test_identity_code_paths_point_at_the_field() -> None:
    """An integrator needs to know which field leaks the code."""
    value = {"a": {"b": ["ok", "x 131052-308T"]}, "131052-308T": 1}
    assert sorted(paths_with_identity_codes(value)) == ["131052-308T", "a.b[1]"]


def test_dead_letter_headers_round_trip() -> None:
    """The reason travels in headers beside the untouched original bytes."""
    letter = SAMPLES["dead-letter"](NOW)
    assert isinstance(letter, DeadLetter)
    headers = letter.to_headers()
    assert all(name.startswith("palaute.dlq.") for name, _ in headers)
    assert DeadLetter.from_headers(headers) == letter


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_passes_the_gate(name: str) -> None:
    """Samples are what integrators copy; each must be valid as printed."""
    event = SAMPLES[name](NOW)
    decoded = decode_event(event.model_dump_json().encode(), now=NOW)
    assert not isinstance(decoded, Rejected), decoded
    assert decoded == event


def test_every_event_type_has_a_sample_and_a_topic() -> None:
    """A type without a sample is undocumented; one without a topic is unreachable."""
    on_topics = {model for spec in TOPICS for model in spec.messages}
    assert set(EVENT_TYPES.values()) == on_topics
    sampled = {type(build(NOW)) for build in SAMPLES.values()}
    assert sampled == on_topics


def test_topic_lookup_fails_loudly_on_a_typo() -> None:
    """A misspelt topic would otherwise be auto-created and silently unused."""
    assert topic("palaute.contacts.v1").name == "palaute.contacts.v1"
    with pytest.raises(KeyError):
        topic("palaute.contact.v1")
