"""``palaute catalogue import`` and ``export`` against a real broker: the file comes back as it was.

Configuration as code: the catalogue kept in a repository is imported, and
exported again for review; a byte that moved would show as a change no one
made. ``--dry-run`` shows the difference and writes nothing; a file that
does not validate is refused, naming the field, and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from palaute.cli import main

if TYPE_CHECKING:
    from tests.fixtures import RunTopics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "catalogue.toml"


@pytest.fixture
def run_topics() -> RunTopics:
    """Create no topic: the import creates the catalogue topic as the worker would."""
    from tests.fixtures import RunTopics  # noqa: PLC0415 - the fixture's own type

    return RunTopics(bases=(), internal=())


def _config(tmp_path: Path, bootstrap: str, suffix: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "catalogue-cli-pseudonymisation-key-0123456789"
link_signing_key = "catalogue-cli-link-signing-key-9876543210abcdef"

[streams]
topic_suffix = "{suffix}"
""",
        encoding="utf-8",
    )
    return path


def test_export_after_import_gives_back_the_example_catalogue_byte_for_byte(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example catalogue goes onto the topic as a version and comes back unchanged."""
    config = str(_config(tmp_path, kafka_bootstrap, run_suffix))
    assert main(["catalogue", "import", "--config", config, "--dry-run", str(EXAMPLE)]) == 0
    dry = capsys.readouterr()
    # The configuration has no touchpoints: the dry run shows every one as added.
    assert "+[touchpoints.phone-service-helsinki]" in dry.out
    assert main(["catalogue", "import", "--config", config, "--by", "ops", str(EXAMPLE)]) == 0
    imported = capsys.readouterr()
    assert "catalogue version 1 in force" in imported.err
    exported = tmp_path / "exported.toml"
    assert main(["catalogue", "export", "--config", config, "--output", str(exported)]) == 0
    assert exported.read_bytes() == EXAMPLE.read_bytes()

    # Nothing to change: the dry run says so.
    assert main(["catalogue", "import", "--config", config, "--dry-run", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == "no difference\n"

    # An edited file: the dry run shows exactly the edit, and writes nothing.
    edited = tmp_path / "edited.toml"
    edited.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("kpi_target = 4.2", "kpi_target = 4.4"),
        encoding="utf-8",
    )
    assert main(["catalogue", "import", "--config", config, "--dry-run", str(edited)]) == 0
    diff = capsys.readouterr().out
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in {"+++", "---"}
    ]
    assert changed == ["-kpi_target = 4.2", "+kpi_target = 4.4"]
    assert main(["catalogue", "export", "--config", config, "--output", str(exported)]) == 0
    assert exported.read_bytes() == EXAMPLE.read_bytes()


def test_an_invalid_catalogue_file_is_refused_naming_the_field_and_writes_nothing(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The import checks what palaute config check checks, before anything is written."""
    config = str(_config(tmp_path, kafka_bootstrap, run_suffix))
    bad = tmp_path / "bad.toml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("sampling_rate = 0.5", "sampling_rate = 5"),
        encoding="utf-8",
    )
    assert main(["catalogue", "import", "--config", config, str(bad)]) == 1
    assert "touchpoints.phone-service-helsinki.sampling_rate" in capsys.readouterr().err
    exported = tmp_path / "exported.toml"
    assert main(["catalogue", "export", "--config", config, "--output", str(exported)]) == 0
    # Still the configuration's own (empty) catalogue.
    assert "phone-service-helsinki" not in exported.read_text(encoding="utf-8")
