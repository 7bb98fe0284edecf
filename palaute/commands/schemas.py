"""``palaute schemas export DIR``: JSON Schema and AsyncAPI for integrators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``schemas`` (export is added with the contract export module)."""
    subparsers.add_parser("schemas", help="export event contracts")
