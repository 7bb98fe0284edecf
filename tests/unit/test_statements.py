"""Follow-up statements: configured per language, answered one event each, after a vote."""

from __future__ import annotations

import pydantic
import pytest

from schemas.base import Language
from schemas.config import TouchpointConfig


def test_statements_are_given_in_the_citizens_language_or_as_written_once() -> None:
    """A statement in three languages follows the page; a plain one reads the same in each."""
    touchpoint = TouchpointConfig(
        follow_up_statements=[
            {Language.FI: "Sain apua", Language.SV: "Jag fick hjälp", Language.EN: "I got help"},
            "Palvelu oli nopeaa.",
        ]
    )
    assert touchpoint.statements(Language.SV) == ("Jag fick hjälp", "Palvelu oli nopeaa.")
    assert touchpoint.statements(Language.SE) == ("Sain apua", "Palvelu oli nopeaa.")


@pytest.mark.parametrize(
    "statements",
    [
        [{Language.FI: "Sain apua", Language.EN: "I got help"}],
        [f"Väite {n}" for n in range(8)],
    ],
    ids=["a language missing", "more than seven"],
)
def test_statements_missing_a_language_or_too_many_are_refused(statements: list[object]) -> None:
    """A Swedish speaker must not meet a Finnish-only statement; the THL model has seven at most."""
    with pytest.raises(pydantic.ValidationError):
        TouchpointConfig(follow_up_statements=statements)
