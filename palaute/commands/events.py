"""``palaute events sample|validate``: what a front-office developer runs before going live.

``validate`` goes through the same gate as the production intake
(:mod:`schemas.decoding`), so a file that passes here passes there.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.decoding import Rejected, decode_event, parse_json
from schemas.samples import SAMPLES

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``events`` and its subcommands."""
    events = subparsers.add_parser("events", help="sample and validate events")
    actions = events.add_subparsers(dest="action", metavar="ACTION", required=True)

    sample = actions.add_parser("sample", help="print a valid example event")
    sample.add_argument("event_type", metavar="TYPE", choices=sorted(SAMPLES), help="event type")
    sample.set_defaults(handler=_sample)

    validate = actions.add_parser(
        "validate",
        help="check one JSON event, or a file of one event per line",
        description="Check events against Palaute's contracts. FILE is one JSON event, or "
        "JSON Lines (one event per line, each checked and reported by its line number; "
        "always so for a .jsonl or .ndjson file); '-' reads standard input. "
        "Exits 1 when any event is invalid.",
    )
    validate.add_argument("file", metavar="FILE", help="path, or - for standard input")
    validate.set_defaults(handler=_validate)


def _sample(args: argparse.Namespace) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    event = SAMPLES[args.event_type](now)
    print(event.model_dump_json(indent=2, exclude_none=True))
    return 0


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    return Path(file).read_bytes()


#: File names that say "one event per line" whatever the lines hold.
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def _documents(raw: bytes, *, json_lines: bool = False) -> tuple[bool, list[tuple[int, bytes]]]:
    """Split input into (line number, bytes): one document, or JSON Lines (then True).

    A single pretty-printed event spans lines, so input that parses as one
    JSON value is one event. Otherwise it is JSON Lines when the caller says
    so (a ``.jsonl`` file) or when any of its lines is an event on its own:
    then every non-blank line is checked by itself, so one broken line is
    reported by its number and does not hide the results of the others. A
    pretty-printed event with a syntax error has no such line and stays one
    document.
    """
    lines = [(number, line) for number, line in enumerate(raw.splitlines(), 1) if line.strip()]
    if json_lines and lines:
        return True, lines
    if len(lines) > 1 and not _is_json(raw) and any(_is_object(line) for _, line in lines):
        return True, lines
    return False, [(1, raw)]


def _is_json(raw: bytes) -> bool:
    return not isinstance(parse_json(raw, max_bytes=len(raw)), Rejected)


def _is_object(line: bytes) -> bool:
    stripped = line.strip()
    return stripped.startswith(b"{") and isinstance(parse_json(stripped), dict)


def _validate(args: argparse.Namespace) -> int:
    try:
        raw = _read(args.file)
    except OSError as exc:
        print(f"palaute: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    per_line, documents = _documents(
        raw, json_lines=args.file.lower().endswith(JSON_LINES_SUFFIXES)
    )
    if not raw.strip():
        print("palaute: no event to validate (empty input)", file=sys.stderr)
        return 1
    failed = 0
    for line, document in documents:
        where = f"line {line}" if per_line else args.file
        result = decode_event(document)
        if isinstance(result, Rejected):
            failed += 1
            for error in result.errors:
                print(f"{where}: {error.path}: {error.message} [{error.code}]")
        else:
            event_type = getattr(result, "type", type(result).__name__)
            print(f"{where}: ok ({event_type})")
    if per_line:
        print(f"{len(documents) - failed} valid, {failed} invalid")
    return 1 if failed else 0
