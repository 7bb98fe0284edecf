"""``palaute schemas export DIR``: JSON Schema and AsyncAPI for integrators.

The documents are built by :mod:`schemas.export`; this command only writes
them, so what a test checks in memory is byte for byte what lands on disk.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from palaute import __version__
from schemas.export import export_files

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``schemas`` and its ``export`` subcommand."""
    schemas = subparsers.add_parser("schemas", help="export event contracts")
    actions = schemas.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write JSON Schemas and an AsyncAPI 3.0 document",
        description="Write one JSON Schema (draft 2020-12) per event type and asyncapi.json "
        "(AsyncAPI 3.0.0) describing every topic into DIR, creating it if needed. "
        "Existing files of the same names are replaced; output is the same on every run.",
    )
    export.add_argument("directory", metavar="DIR", type=Path, help="output directory")
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    files = export_files(__version__)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            print(path)
    except OSError as exc:
        print(f"palaute: cannot write to {directory}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {directory}")
    return 0
