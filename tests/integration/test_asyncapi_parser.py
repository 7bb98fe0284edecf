"""The exported AsyncAPI document, checked by the official AsyncAPI parser (@asyncapi/parser).

Our own tests can only check what we thought of; the parser is what
integrators' code generators and doc tools run, so it is the judge.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ROOT / "tests" / "tooling"
VALIDATOR = TOOLING / "validate-asyncapi.mjs"
SUMMARY = re.compile(r": (\d+) errors, (\d+) warnings, (\d+) infos, (\d+) hints")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; the AsyncAPI contract test needs Node.js")
    if not (TOOLING / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("tests/tooling/node_modules is missing @asyncapi/parser: run `make node-tools`")
    return node


def _validate(document: Path) -> tuple[int, str, tuple[int, ...]]:
    """Run the parser on a file: exit status, its output, and (errors, warnings, infos, hints)."""
    result = subprocess.run(
        [_node(), str(VALIDATOR), str(document)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
    )
    output = result.stdout + result.stderr
    summary = SUMMARY.search(result.stdout)
    assert summary is not None, f"no summary line from the validator:\n{output}"
    return result.returncode, output, tuple(int(count) for count in summary.groups())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Export through the installed command line, as an integrator would."""
    directory = tmp_path_factory.mktemp("contracts") / "out"
    result = subprocess.run(
        [sys.executable, "-m", "palaute", "schemas", "export", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert str(directory / "asyncapi.json") in result.stdout
    return directory / "asyncapi.json"


def test_exported_asyncapi_document_passes_the_official_parser(exported: Path) -> None:
    """Integrators feed this file to AsyncAPI tools; any error there breaks their build."""
    status, output, (errors, warnings, _, _) = _validate(exported)
    assert (status, errors, warnings) == (0, 0, 0), output


def _break_channel_ref(document: dict[str, Any]) -> None:
    document["channels"]["contacts"]["messages"]["ContactCompleted"]["$ref"] = (
        "#/components/messages/NoSuchMessage"
    )


def _break_schema_type(document: dict[str, Any]) -> None:
    document["components"]["schemas"]["Citizen"]["type"] = "person"


def _break_operation_action(document: dict[str, Any]) -> None:
    document["operations"]["receive-contacts"]["action"] = "consume"


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (_break_channel_ref, "NoSuchMessage"),
        (_break_schema_type, "components.schemas.Citizen"),
        (_break_operation_action, "operations.receive-contacts.action"),
    ],
    ids=["bad-channel-ref", "bad-schema-type", "bad-operation-action"],
)
def test_parser_rejects_a_broken_copy(
    exported: Path, tmp_path: Path, breakage: Any, where: str
) -> None:
    """Proves the check above can fail: a broken document must be reported, and where."""
    document = json.loads(exported.read_text(encoding="utf-8"))
    breakage(document)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    status, output, (errors, _, _, _) = _validate(broken)
    assert status == 1, output
    assert errors >= 1, output
    assert any(line.startswith("error ") and where in line for line in output.splitlines()), output
