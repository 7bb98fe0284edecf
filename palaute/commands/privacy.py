"""``palaute privacy erase``: forget a citizen on request, by any identifier their contacts carried.

The citizen is named by a phone number, an email address, a source system's
citizen reference with its source, or a citizen key. The rules are in
:mod:`engine.erasure`; this shell reads every topic that can hold the
citizen's records from the beginning up to where it ends now (plain
aiokafka, no consumer group, nothing committed, so it runs beside the
workers): the contact events (input, the worker's repartition, dead letters)
to find the keys intake gave the citizen, the vault, the surveys, the
comments, and the responses and ratings to count what stays. Then it writes
the plan: call-offs on the surveys topic, opt-outs on the responses topic,
comment tombstones and vault tombstones. It prints per topic what it
removed, what it wrote and what stays until the topic's retention ends, and
the pseudonymous keys; never the identifier.

Until ``privacy`` is listed in ``palaute.cli.COMMAND_MODULES`` the same
command runs as ``python -m palaute.commands.privacy erase ...``.

Exit statuses: 0 done (also when there was nothing left to erase), 1 the
configuration or Kafka failed, 2 a bad identifier.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.config import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from engine.erasure import ContactSeen, ErasurePlan, Identity
    from schemas.config import Settings
    from schemas.topics import TopicNames

#: Numbers given without a country code are read as Finnish ones.
DEFAULT_REGION = "FI"
EXIT_BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``privacy erase``."""
    parser = subparsers.add_parser(
        "privacy",
        help="data-subject requests: forget a citizen",
        description="Act on citizens' privacy requests (see docs/privacy.md).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    erase = actions.add_parser(
        "erase",
        help="forget a citizen: tombstone their contact details and comments, call off surveys",
        description="Find the citizen by the identifier given and every key their contact "
        "events were given (a source-system reference makes a key of its own), write vault "
        "tombstones and tombstones for the comments on their surveys, call off unfinished "
        "surveys and record an opt-out under the pseudonymous key. Prints per topic what "
        "was removed, written and kept, and the pseudonymous keys only. Records on topics "
        "with a time-based retention (contacts, surveys, responses, dead letters) stay "
        "until it ends; see docs/privacy.md.",
    )
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", metavar="NUMBER", help="mobile number (E.164, or Finnish national)")
    who.add_argument("--email", metavar="ADDRESS", help="email address")
    who.add_argument(
        "--citizen-id",
        metavar="ID",
        help="the source system's own citizen reference (data.citizen.id); needs --source",
    )
    who.add_argument("--citizen-key", metavar="KEY", help="the pseudonymous citizen key")
    erase.add_argument(
        "--source",
        metavar="SOURCE",
        help="the CloudEvents source of the system that issued --citizen-id",
    )
    erase.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML file")
    erase.set_defaults(handler=_erase)


def _erase(args: argparse.Namespace) -> int:
    from engine.erasure import BadIdentity, identity_of  # noqa: PLC0415 - only this command

    identity = identity_of(
        phone=_e164(args.phone),
        email=args.email,
        citizen_id=args.citizen_id,
        source=args.source,
        key=args.citizen_key,
    )
    if isinstance(identity, BadIdentity):
        print(f"palaute privacy erase: {identity.reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    return asyncio.run(erase(settings, identity))


def _e164(phone: str | None) -> str | None:
    """Accept the national form a citizen gives over the phone ("040 123 4567")."""
    if phone is None or phone.strip().startswith("+"):
        return phone
    import phonenumbers  # noqa: PLC0415 - only for a national number

    try:
        number = phonenumbers.parse(phone, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return phone  # the schema's check gives the error
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


async def erase(settings: Settings, identity: Identity, *, now: datetime | None = None) -> int:
    """Read, plan and write the erasure; print what was done. Returns an exit status."""
    from aiokafka.errors import KafkaError  # noqa: PLC0415 - heavy, used here only

    from engine.erasure import derived_key, plan_erasure  # noqa: PLC0415 - as above

    names = settings.topics
    secret = settings.secrets.pseudonymisation_key.get_secret_value().encode()
    key = derived_key(secret, identity)
    topics = _Topics.of(settings)
    try:
        read = {name: await _read(settings, name) for name in topics.all()}
        contacts = [
            sighting
            for name in topics.contacts
            for sighting in _contacts_seen(identity, secret, name, read[name])
        ]
        vault = _latest_details(read[names.vault])
        events = _survey_events(read[names.surveys])
        comments = _live_comments(read[names.comments])
        plan = plan_erasure(
            identity,
            key,
            vault=vault,
            survey_events=events,
            comments=comments,
            contacts=contacts,
            now=now or datetime.now(UTC),
        )
        kept = _kept(identity, plan, topics, read)
        await _write(settings, plan, names)
    except KafkaError as error:
        print(f"palaute privacy erase: Kafka failed: {type(error).__name__}", file=sys.stderr)
        return 1
    _report(plan, key, names, kept)
    return 0


@dataclass(frozen=True, slots=True)
class _Topics:
    """Every topic that can hold a record of a citizen, by what it holds."""

    contacts: tuple[str, ...]  # contact events: the keys intake gave the citizen
    compacted: tuple[str, ...]  # vault, comments: read, and tombstoned
    retained: tuple[str, ...]  # time-retained: read, and counted as kept

    @classmethod
    def of(cls, settings: Settings) -> _Topics:
        names = settings.topics
        # The worker's app id (with the suffix): the prefix of its internal topics.
        internal = settings.streams.app_id + settings.streams.topic_suffix
        return cls(
            contacts=(
                names.contacts,
                f"{internal}-contacts-by-citizen",
                names.deadletter,
            ),
            compacted=(names.vault, names.comments),
            retained=(
                names.surveys,
                names.responses,
                names.ratings,
                f"{internal}-surveys-by-id",
            ),
        )

    def all(self) -> tuple[str, ...]:
        """Give every topic to read, each once."""
        return (*self.contacts, *self.compacted, *self.retained)


def _contacts_seen(
    identity: Identity, secret: bytes, topic: str, records: list[Record]
) -> list[ContactSeen]:
    """Find the contact events of a topic that name the citizen, with the key intake gave each.

    Structured CloudEvents (the source in the value) and binary ones (the
    data as the value, the source in the ``ce_source`` header) are both read.
    A record that is not a contact event (a dead letter of any shape) names
    the citizen if it spells one of the identifiers; it gives no key.
    """
    import orjson  # noqa: PLC0415 - only this command

    from engine.erasure import ContactSeen, seen  # noqa: PLC0415 - as above
    from schemas.contacts import Citizen  # noqa: PLC0415 - as above

    found: list[ContactSeen] = []
    for _, value, headers in records:
        if value is None:
            continue
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            document = None
        citizen, source = _citizen_and_source(document, headers)
        if citizen is None or not isinstance(source, str):
            if identity.appears_in(value):
                found.append(ContactSeen(topic, ""))
            continue
        if not identity.may_name(citizen, source):
            continue
        try:
            model = Citizen.model_validate(citizen)
        except ValueError:
            if identity.appears_in(value):
                found.append(ContactSeen(topic, ""))
            continue
        sighting = seen(identity, secret, topic, source, model)
        if sighting is not None:
            found.append(sighting)
    return found


def _citizen_and_source(document: object, headers: Headers) -> tuple[dict[str, Any] | None, object]:
    """Take the citizen and the source of a contact event in either CloudEvents content mode."""
    if not isinstance(document, dict):
        return None, None
    data = document.get("data")
    if isinstance(data, dict):  # structured mode: the whole event is the value
        citizen = data.get("citizen")
        return (citizen if isinstance(citizen, dict) else None), document.get("source")
    citizen = document.get("citizen")  # binary mode: the value is the event's data
    source = next((v for k, v in headers if k == "ce_source" and v is not None), None)
    text = source.decode(errors="replace") if isinstance(source, bytes) else None
    return (citizen if isinstance(citizen, dict) else None), text


def _kept(
    identity: Identity, plan: ErasurePlan, topics: _Topics, read: dict[str, list[Record]]
) -> dict[str, int]:
    """Count, per time-retained topic, the citizen's records that stay until retention ends."""
    kept = {name: plan.contacts_seen.get(name, 0) for name in topics.contacts}
    for name in topics.retained:
        kept[name] = sum(
            1
            for _, value, _ in read[name]
            if value is not None and (plan.mentions(value) or identity.appears_in(value))
        )
    return kept


def _report(plan: ErasurePlan, key: str, names: TopicNames, kept: dict[str, int]) -> None:

    others = sorted(plan.citizen_keys - {key})
    print(f"citizen key {key}" + (f" (also {', '.join(others)})" if others else ""))
    print(f"vault entries tombstoned: {len(plan.vault_tombstones)}")
    print(f"unfinished surveys called off: {len(plan.call_offs)}")
    print(f"opt-outs recorded: {len(plan.opt_outs)}")
    print(f"surveys found for this citizen: {len(plan.surveys)}")
    print(f"comments tombstoned: {len(plan.comment_tombstones)}")
    print("removed (tombstones; the older values go when Kafka compacts the topic):")
    print(f"  {names.vault}: {len(plan.vault_tombstones)}")
    print(f"  {names.comments}: {len(plan.comment_tombstones)}")
    print("written:")
    print(f"  {names.surveys}: {len(plan.call_offs)} call-offs")
    print(f"  {names.responses}: {len(plan.opt_outs)} opt-outs")
    print("kept until the topic's retention ends (Kafka cannot delete one record there):")
    for name, count in kept.items():
        print(f"  {name}: {count}")
    if plan.is_empty:
        print("nothing left to erase")


Headers = tuple[tuple[str, bytes | None], ...]
Record = tuple[bytes | None, bytes | None, Headers]


async def _read(settings: Settings, topic: str) -> list[Record]:
    """Read a topic from the beginning up to its end offsets as of now, keys and values."""
    from aiokafka import AIOKafkaConsumer  # noqa: PLC0415 - heavy, used here only

    from connectors.kafka_client import client_options, topic_partitions  # noqa: PLC0415 - as above

    partitions = await topic_partitions(settings.kafka, topic)
    if not partitions:
        print(f"{topic}: no such topic; nothing read", file=sys.stderr)
        return []
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    found: list[Record] = []
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1_000, max_records=5_000)
            for records in batches.values():
                found.extend(
                    (record.key, record.value, tuple(record.headers or ())) for record in records
                )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return found


def _decoded(records: list[Record], kind: bytes, parse: Callable[[bytes], Any]) -> list[Any]:
    found: list[Any] = []
    for _, value, _ in records:
        if value is not None and kind in value:
            try:
                found.append(parse(value))
            except ValueError:
                continue  # not ours to judge: the stages dead-letter what they cannot read
    return found


def _latest(records: list[Record], parse: Callable[[bytes], Any]) -> dict[str, Any]:
    """Keep what compaction keeps: the latest value per key, without tombstones."""
    latest: dict[str, bytes | None] = {}
    for key, value, _ in records:
        if key is not None:
            latest[key.decode(errors="replace")] = value
    live: dict[str, Any] = {}
    for name, value in latest.items():
        if value is None:
            continue
        try:
            live[name] = parse(value)
        except ValueError:
            continue
    return live


def _latest_details(records: list[Record]) -> dict[str, Any]:
    """Give the vault's live contact details per survey id."""
    from schemas.vault import ContactDetails  # noqa: PLC0415 - only this command

    return _latest(records, ContactDetails.model_validate_json)


def _survey_events(records: list[Record]) -> list[Any]:
    from pydantic import TypeAdapter  # noqa: PLC0415 - only this command

    from schemas.surveys import SurveyLifecycleEvent  # noqa: PLC0415 - as above

    adapter: TypeAdapter[Any] = TypeAdapter(SurveyLifecycleEvent)
    return _decoded(records, b'"type"', adapter.validate_json)


def _live_comments(records: list[Record]) -> dict[str, Any]:
    """Give the comments topic's live comments per key, as the board shows them."""
    from schemas.responses import CommentReceived  # noqa: PLC0415 - only this command

    return _latest(records, CommentReceived.model_validate_json)


async def _write(settings: Settings, plan: ErasurePlan, names: TopicNames) -> None:
    """Write the call-offs and opt-outs first, then the tombstones, and wait for Kafka.

    The vault goes last: while an entry is live, a rerun after a failure
    finds the citizen's surveys, and so their comments, again.
    """
    from connectors.web.ingress import kafka_producer  # noqa: PLC0415 - idempotent, acks=all

    if plan.is_empty:
        return
    producer = kafka_producer(settings.kafka)
    await producer.start()
    try:
        for skipped in plan.call_offs:
            await producer.send(
                names.surveys,
                key=skipped.citizen_key.encode(),
                value=skipped.model_dump_json().encode(),
            )
        for opt_out in plan.opt_outs:
            await producer.send(
                names.responses,
                key=opt_out.survey_id.encode(),
                value=opt_out.model_dump_json().encode(),
            )
        for comment_id in plan.comment_tombstones:
            await producer.send(names.comments, key=comment_id.encode(), value=None)
        for survey_id in plan.vault_tombstones:
            await producer.send(names.vault, key=survey_id.encode(), value=None)
        await producer.flush()
    finally:
        await producer.stop()
