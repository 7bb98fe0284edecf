"""Intake: validate contact events, pseudonymise the citizen, decide, publish.

Two agents, because a decision needs the citizen's history and the history
must live where all of one citizen's contacts meet:

1. ``intake`` reads the contacts topic as raw bytes. A record that fails the
   validation gate goes to the dead-letter topic with its original key, value
   and headers plus ``palaute.dlq.*`` headers saying why; a valid one is
   forwarded, unchanged, to an internal topic keyed by the citizen key.
2. ``intake-decide`` reads that topic, whose partitions are those of the
   ``citizen-history`` table, and asks :func:`engine.policy.decide`. It
   publishes what the decision says (the decision event keyed by citizen key,
   superseded surveys' skips, and for a scheduled survey the contact details
   to the vault keyed by survey id) and then stores the new history.

A handler on the responses topic's one reader (``responses-reader``, see
:mod:`streams.shared`) forwards OptOut events to the same internal topic,
marked with the ``palaute-record: opt-out`` header; ``intake-decide``
records them in the citizen's history, so the citizen's next contact is
skipped as opted-out.

``intake-decide`` takes its records in batches (up to ``INTAKE_BATCH``,
waiting at most ``INTAKE_BATCH_WAIT_S`` for company). It decides each
record against the batch's view of the citizen, so a citizen's second
contact in one batch sees the first, sends the batch's publications, waits
once for all of them to be acknowledged, and only then stores each
citizen's new history: one round trip to the broker per batch, not per
contact.

Idempotence: the history remembers decided contact ids, so a replayed
contact is a duplicate that publishes nothing. Publications are
acknowledged before the history is stored and faust flushes them before
committing offsets; a crash between the two can repeat a decision, with
the same survey id, which downstream stages already de-duplicate by survey
id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import faust

from connectors import telemetry
from engine.policy import CitizenHistory, Schedule, decide
from engine.pseudonym import citizen_key
from schemas.cloudevents_kafka import structured_event
from schemas.decoding import Rejected, decode_contact, decode_event
from schemas.responses import OptOut
from schemas.surveys import SkipReason, SurveyScheduled
from streams import shared
from streams.acks import acknowledged
from streams.containment import RETRY_FIRST_S, RETRY_MAX_S, Containment
from streams.events import at_event
from streams.producer import DirectProducer
from streams.stores import table_store_options

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date

    from faust.types import EventT

    from engine.policy import Decision
    from schemas.config import Settings
    from schemas.contacts import ContactCompleted
    from schemas.surveys import SurveySkipped
    from schemas.vault import ContactDetails
    from streams.app import TopicNames

log = logging.getLogger(__name__)

STAGE = "intake"
INTAKE_AGENT = "intake"
DECIDE_AGENT = "intake-decide"
#: Marks an OptOut forwarded to the internal topic among the contacts.
RECORD_HEADER = "palaute-record"
OPT_OUT_RECORD = b"opt-out"
HISTORY_TABLE = "citizen-history"
#: Contacts decided together, and how long a batch waits for company: one
#: acknowledgement wait per batch instead of one per contact.
INTAKE_BATCH = 500
INTAKE_BATCH_WAIT_S = 0.01


@dataclass(frozen=True, slots=True)
class Publication:
    """One record to produce: which topic (by role), its key and its value."""

    topic: str  # "surveys" or "vault", the field of TopicNames
    key: bytes
    value: bytes


def publications(decision: Decision, contact: ContactCompleted, now: datetime) -> list[Publication]:
    """Turn a decision into the records to produce, vault first.

    The vault record goes first so that the details of a survey exist before
    anything reads its SurveyScheduled.
    """
    key = decision.citizen_key.encode()
    if not isinstance(decision, Schedule):
        skipped = decision.skipped_event(now)
        return [] if skipped is None else [Publication("surveys", key, _json(skipped))]
    details = decision.contact_details(contact.data.citizen, now)
    return [
        Publication("vault", decision.survey_id.encode(), _json(details)),
        Publication("surveys", key, _json(decision.scheduled_event(now))),
        *(Publication("surveys", key, _json(skip)) for skip in decision.superseded_events(now)),
    ]


def _json(event: ContactDetails | SurveyScheduled | SurveySkipped) -> bytes:
    return event.model_dump_json().encode()


@dataclass(frozen=True, slots=True)
class Admitted:
    """A valid contact, re-keyed by its citizen, as the deciding stage reads it."""

    key: bytes
    value: bytes


def admit_contact(
    value: bytes | None, headers: Any, secret: bytes, now: datetime
) -> Admitted | Rejected:
    """Validate one record of the contacts topic, in either CloudEvents content mode.

    What goes on is the event as structured JSON, without the client's
    headers: the stages after this one read the value alone, and a header
    no one here wrote must not reach them (a client's ``palaute-record``
    header would otherwise pass for an opt-out).
    """
    structured = structured_event(value, headers)
    if isinstance(structured, Rejected):
        return structured
    contact = decode_contact(structured, now=now)
    if isinstance(contact, Rejected):
        return contact
    key = citizen_key(secret, contact.data.citizen, source=contact.source)
    return Admitted(key.encode(), structured)


def is_opt_out(headers: Any) -> bool:
    """Tell whether a record of the internal topic is a forwarded OptOut."""
    items = (headers or {}).items() if isinstance(headers, dict) else (headers or [])
    return any(name == RECORD_HEADER and value == OPT_OUT_RECORD for name, value in items)


def with_opt_out(before: CitizenHistory) -> CitizenHistory | None:
    """Give the history with the opt-out recorded; None when it already is."""
    return None if before.opted_out else before.with_opt_out()


class _UnknownTouchpoints:
    """Report each touchpoint missing from the catalogue once per process."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def report(self, touchpoint_id: str) -> None:
        if touchpoint_id in self._seen:
            return
        self._seen.add(touchpoint_id)
        # Identifiers may in principle hold a national phone number; name only safe ones.
        shown = touchpoint_id if telemetry.is_safe_label_value(touchpoint_id) else "(unsafe id)"
        log.warning("touchpoint %s is not in the catalogue; surveyed with [defaults]", shown)


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:  # noqa: C901, PLR0915 - two agents and a handler sharing the wiring read best together
    """Add the intake agents and the citizen-history table to the app."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    contacts = app.topic(names.contacts, **raw)
    by_citizen = app.topic(
        f"{app.conf.id}-contacts-by-citizen",
        internal=True,
        partitions=settings.streams.partitions,
        **raw,
    )
    outputs = {
        "surveys": app.topic(names.surveys, **raw),
        "vault": app.topic(names.vault, **raw),
    }
    history = app.Table(
        HISTORY_TABLE,
        default=None,
        partitions=settings.streams.partitions,
        # faust tables always use the json codec: keys and values are plain strings.
        schema=faust.Schema(key_type=str, value_type=str),
        options=table_store_options(),
    )
    secret = settings.secrets.pseudonymisation_key.get_secret_value().encode()
    is_holiday: Callable[[date], bool] = settings.policy.holiday_calendar()
    unknown = _UnknownTouchpoints()
    producer = DirectProducer(app)

    guard = Containment(producer, names.deadletter, telemetry.Stage.INTAKE)

    async def admit(event: EventT[bytes]) -> None:
        message = event.message
        now = datetime.now(UTC)
        admitted = admit_contact(message.value, message.headers, secret, now)
        if isinstance(admitted, Rejected):
            await guard.reject(message, admitted.code, admitted.reason, now)
        else:
            await producer.send(by_citizen, admitted.key, admitted.value)

    @app.agent(contacts, name=INTAKE_AGENT)
    async def intake(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guard.run(event.message, admit, event)
            telemetry.agent_progress(INTAKE_AGENT, datetime.now(UTC))

    async def forward_opt_out(event: EventT[bytes]) -> None:
        value = event.message.value or b""
        if b'"OptOut"' in value:
            opt_out = decode_event(value)
            if isinstance(opt_out, OptOut):
                await producer.send(
                    by_citizen,
                    opt_out.citizen_key.encode(),
                    value,
                    [(RECORD_HEADER, OPT_OUT_RECORD)],
                )

    shared.read(app, "responses", names.responses, forward_opt_out, guard)

    @app.agent(by_citizen, name=DECIDE_AGENT)
    async def intake_decide(stream: faust.StreamT[bytes]) -> None:
        # A batch at a time: the decisions of a batch are produced together and
        # acknowledged by one wait, where one wait per contact capped the stage at
        # the broker's round trip. faust's StreamT does not declare take_events;
        # its Stream, which agents get, does.
        batches = cast("faust.Stream[bytes]", stream).take_events
        async for events in batches(INTAKE_BATCH, within=INTAKE_BATCH_WAIT_S):
            pending = list(events)
            delay = RETRY_FIRST_S
            while pending:
                batch = _Batch()
                for event in pending:
                    at_event(event)
                    await guard.run(event.message, decide_one, event, batch)
                # The history goes to the local store at once but reaches its changelog
                # later: written before the decision is on the broker, a worker killed in
                # between would find the contact in its history on restart and take the
                # replayed contact for a duplicate, so it would never be decided.
                outcomes = await acknowledged(app, batch.sent)
                for key, (event, stored) in batch.to_store(outcomes).items():
                    at_event(event)
                    history[key] = stored.to_json()
                # A decision the broker refused is made again (the same survey id), not
                # dropped with its offset committed; decisions that got through are
                # duplicates the second time and publish nothing.
                failed = batch.failed_keys(outcomes)
                pending = [event for event in pending if _key_of(event) in failed]
                if pending:
                    log.warning(
                        "intake: %d decisions were not acknowledged; deciding again in %.1f s",
                        len(pending),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
            telemetry.agent_progress(DECIDE_AGENT, datetime.now(UTC))

    async def decide_one(event: EventT[bytes], batch: _Batch) -> None:
        """Decide one record of the internal topic against the batch's view of its citizen."""
        now = datetime.now(UTC)
        key = _key_of(event)
        before = batch.latest.get(key)
        if before is None:
            stored = history.get(key)
            before = CitizenHistory() if stored is None else CitizenHistory.from_json(stored)
        if is_opt_out(event.message.headers):
            opted_out = with_opt_out(before)
            if opted_out is not None:
                batch.decided(key, event, opted_out, [])
            return
        contact = decode_contact(event.message.value or b"", now=now)
        if isinstance(contact, Rejected):  # the first agent let it through: a bug, kept
            await guard.reject(event.message, contact.code, contact.reason, now)
            return
        touchpoint, known = settings.touchpoint(contact.data.touchpoint.id)
        if not known:
            unknown.report(contact.data.touchpoint.id)
        decision = decide(
            contact,
            before,
            touchpoint,
            settings.policy,
            now,
            citizen_key=key,
            is_holiday=is_holiday,
        )
        delivered = [
            await producer.send(outputs[record.topic], record.key, record.value)
            for record in publications(decision, contact, now)
        ]
        batch.decided(
            key, event, decision.history if decision.history != before else None, delivered
        )
        _count(decision)


@dataclass(slots=True)
class _Batch:
    """A batch's decisions whose histories wait for their records' acknowledgement.

    ``latest`` is each citizen's history as the batch has decided it so far,
    so a citizen's second contact in one batch sees the first. A history is
    stored only when the records of its decision, and of every earlier
    decision of the same citizen in the batch, are acknowledged; after a
    failure the citizen keeps the history stored before, and a replay decides
    the contacts again, with the same survey ids.
    """

    latest: dict[str, CitizenHistory] = field(default_factory=dict)
    sent: list[asyncio.Future[Any]] = field(default_factory=list)
    _steps: list[tuple[str, EventT[bytes], CitizenHistory | None, range]] = field(
        default_factory=list
    )

    def decided(
        self,
        key: str,
        event: EventT[bytes],
        new: CitizenHistory | None,
        delivered: list[asyncio.Future[Any] | None],
    ) -> None:
        """Take a citizen's new history (None: unchanged), stored once ``delivered`` is acked."""
        first = len(self.sent)
        self.sent.extend(sent for sent in delivered if sent is not None)
        if new is not None:
            self.latest[key] = new
        self._steps.append((key, event, new, range(first, len(self.sent))))

    def to_store(self, outcomes: list[Any]) -> dict[str, tuple[EventT[bytes], CitizenHistory]]:
        """Give each citizen's last history whose records, and all before, were acknowledged."""
        keep: dict[str, tuple[EventT[bytes], CitizenHistory]] = {}
        failed: set[str] = set()
        for key, event, new, records in self._steps:
            if key in failed:
                continue
            if any(isinstance(outcomes[index], BaseException) for index in records):
                failed.add(key)
                continue
            if new is not None:
                keep[key] = (event, new)
        return keep

    def failed_keys(self, outcomes: list[Any]) -> set[str]:
        """Name the citizens with a decision in the batch whose records were not acknowledged."""
        return {
            key
            for key, _event, _new, records in self._steps
            if any(isinstance(outcomes[index], BaseException) for index in records)
        }


def _key_of(event: EventT[bytes]) -> str:
    """Give the citizen key of a record of the internal by-citizen topic."""
    return (event.message.key or b"").decode()


def _count(decision: Decision) -> None:
    if isinstance(decision, Schedule):
        telemetry.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.OK)
        telemetry.record_survey(telemetry.SurveyOutcome.SCHEDULED, decision.channel)
        for _ in decision.superseded:
            telemetry.record_survey(telemetry.SurveyOutcome.SKIPPED, None, SkipReason.SUPERSEDED)
        return
    if decision.reason is SkipReason.DUPLICATE:
        telemetry.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.DUPLICATE)
        return
    telemetry.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.OK)
    telemetry.record_survey(telemetry.SurveyOutcome.SKIPPED, None, decision.reason)
