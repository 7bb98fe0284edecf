"""The catalogue file: validated as the configuration is, and written back byte for byte."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from schemas.catalogue_document import (
    duration_text,
    entries_as_written,
    export_toml,
    seed_entries,
    validate_document,
)
from schemas.config import ConfigError, PolicyConfig, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "catalogue.toml"


def _round_trip(text: str) -> str:
    raw = tomllib.loads(text)
    document = validate_document(raw, PolicyConfig())
    defaults, touchpoints = entries_as_written(raw, document)
    return export_toml(defaults, touchpoints, document.alerts.csat_targets)


def test_the_example_catalogue_is_written_back_byte_for_byte() -> None:
    """Configuration as code: an exported file reviewed in a repository must not drift."""
    text = EXAMPLE.read_text(encoding="utf-8")
    assert _round_trip(text) == text


def test_the_example_catalogue_is_the_example_configurations() -> None:
    """The two example files describe one catalogue, as the seed writes it to the topic."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    assert export_toml(*seed_entries(settings)) == EXAMPLE.read_text(encoding="utf-8")


def test_an_entry_keeps_only_its_own_fields_and_the_rest_follow_the_defaults() -> None:
    """A touchpoint that leaves a field out must follow [defaults] when that changes."""
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    raw["defaults"]["expiry"] = "5d"
    document = validate_document(raw, PolicyConfig())
    _defaults, touchpoints = entries_as_written(raw, document)
    assert "expiry" not in touchpoints["phone-service-helsinki"]
    assert document.touchpoints["phone-service-helsinki"].expiry.days == 5


def test_a_file_with_problems_names_each_at_its_toml_path() -> None:
    """The import refuses what palaute config check refuses, in the same words."""
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    raw["touchpoints"]["phone-service-helsinki"]["sampling_rate"] = 2
    raw["touchpoints"]["health-centre-visit"]["send_window"] = {"not_before": "22:00:00"}
    with pytest.raises(ConfigError) as refused:
        validate_document(raw, PolicyConfig())
    paths = [problem.path for problem in refused.value.problems]
    assert paths == ["touchpoints.phone-service-helsinki.sampling_rate"]
    del raw["touchpoints"]["phone-service-helsinki"]["sampling_rate"]
    with pytest.raises(ConfigError, match="wholly in quiet hours"):
        validate_document(raw, PolicyConfig())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (90, "90s"), (300, "5m"), (7200, "2h"), (86_400, "1d"), (1_209_600, "2w")],
)
def test_a_duration_is_written_in_the_short_form_operators_write(seconds: int, text: str) -> None:
    """The export reads as the file an operator would write by hand."""
    from datetime import timedelta  # noqa: PLC0415 - only here

    assert duration_text(timedelta(seconds=seconds)) == text
