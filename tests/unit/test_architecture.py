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


PURE_STREAM_MODULES = [
    *(
        f"streams.stages.{path.stem}"
        for path in sorted((ROOT / "streams" / "stages").glob("*.py"))
        if path.name != "__init__.py"
    ),
    "streams.runtime.model",
    "streams.runtime.checkpoint",
    "streams.runtime.overlay",
    "streams.runtime.fanout",
    "streams.runtime.deadletters",
    "streams.runtime.memory",
]
STREAM_CLIENT_LIBRARIES = {"faust", "mode", "aiokafka", "aiohttp", "prometheus_client", "twilio"}


@pytest.mark.parametrize("module", PURE_STREAM_MODULES)
def test_stages_and_the_in_memory_runtime_load_no_client_library(module: str) -> None:
    """A stage that needs a broker to be imported cannot be tested in bulk without one."""
    import subprocess  # noqa: PLC0415 - a fresh interpreter sees every module the import pulls in

    probe = (
        f"import sys, {module}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        f"set({sorted(STREAM_CLIENT_LIBRARIES)!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert loaded == "[]", f"{module} pulls in {loaded}"


def _stream_imports(path: Path) -> set[str]:
    return {
        name
        for name in _imports(path)
        if name.startswith("streams.") and not name.startswith("streams.runtime.overrides")
    }


def test_the_stream_modules_import_each_other_without_a_circle() -> None:
    """An import circle among the stages makes each one impossible to read or test alone."""
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): path
        for path in sorted((ROOT / "streams").rglob("*.py"))
        if path.name != "__init__.py"
    }
    graph = {name: _stream_imports(path) & set(modules) for name, path in modules.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, " -> ".join([*visiting[visiting.index(name) :], name])
        if name in done:
            return
        visiting.append(name)
        for imported in sorted(graph[name]):
            visit(imported)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
