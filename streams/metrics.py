"""Rolling metrics and drop detection: ratings and sends in, figures and alerts out.

Four agents:

1. ``metrics-route`` reads the ratings topic and forwards each Rating, as
   is, to an internal topic keyed by every metrics key it counts towards
   (``touchpoint:<id>``, ``channel:<name>``, ``service:<key>``), so that all
   of one key's events meet in one partition. A record that is not a valid
   Rating goes to the dead-letter topic.
2. ``metrics-sent-route`` reads the surveys topic and forwards SurveySent to
   the same internal topic under ``touchpoint:<id>``. SurveySent names no
   channel or service, so sends (and response rates) are per touchpoint.
3. ``metrics`` keeps a :class:`engine.ledger.Ledger` per key. The table
   ``metrics-ledger`` holds the latest revision counted per survey
   (``<key>|r|<survey id>`` → Rating JSON) and each send
   (``<key>|s|<survey id>`` → time); the ledgers are rebuilt from it after a
   restart or rebalance, so the figures are exact across both. Changed keys
   are published to the metrics topic by a timer, at most once per
   ``[metrics] emit_interval`` per key and always after the last change.
4. ``metrics-detect`` reads the same internal topic (touchpoint keys only) in
   the order the touchpoint's ratings arrived and feeds each Rating to
   :func:`engine.detection.step`, with state per touchpoint in the table
   ``detector-state``; alerts go to the alerts topic keyed by touchpoint.
   A touchpoint with an ``[alerts] csat_targets`` entry also gets a tick
   with its last week's answers after each rating, for target breaches.

Everything runs on event time (a rating's ``answered_at``), so
``palaute metrics rebuild`` reproduces the live figures and a replay
reproduces the same alerts with the same ids. Replays are harmless: the
ledger ignores a revision it already counted, and the detector remembers the
rating ids it saw recently.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust
from pydantic import ValidationError

from connectors import telemetry
from engine.detection import DetectorConfig, DetectorState, TargetConfig, new_detector, step
from engine.ledger import Ledger, owner_key, rating_owners
from engine.target_window import TargetBuckets, count_answer
from schemas.decoding import Rejected, decode_event
from schemas.metrics import Dimension
from schemas.responses import Rating
from schemas.surveys import SurveySent
from streams.intake import dead_letter_headers

if TYPE_CHECKING:
    from datetime import timedelta

    from schemas.config import Settings
    from streams.app import TopicNames

log = logging.getLogger(__name__)

ROUTE_AGENT = "metrics-route"
SENT_AGENT = "metrics-sent-route"
METRICS_AGENT = "metrics"
DETECT_AGENT = "metrics-detect"
LEDGER_TABLE = "metrics-ledger"
DETECTOR_TABLE = "detector-state"
#: Rating ids a detector remembers, to recognise a replayed record.
RECENT_RATINGS = 500
#: A ledger forgets surveys older than every window after this many changes.
PRUNE_EVERY = 1_000
_TOUCHPOINT_PREFIX = Dimension.TOUCHPOINT.value + ":"


def _entry(owner: str, kind: str, survey_id: str) -> str:
    return f"{owner}|{kind}|{survey_id}"


class Ledgers:
    """The ledgers of the partitions this worker owns, and the keys not yet published."""

    def __init__(self, windows: list[timedelta]) -> None:
        self.windows = windows
        self.by_owner: dict[str, Ledger] | None = None
        self.dirty: set[str] = set()
        self.changes: dict[str, int] = {}

    def forget(self) -> None:
        """Drop the ledgers: partitions moved, so the table is the truth again.

        The keys not yet published stay marked; reloading marks every key anyway.
        """
        self.by_owner = None

    def load(self, entries: Any) -> dict[str, Ledger]:
        """Rebuild every ledger from the table's entries (after a start or a rebalance)."""
        by_owner: dict[str, Ledger] = {}
        for entry, value in entries:
            owner, kind, survey_id = str(entry).rsplit("|", 2)
            ledger = by_owner.setdefault(owner, Ledger(owner))
            if kind == "r":
                ledger.add_rating(Rating.model_validate_json(value))
            else:
                ledger.add_sent(survey_id, datetime.fromisoformat(value))
        self.by_owner = by_owner
        # A crash may have come between a change and its publication: publish all again.
        self.dirty = set(by_owner)
        return by_owner


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:  # noqa: C901, PLR0915 - four agents sharing the wiring read best together
    """Add the metrics and detection agents, their tables and the publishing timer."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    partitions = settings.streams.partitions
    ratings = app.topic(names.ratings, **raw)
    surveys = app.topic(names.surveys, **raw)
    by_key = app.topic(f"{app.conf.id}-metrics-by-key", internal=True, partitions=partitions, **raw)
    metrics_topic = app.topic(names.metrics, **raw)
    alerts_topic = app.topic(names.alerts, **raw)
    deadletter = app.topic(names.deadletter, **raw)
    string_table: dict[str, Any] = {
        "default": None,
        "partitions": partitions,
        "schema": faust.Schema(key_type=str, value_type=str),
        "options": {"driver": "rocksdict"},
    }
    ledger_table = app.Table(LEDGER_TABLE, **string_table)
    detector_table = app.Table(DETECTOR_TABLE, **string_table)
    ledgers = Ledgers(list(settings.metrics.windows))
    for touchpoint_id, touchpoint in settings.touchpoints.items():
        telemetry.set_kpi_target(touchpoint_id, touchpoint.kpi_target)

    def forget(*_args: Any, **_kwargs: Any) -> None:
        ledgers.forget()

    # Partitions moved: rebuild from the table before the next record. (Typed as Any:
    # mode's stubs describe receivers more narrowly than it calls them.)
    receiver: Any = forget
    app.on_partitions_revoked.connect(receiver)
    app.on_partitions_assigned.connect(receiver)

    @app.agent(ratings, name=ROUTE_AGENT)
    async def route_ratings(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            now = datetime.now(UTC)
            rating = decode_event(event.message.value or b"", expect="Rating")
            if isinstance(rating, Rejected):
                message = event.message
                await deadletter.send(
                    key=message.key,
                    value=message.value,
                    headers=dead_letter_headers(rating, message, now),
                )
                telemetry.record_dead_letter(telemetry.Stage.METRICS, rating.code)
                telemetry.count_event(telemetry.Stage.METRICS, telemetry.Outcome.DEAD_LETTERED)
            elif isinstance(rating, Rating):
                for owner in rating_owners(rating):
                    await by_key.send(key=owner.encode(), value=event.message.value)
            telemetry.agent_progress(ROUTE_AGENT, now)

    @app.agent(surveys, name=SENT_AGENT)
    async def route_sent(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            # Most survey events are not sends: look before paying for validation.
            if value and b'"SurveySent"' in value:
                try:
                    sent = SurveySent.model_validate_json(value)
                except ValidationError:
                    sent = None  # another event quoting the name; not ours to judge
                if sent is not None:
                    owner = owner_key(Dimension.TOUCHPOINT, sent.touchpoint_id)
                    await by_key.send(key=owner.encode(), value=value)
            telemetry.agent_progress(SENT_AGENT, datetime.now(UTC))

    @app.agent(by_key, name=METRICS_AGENT)
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            by_owner = ledgers.by_owner
            if by_owner is None:
                by_owner = ledgers.load(ledger_table.items())
            owner = event.message.key.decode()
            ledger = by_owner.setdefault(owner, Ledger(owner))
            changed = _apply(ledger, owner, event.message.value or b"", ledger_table)
            if changed:
                ledgers.dirty.add(owner)
                ledgers.changes[owner] = ledgers.changes.get(owner, 0) + 1
                if ledgers.changes[owner] % PRUNE_EVERY == 0:
                    pruned = ledger.prune()
                    for survey_id in pruned.ratings:
                        del ledger_table[_entry(owner, "r", survey_id)]
                    for survey_id in pruned.sent:
                        del ledger_table[_entry(owner, "s", survey_id)]
            telemetry.count_event(telemetry.Stage.METRICS, telemetry.Outcome.OK)
            telemetry.agent_progress(METRICS_AGENT, datetime.now(UTC))

    async def publish() -> None:
        if ledgers.by_owner is None:
            return
        owners, ledgers.dirty = ledgers.dirty, set()
        for owner in sorted(owners):
            ledger = ledgers.by_owner.get(owner)
            if ledger is None:
                continue
            for figures in ledger.figures(ledgers.windows):
                await metrics_topic.send(
                    key=f"{owner}:{figures.window}".encode(),
                    value=figures.model_dump_json().encode(),
                )
                telemetry.observe_metrics(figures)

    # Called, not applied as a decorator: faust's timer decorator is untyped.
    app.timer(settings.metrics.emit_interval.total_seconds(), name="metrics-publish")(publish)

    detector_config = DetectorConfig(dashboard_url=settings.alerts.dashboard_url)
    configs: dict[str, DetectorConfig] = {
        touchpoint_id: replace(detector_config, target=TargetConfig(target=target))
        for touchpoint_id, target in settings.alerts.csat_targets.items()
    }

    @app.agent(by_key, name=DETECT_AGENT)
    async def detect(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            owner = event.message.key.decode()
            value = event.message.value or b""
            if owner.startswith(_TOUCHPOINT_PREFIX) and b'"Rating"' in value:
                rating = Rating.model_validate_json(value)
                stored = _Detector.load(detector_table.get(rating.touchpoint_id), rating)
                if rating.rating_id not in stored.recent:
                    config = configs.get(rating.touchpoint_id, detector_config)
                    state, alerts = step(stored.state, rating, rating.answered_at, config)
                    if config.target.target is not None:
                        stored.target, tick = count_answer(stored.target, rating)
                        state, more = step(state, tick, rating.answered_at, config)
                        alerts += more
                    for alert in alerts:
                        await alerts_topic.send(
                            key=alert.touchpoint_id.encode(),
                            value=alert.model_dump_json().encode(),
                        )
                        log.info("alert %s %s on %s", alert.alert_id, alert.state.value, owner)
                    stored.state = state
                    stored.recent.append(rating.rating_id)
                    detector_table[rating.touchpoint_id] = stored.dump()
            telemetry.agent_progress(DETECT_AGENT, datetime.now(UTC))


def _apply(ledger: Ledger, owner: str, value: bytes, table: Any) -> bool:
    """Count one forwarded record in its ledger and store what changed."""
    if b'"SurveySent"' in value:
        sent = SurveySent.model_validate_json(value)
        if not ledger.add_sent(sent.survey_id, sent.occurred_at):
            return False
        table[_entry(owner, "s", sent.survey_id)] = sent.occurred_at.isoformat()
        return True
    rating = Rating.model_validate_json(value)
    if not ledger.add_rating(rating):
        return False
    table[_entry(owner, "r", rating.survey_id)] = rating.model_dump_json()
    return True


@dataclass
class _Detector:
    """A touchpoint's entry in the detector table."""

    state: DetectorState
    recent: deque[str]
    target: TargetBuckets = field(default_factory=dict)

    @classmethod
    def load(cls, stored: str | None, rating: Rating) -> _Detector:
        if stored is None:
            return cls(
                new_detector(rating.touchpoint_id, rating.scale), deque(maxlen=RECENT_RATINGS)
            )
        raw = json.loads(stored)
        return cls(
            DetectorState.from_dict(raw["state"]),
            deque(raw["recent"], maxlen=RECENT_RATINGS),
            raw.get("target", {}),
        )

    def dump(self) -> str:
        return json.dumps(
            {"state": self.state.to_dict(), "recent": list(self.recent), "target": self.target}
        )
