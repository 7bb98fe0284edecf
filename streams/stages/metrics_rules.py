"""The metrics stage's small rules: what a record is, the detector's entry, its configuration.

Pure (no Kafka client): :mod:`streams.stages.metrics` applies these to each
record, and the surveys reader's forwarder (:mod:`streams.metrics`) asks
:func:`forwarded_touchpoint` what to forward.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
from pydantic import ValidationError

from engine.detection import (
    DetectorConfig,
    DetectorState,
    KpiConfig,
    SilenceConfig,
    TargetConfig,
    new_detector,
)
from engine.silence import ActivityConfig, Signal, SignalCounts
from schemas.metrics import Dimension
from schemas.surveys import SkipReason, SurveyScheduled, SurveySent, SurveySkipped

if TYPE_CHECKING:
    from engine.target_window import TargetBuckets
    from schemas.base import Scale
    from schemas.config import Settings

#: The record the silence timer writes to each partition it owns (key ``tick``).
SILENCE_TICK = b'{"type":"DetectorTick"}'
#: The record the publishing timer writes to each partition it owns (key ``tick``).
PUBLISH_TICK = b'{"type":"MetricsPublishTick"}'
#: Rating ids a detector remembers, to recognise a replayed record.
RECENT_RATINGS = 500
#: A ledger forgets surveys older than every window after this many changes.
PRUNE_EVERY = 1_000
TOUCHPOINT_PREFIX = Dimension.TOUCHPOINT.value + ":"


def signal_of(value: bytes) -> Signal | None:
    """Tell which activity a forwarded record is, by its type name (cheap, before parsing)."""
    if b'"SurveySent"' in value:
        return Signal.DELIVERIES
    if b'"SurveyScheduled"' in value or b'"SurveySkipped"' in value:
        return Signal.CONTACTS
    if b'"Rating"' in value:
        return Signal.ANSWERS
    return None


def forwarded_touchpoint(value: bytes) -> str | None:
    """Name the touchpoint of a surveys-topic record the metrics stage counts, else None."""
    signal = signal_of(value)
    try:
        if signal is Signal.DELIVERIES:
            return SurveySent.model_validate_json(value).touchpoint_id
        if signal is Signal.CONTACTS and b'"SurveyScheduled"' in value:
            return SurveyScheduled.model_validate_json(value).touchpoint_id
        if signal is Signal.CONTACTS:
            skipped = SurveySkipped.model_validate_json(value)
            # A duplicate is the same contact told twice: it was counted the first time.
            return None if skipped.reason is SkipReason.DUPLICATE else skipped.touchpoint_id
    except ValidationError:
        return None  # another event quoting the name; not ours to judge
    return None


def occurred_at(value: bytes) -> datetime | None:
    """When a forwarded send or decision happened (validated when it was forwarded)."""
    try:
        raw = json.loads(value)
        return datetime.fromisoformat(raw["occurred_at"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Counts:
    """One signal's buckets of one touchpoint, as in the activity table."""

    first_at: float | None = None
    hourly: dict[int, int] = field(default_factory=dict)
    recent: dict[int, int] = field(default_factory=dict)

    def view(self) -> SignalCounts:
        """Give the counts as silence detection reads them."""
        return SignalCounts(self.first_at, self.hourly, self.recent)


@dataclass
class DetectorEntry:
    """A touchpoint's entry in the detector table, kept parsed in memory between records.

    It is also the value the stage asks to store (a
    :class:`~streams.runtime.model.Deferred`): serialised once per batch.
    """

    state: DetectorState
    recent: deque[str]
    target: TargetBuckets = field(default_factory=dict)
    #: The touchpoint's partition of the internal topic, and its answers' hourly counts.
    partition: int | None = None
    answers_first: float | None = None
    answers: dict[str, int] = field(default_factory=dict)
    #: The ids in ``recent``, to tell a replay without scanning the list per rating.
    seen: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.seen = set(self.recent)

    def has_seen(self, rating_id: str) -> bool:
        """Tell whether a rating is among the last ones taken: a replayed record."""
        return rating_id in self.seen

    def remember(self, rating_id: str) -> None:
        """Take a rating's id, forgetting the oldest one when the list is full."""
        if len(self.recent) == self.recent.maxlen:
            self.seen.discard(self.recent[0])
        self.recent.append(rating_id)
        self.seen.add(rating_id)

    @classmethod
    def fresh(cls, touchpoint_id: str, scale: Scale) -> DetectorEntry:
        """Start the entry of a touchpoint never seen before."""
        return cls(new_detector(touchpoint_id, scale), deque(maxlen=RECENT_RATINGS))

    @classmethod
    def load(cls, stored: str | None, touchpoint_id: str, scale: Scale) -> DetectorEntry:
        """Parse a stored entry; a missing one is fresh, with the scale given."""
        if stored is None:
            return cls.fresh(touchpoint_id, scale)
        raw = json.loads(stored)
        return cls(
            DetectorState.from_dict(raw["state"]),
            deque(raw["recent"], maxlen=RECENT_RATINGS),
            raw.get("target", {}),
            raw.get("partition"),
            raw.get("answers_first"),
            raw.get("answers", {}),
        )

    def keep_answers(self, counts: Counts, partition: int) -> None:
        """Take the answers' counts from the mirror, to be stored with the entry."""
        self.partition = partition
        self.answers_first = counts.first_at
        self.answers = {str(hour): count for hour, count in counts.hourly.items()}

    def dump(self) -> str:
        """Serialise the entry as the detector table stores it."""
        # orjson: written for every touchpoint in every batch, so the encoder's speed shows.
        return orjson.dumps(
            {
                "state": self.state.to_dict(),
                "recent": list(self.recent),
                "target": self.target,
                "partition": self.partition,
                "answers_first": self.answers_first,
                "answers": self.answers,
            },
            option=orjson.OPT_NON_STR_KEYS,
        ).decode()


def activity_config(settings: Settings) -> ActivityConfig:
    """Build silence detection's counting configuration from ``[alerts]`` and the time zone."""
    alerts = settings.alerts
    return ActivityConfig(
        window=alerts.silence_window,
        weeks=alerts.silence_weeks,
        min_weeks=min(2, alerts.silence_weeks),
        time_zone=settings.policy.time_zone,
    )


def detector_configs(settings: Settings) -> tuple[DetectorConfig, dict[str, DetectorConfig]]:
    """Build the detector's configuration: the default, and each touchpoint's with targets.

    The targets come from the catalogue version in force; the stage builds
    them again when a new version is put in force (:meth:`CountMetrics.config`).
    """
    alerts = settings.alerts
    default = DetectorConfig(
        dashboard_url=alerts.dashboard_url,
        kpi=KpiConfig(min_sample=alerts.kpi_min_sample, confidence=alerts.kpi_confidence),
        silence=SilenceConfig(
            probability=alerts.silence_probability, min_expected=alerts.silence_min_expected
        ),
    )
    configs: dict[str, DetectorConfig] = {}
    catalogue = settings.catalogue.current
    for touchpoint_id in sorted({*catalogue.csat_targets, *catalogue.touchpoints}):
        touchpoint = catalogue.touchpoints.get(touchpoint_id)
        kpi_target = None if touchpoint is None else touchpoint.kpi_target
        csat_target = catalogue.csat_targets.get(touchpoint_id)
        if kpi_target is None and csat_target is None:
            continue
        configs[touchpoint_id] = replace(
            default,
            target=TargetConfig(target=csat_target),
            kpi=replace(default.kpi, target=kpi_target),
        )
    return default, configs
