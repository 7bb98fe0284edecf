"""``palaute catalogue export|import``: the catalogue topic as a TOML file, and back.

``export`` writes the catalogue in force (the topic's latest version, or
the configuration file's while the topic has none) as TOML with the
configuration file's paths. ``import FILE`` checks a catalogue file as
``palaute config check`` would, and writes it as one new version: every
touchpoint as in the file, those missing from it retired. ``import
--dry-run`` shows what would change, as a diff of the two exports, and
writes nothing. Exporting after importing an exported file gives back the
same bytes, so the catalogue can live in a repository and be reviewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import getpass
import sys
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError

from connectors.catalogue import (
    CatalogueFollower,
    CatalogueUnavailableError,
    now,
)
from connectors.kafka_client import client_options
from connectors.sms_budget import catalogue_sms_over_budget
from engine.catalogue import Applied, Outcome
from schemas.catalogue_document import (
    entries_as_written,
    export_toml,
    seed_entries,
    validate_document,
)
from schemas.catalogue_records import CatalogueAction, CatalogueChanged, TouchpointEntry
from schemas.config import ConfigError, ConfigProblem, load_settings

if TYPE_CHECKING:
    import argparse

    from schemas.config import Settings

#: Exit codes: the file does not validate; Kafka cannot be used; the import was refused.
EXIT_INVALID = 1
EXIT_NO_BROKER = 3
EXIT_REFUSED = 4


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``catalogue export`` and ``catalogue import``."""
    parser = subparsers.add_parser(
        "catalogue",
        help="the touchpoint catalogue: export it as TOML, import a TOML file",
        description="The touchpoint catalogue lives on the catalogue topic; every worker and "
        "web process runs on its latest version. Export it as a file, or import a file as a "
        "new version (configuration as code).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export", help="write the catalogue in force as TOML", description=__doc__
    )
    export.add_argument("--config", type=Path, required=True, metavar="FILE", help="TOML file")
    export.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    export.set_defaults(handler=_export)
    imported = actions.add_parser(
        "import", help="make a catalogue file the new version", description=__doc__
    )
    imported.add_argument("--config", type=Path, required=True, metavar="FILE", help="TOML file")
    imported.add_argument("catalogue", type=Path, metavar="CATALOGUE", help="catalogue file")
    imported.add_argument(
        "--dry-run", action="store_true", help="show what would change; write nothing"
    )
    imported.add_argument(
        "--by", default=None, help="who imports, for the history (default: the login name)"
    )
    imported.set_defaults(handler=_import)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import changed (a unified diff, empty for none) and whether it held."""

    diff: str
    outcome: Outcome | None


def _follower(settings: Settings) -> CatalogueFollower:
    return CatalogueFollower(settings.kafka, settings.topics.catalogue, settings.catalogue)


async def _ensure_topic(settings: Settings) -> None:
    from streams import topics_setup  # noqa: PLC0415 - only import writes

    plans = [
        plan
        for plan in topics_setup.public_topics(settings)
        if plan.name == settings.topics.catalogue
    ]
    await topics_setup.ensure_topics(settings.kafka, plans)


def current_toml(follower: CatalogueFollower, settings: Settings) -> str:
    """Give the catalogue in force as TOML: the topic's, or the file's before any version."""
    log = follower.log
    if log.version == 0:
        return export_toml(*seed_entries(settings))
    return export_toml(log.defaults, log.entries(), log.csat_targets())


async def export_catalogue(settings: Settings) -> str:
    """Read the catalogue topic to its end and write the catalogue in force as TOML."""
    follower = _follower(settings)
    # No topic yet: the file's catalogue is in force.
    with contextlib.suppress(CatalogueUnavailableError):
        await follower.load(None, None)
    return current_toml(follower, settings)


def read_catalogue_file(path: Path) -> dict[str, Any]:
    """Read a catalogue file's TOML, or raise :class:`ConfigError` saying why not."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        problem = ConfigProblem("", f"cannot read: {error.strerror}")
    except tomllib.TOMLDecodeError as error:
        problem = ConfigProblem("", f"not valid TOML: {error}")
    raise ConfigError(str(path), [problem])


async def import_catalogue(
    settings: Settings, raw: dict[str, Any], path: Path, *, dry_run: bool, by: str
) -> ImportResult:
    """Validate a catalogue file, show the difference, and (unless a dry run) write it."""
    document = validate_document(raw, settings.policy, source=str(path))
    defaults, touchpoints = entries_as_written(raw, document)
    targets = dict(document.alerts.csat_targets)
    follower = _follower(settings)
    if not dry_run:
        await _ensure_topic(settings)
    try:
        await follower.load(None, None)
    except CatalogueUnavailableError:
        if not dry_run:
            raise
    before = current_toml(follower, settings)
    after = export_toml(defaults, touchpoints, targets)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"catalogue version {follower.log.version}",
            tofile=str(path),
        )
    )
    if dry_run or (not diff and follower.log.version > 0):
        return ImportResult(diff, None)
    change = CatalogueChanged(
        change_id=uuid.uuid4().hex,
        at=now(),
        by=by,
        action=CatalogueAction.IMPORT,
        base_version=follower.log.version,
        defaults=defaults,
        touchpoints={
            # A CSAT target may name a touchpoint that has no entry of its own
            # (it is surveyed with [defaults]); it still needs an entry to keep
            # its target, since the topic holds targets on the touchpoints.
            key: TouchpointEntry(entry=dict(touchpoints.get(key, {})), csat_target=targets.get(key))
            for key in sorted({*touchpoints, *targets})
        },
        replace_all=True,
        comment=f"imported from {path.name}",
    )
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415 - only a real import writes

    producer = AIOKafkaProducer(
        **client_options(settings.kafka, client_id_suffix="-catalogue"),
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        outcome = await follower.write(producer, change)
    finally:
        await producer.stop()
    return ImportResult(diff, outcome)


def _settings(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return None


def _export(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return EXIT_INVALID
    try:
        text = asyncio.run(export_catalogue(settings))
    except KafkaError as error:
        print(f"palaute catalogue export: Kafka: {type(error).__name__}", file=sys.stderr)
        return EXIT_NO_BROKER
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


def _import(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return EXIT_INVALID
    by = args.by or getpass.getuser()
    try:
        raw = read_catalogue_file(args.catalogue)
        document = validate_document(raw, settings.policy, source=str(args.catalogue))
        for warning in catalogue_sms_over_budget(settings, document.defaults, document.touchpoints):
            print(f"warning: {warning}", file=sys.stderr)
        result = asyncio.run(
            import_catalogue(settings, raw, args.catalogue, dry_run=args.dry_run, by=by)
        )
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    except (KafkaError, CatalogueUnavailableError, TimeoutError) as error:
        print(f"palaute catalogue import: {error or type(error).__name__}", file=sys.stderr)
        return EXIT_NO_BROKER
    sys.stdout.write(result.diff or "no difference\n")
    if result.outcome is None:
        return 0
    if isinstance(result.outcome, Applied):
        print(f"catalogue version {result.outcome.version} in force", file=sys.stderr)
        return 0
    print(f"import refused: {result.outcome.reason}", file=sys.stderr)
    return EXIT_REFUSED
