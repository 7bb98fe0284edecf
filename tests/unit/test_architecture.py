"""The layering of the design card, enforced: engine/ stays a pure functional core."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE_FILES = sorted((ROOT / "engine").rglob("*.py"))
ALLOWED_ROOTS = set(sys.stdlib_module_names) | {"engine", "schemas"}
# Standard-library modules that would let the core do I/O or read the clock behind
# the caller's back.
FORBIDDEN_STDLIB = {"asyncio", "socket", "subprocess", "threading", "http", "urllib", "os"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_engine_exists() -> None:
    """An empty glob would make the checks below pass vacuously."""
    assert ENGINE_FILES


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: p.name)
def test_engine_imports_only_the_standard_library_and_schemas(path: Path) -> None:
    """The core is tested without brokers or clocks only while it imports none."""
    offending = [
        name
        for name in _imports(path)
        if name.split(".")[0] not in ALLOWED_ROOTS or name.split(".")[0] in FORBIDDEN_STDLIB
    ]
    assert offending == []


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: p.name)
def test_engine_never_reads_the_clock(path: Path) -> None:
    """Decisions that read the clock cannot be replayed or tested at a DST change."""
    source = path.read_text(encoding="utf-8")
    for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today(", "monotonic("):
        assert call not in source, f"{path.name} calls {call}"


def test_schemas_do_no_io() -> None:
    """Contracts are imported by every stage and by integrators' tooling; no side effects."""
    for path in sorted((ROOT / "schemas").rglob("*.py")):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in {"aiokafka", "faust", "aiohttp", "aiosmtplib", "twilio", "socket"}, (
                f"{path.name} imports {name}"
            )


def test_connectors_never_import_the_stream_wiring() -> None:
    """Imports point inward: an adapter needing faust or streams/ cannot be tested alone."""
    for path in sorted((ROOT / "connectors").rglob("*.py")):
        for name in _imports(path):
            assert name.split(".")[0] not in {"streams", "faust"}, f"{path.name} imports {name}"
