"""docs/configuration.md is the generated reference, and it covers every setting."""

from __future__ import annotations

from pathlib import Path

from schemas.config import Settings
from schemas.config_reference import reference_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_reference_equals_the_generated_one() -> None:
    """A hand-edited or stale reference misleads operators: regenerate it with the command."""
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        "run `palaute config reference > docs/configuration.md`"
    )


def test_reference_names_every_section_and_key() -> None:
    """A setting missing from the reference is a setting nobody finds."""
    text = reference_markdown()
    for name in Settings.model_fields:
        assert f"[{name}" in text, name
    assert "`PALAUTE_KAFKA__BOOTSTRAP_SERVERS`" in text
    assert "`PALAUTE_SECRETS__PSEUDONYMISATION_KEY`" in text
