"""``palaute demo``: the main job, run locally on an embedded default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``demo``."""
    subparsers.add_parser("demo", help="run Palaute locally on an embedded default")
