"""Metrics wiring: the metrics and roll-up stages on the Kafka runtime, a forwarder and two timers.

The rules are pure stages (:mod:`streams.stages.metrics`,
:mod:`streams.stages.rollups`); this module gives them their topics, tables
and ticks. All of one touchpoint's events are counted in one partition, the
one its key ``touchpoint:<id>`` hashes to (:func:`streams.partitioning.touchpoint_partition`):

1. the metrics' part of the surveys topic's one reader (``surveys-reader``,
   see :mod:`streams.shared`), :class:`~streams.stages.metrics.ForwardActivity`,
   forwards SurveySent,
   SurveyScheduled and SurveySkipped (the decision on a contact, unless it
   is a duplicate: :func:`~streams.stages.metrics_rules.forwarded_touchpoint`)
   to the internal topic ``<app>-metrics-by-key`` under ``touchpoint:<id>``,
   in that partition. SurveySent names no channel or service, so sends (and
   response rates) are per touchpoint; decisions only feed silence
   detection.
2. ``metrics`` (:class:`~streams.stages.metrics.CountMetrics`) reads the
   ratings topic and that internal topic on the runtime
   (:func:`streams.runtime.faust_agent.run_stage`) a batch at a time (up to
   ``METRICS_BATCH`` records, waiting at most ``METRICS_BATCH_WAIT_S``),
   with four tables as its state: ``metrics-ledger`` (the latest revision
   counted per survey, ``<key>|r|<survey id>`` → Rating JSON as it came, and
   each send, ``<key>|s|<survey id>`` → time), ``detector-state`` (one
   entry per touchpoint, stored once per batch), ``detector-activity``
   (``<touchpoint>|<signal>|first`` → ``<epoch seconds>|<partition>``,
   ``...|h|<epoch hour>`` → count). It keeps them parsed in memory and
   forgets them when partitions move, a batch is not acknowledged or a
   handler raises. Alerts go to the alerts topic keyed
   by touchpoint, acknowledged before the detector entry that remembers the
   rating is stored.
3. ``metrics-rollup`` (:class:`~streams.stages.rollups.CombineRollups`)
   reads the roll-up parts from ``<app>-metrics-rollup`` and keeps the
   latest of each roll-up from each partition in the table ``metrics-rollup``.
4. Two timers write tick records (key ``tick``) to each partition this
   worker actively owns: ``metrics-publish`` every ``[metrics]
   emit_interval`` to both internal topics, to the partitions where the
   stage has something to publish (it says: :meth:`CountMetrics.has_changes`;
   an idle worker writes no ticks), and each stage then publishes the
   figures of its changed keys of that partition: at most once per
   interval per key and always after its last change; and
   ``detector-silence`` every ``[alerts] silence_check_interval`` to the
   by-key topic (the metrics stage then judges the silence of that
   partition's touchpoints, so every table write stays in its partition;
   for one silence window after a start or a move it does not judge).

5. ``metrics-history`` (:class:`~streams.stages.history.CountHistory`)
   reads ``<app>-history-by-key``, where the metrics stage hands on every
   rating and send it counts (in the touchpoint's partition), and keeps the
   daily and hourly counts in the table ``history-counts`` (with
   ``history-answers`` and ``history-sent`` remembering what it counted),
   publishing each changed bucket to the history topic.

Progress is reported under each agent's own name. Records that cannot be
read go to the dead-letter topic (stage ``metrics``).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import faust

from connectors import telemetry
from streams import shared
from streams.partitioning import copartitioned, key_partition
from streams.producer import DirectProducer
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.faust_agent import Tables, run_stage
from streams.stages.history import (
    ANSWERS_TABLE,
    COUNTS_TABLE,
    HISTORY,
    SENT_TABLE,
    CountHistory,
    history_feed_topic,
)
from streams.stages.metrics import (
    ALERTS,
    BY_KEY,
    HISTORY_FEED,
    METRICS,
    ROLLUP,
    Counted,
    CountMetrics,
    ForwardActivity,
    Published,
    Raised,
)
from streams.stages.metrics_mirrors import (
    ACTIVITY_TABLE,
    DETECTOR_TABLE,
    LEDGER_TABLE,
    ROLLUP_TABLE,
)
from streams.stages.metrics_rules import (
    PUBLISH_TICK,
    SILENCE_TICK,
    detector_configs,
)
from streams.stages.rollups import CombineRollups
from streams.stores import table_store_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemas.base import Scale
    from schemas.catalogue import Catalogue
    from schemas.config import Settings
    from schemas.topics import TopicNames

__all__ = [
    "ACTIVITY_TABLE",
    "DETECTOR_TABLE",
    "LEDGER_TABLE",
    "METRICS_AGENT",
    "ROLLUP_AGENT",
    "ROLLUP_TABLE",
    "SILENCE_TICK",
    "SILENCE_TIMER",
    "detector_configs",
    "register",
]

log = logging.getLogger(__name__)

METRICS_AGENT = CountMetrics.name
ROLLUP_AGENT = CombineRollups.name
SILENCE_TIMER = "detector-silence"
PUBLISH_TIMER = "metrics-publish"
#: Records the metrics stage takes at most at once, and how long it waits for more
#: before it goes on with fewer (this much added latency).
METRICS_BATCH = 1_000
METRICS_BATCH_WAIT_S = 0.02


def observe(observation: Any) -> None:
    """Count what the metrics stages did, and log each alert they raised."""
    if isinstance(observation, Counted):
        telemetry.count_event(telemetry.Stage.METRICS, telemetry.Outcome.OK)
    elif isinstance(observation, Published):
        telemetry.observe_metrics(observation.figures)
    elif isinstance(observation, Raised):
        alert = observation.alert
        log.info("alert %s %s on %s", alert.alert_id, alert.state.value, alert.touchpoint_id)


class KpiTargetGauge:
    """Keep ``palaute_touchpoint_kpi_target`` equal to the catalogue version in force.

    A target removed, or a touchpoint gone from the catalogue, withdraws its
    series rather than leaving the old target on the dashboards.
    """

    def __init__(self) -> None:
        self._published: set[str] = set()

    def __call__(self, catalogue: Catalogue) -> None:
        """Publish the targets of ``catalogue`` and withdraw any no longer there."""
        targets = {
            touchpoint_id: touchpoint.kpi_target
            for touchpoint_id, touchpoint in catalogue.touchpoints.items()
            if touchpoint.kpi_target is not None
        }
        for touchpoint_id in self._published - targets.keys():
            telemetry.set_kpi_target(touchpoint_id, None)
        for touchpoint_id, target in targets.items():
            telemetry.set_kpi_target(touchpoint_id, target)
        self._published = set(targets)


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:
    """Add the metrics and roll-up stages, their tables, the forwarder and the two timers."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    partitions = settings.streams.partitions
    by_key = app.topic(f"{app.conf.id}-metrics-by-key", internal=True, partitions=partitions, **raw)
    # What the metrics stage reads: the internal topic and the ratings topic. Internal,
    # so that faust creates both if missing, with the partitions the tables have.
    counted = app.topic(
        by_key.get_topic_name(), names.ratings, internal=True, partitions=partitions, **raw
    )
    rollup_parts = app.topic(
        f"{app.conf.id}-metrics-rollup", internal=True, partitions=partitions, **raw
    )
    history_feed = app.topic(
        history_feed_topic(app.conf.id), internal=True, partitions=partitions, **raw
    )
    string_table: dict[str, Any] = {
        "default": None,
        "partitions": partitions,
        "schema": faust.Schema(key_type=str, value_type=str),
        "options": table_store_options(),
    }
    tables = Tables(
        {
            name: app.Table(name, **string_table)
            for name in (LEDGER_TABLE, DETECTOR_TABLE, ACTIVITY_TABLE)
        }
    )
    rollup_table = Tables({ROLLUP_TABLE: app.Table(ROLLUP_TABLE, **string_table)})

    @functools.lru_cache(maxsize=65_536)
    def partition_of(owner: str) -> int:
        return key_partition(owner.encode(), partitions)

    publish_kpi_targets = KpiTargetGauge()
    publish_kpi_targets(settings.catalogue.current)
    settings.catalogue.subscribe(publish_kpi_targets)

    topics = {
        BY_KEY: by_key.get_topic_name(),
        METRICS: names.metrics,
        ALERTS: names.alerts,
        ROLLUP: rollup_parts.get_topic_name(),
        HISTORY_FEED: history_feed.get_topic_name(),
        DEADLETTER: names.deadletter,
    }
    stage = CountMetrics(
        settings,
        ratings_topic=names.ratings,
        partition_of=partition_of,
        # The consumer's live metadata says, so this stays out of the pure stage.
        counted_where_it_lands=lambda: copartitioned(app, names.ratings, partitions),
        feeds_history=True,
    )
    run_stage(
        app,
        stage,
        counted,
        topics=topics,
        table=tables,
        batch=METRICS_BATCH,
        within=METRICS_BATCH_WAIT_S,
        observe=observe,
    )
    windows = list(settings.metrics.windows)
    combine = CombineRollups(windows, partition_of)
    run_stage(
        app,
        combine,
        rollup_parts,
        topics=topics,
        table=rollup_table,
        observe=observe,
    )

    _add_history(app, settings, names, history_feed, partition_of, string_table)

    producer = DirectProducer(app)
    shared.forward(
        app,
        "surveys",
        names.surveys,
        ForwardActivity(partition_of),
        topics={BY_KEY: by_key.get_topic_name()},
        deadletter=names.deadletter,
    )

    publishers = ((by_key, stage), (rollup_parts, combine))
    _add_timers(app, settings, producer, publishers, by_key)


def _add_history(  # noqa: PLR0917 - what the metrics stage's wiring shares with it
    app: faust.App,
    settings: Settings,
    names: TopicNames,
    feed: faust.TopicT,
    partition_of: Callable[[str], int],
    string_table: dict[str, Any],
) -> None:
    """Add the history stage on what the metrics stage hands on, with its three tables."""
    tables = Tables(
        {
            name: app.Table(name, **string_table)
            for name in (COUNTS_TABLE, ANSWERS_TABLE, SENT_TABLE)
        }
    )

    def scale_of(touchpoint_id: str) -> Scale:
        return settings.catalogue.touchpoint(touchpoint_id)[0].scale

    stage = CountHistory(
        partition_of=partition_of,
        time_zone=settings.policy.zone,
        scale_of=scale_of,
        breakdowns=settings.breakdowns,
    )
    run_stage(
        app,
        stage,
        feed,
        topics={HISTORY: names.history, DEADLETTER: names.deadletter},
        table=tables,
        batch=METRICS_BATCH,
        within=METRICS_BATCH_WAIT_S,
    )


def _add_timers(
    app: faust.App,
    settings: Settings,
    producer: DirectProducer,
    publishers: tuple[tuple[faust.TopicT, CountMetrics | CombineRollups], ...],
    by_key: faust.TopicT,
) -> None:
    """Add the two timers that write tick records to the partitions this worker owns."""

    def owned(topic: faust.TopicT) -> list[int]:
        name = topic.get_topic_name()
        return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name)

    async def publish_ticks() -> None:
        """Ask each partition this worker actively owns to publish what changed, if anything."""
        for topic, stage in publishers:
            for partition in owned(topic):
                if stage.has_changes(partition):
                    await producer.send(topic, b"tick", PUBLISH_TICK, partition=partition)

    async def silence_ticks() -> None:
        """Ask each partition this worker actively owns to judge its touchpoints' silence."""
        for partition in owned(by_key):
            await producer.send(by_key, b"tick", SILENCE_TICK, partition=partition)

    # Called, not applied as decorators: faust's timer decorator is untyped.
    app.timer(settings.metrics.emit_interval.total_seconds(), name=PUBLISH_TIMER)(publish_ticks)
    app.timer(settings.alerts.silence_check_interval.total_seconds(), name=SILENCE_TIMER)(
        silence_ticks
    )
