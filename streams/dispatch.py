"""Scheduler and dispatcher wiring: the scheduler stage on the Kafka runtime, and its inputs.

The rules are in :mod:`engine.lifecycle`, and how records become calls to
them in the pure stage :mod:`streams.stages.dispatch`; this module gives the
stage its topics, its table, its agenda and its executor:

1. Forwarders re-key what the scheduler needs by survey id onto one
   internal topic, ``<app id>-surveys-by-id``: every event of the surveys
   topic (keyed by citizen key; a pure part of the topic's one reader,
   shared with the answers join and the metrics, :mod:`streams.shared`),
   the answers of the responses topic (likewise), and every contact-details
   record of the vault (already keyed by survey id, but with its own
   partition count; ``dispatch-vault-by-id``, the pure
   :class:`~streams.stages.dispatch.ForwardDetails` on the runtime). All of
   a survey's records then meet in one partition, in their original order
   per source topic. Keying by survey id spreads a heavy citizen's surveys
   over the cluster.
2. ``dispatch-scheduler`` (:class:`~streams.stages.dispatch.ScheduleSurveys`)
   reads that topic on the runtime (:func:`streams.runtime.faust_agent.run_stage`)
   and keeps the ``survey-lifecycle`` table (RocksDB via rocksdict, backed
   by a compacted changelog), one survey state per survey id, so a million
   pending surveys live on disk, not in RAM, and survive restarts and
   rebalances.
3. Timing: a timer on every worker writes a *tick* record to each partition
   of the internal topic that this worker actively owns (never standbys),
   naming this run (:class:`streams.scheduling.RunAgenda`, a token new at
   every assignment). The stage handles a tick in the partition's own
   stream, so every table write happens in the right partition, and a tick
   that lands on another worker after a rebalance is handled by the
   partition's new owner. Each tick acts on everything overdue, so missed
   ticks and restarts catch up by themselves.
4. The due index and the rate limit are in memory
   (:mod:`streams.scheduling`); the index is rebuilt from the actively
   owned part of the table at the first tick after every assignment.

At most once (docs/guarantees-dispatch.md): the stage asks for a send as a
command in the same checkpoint that stores the survey as DISPATCHING and
publishes SurveyDispatching; the runtime flushes the producer, so both are
acknowledged by Kafka, before :class:`streams.sending.Deliveries` calls
Twilio or the SMTP relay, and it writes the provider's answer back to the
survey's partition for the stage to fold in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import faust

from connectors import telemetry
from streams import shared
from streams.producer import DirectProducer
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.faust_agent import run_stage
from streams.scheduling import Pacer, RunAgenda
from streams.sending import Deliveries, ProviderSenders
from streams.stages.dispatch import (
    BY_SURVEY,
    RESPONSES,
    SURVEYS,
    VAULT,
    ForwardAnswers,
    ForwardDetails,
    ForwardSurveyEvents,
    ScheduleSurveys,
    Tally,
    Ticked,
    retry_policy,
)
from streams.stages.dispatch_records import tick_value
from streams.stores import table_store_options

if TYPE_CHECKING:
    from schemas.config import Settings
    from schemas.topics import TopicNames

FORWARD_VAULT_AGENT = ForwardDetails.name
SCHEDULER_AGENT = ScheduleSurveys.name
LIFECYCLE_TABLE = "survey-lifecycle"
#: A tick not seen back within this time is sent again (it went to another worker).
_TICK_TIMEOUT = timedelta(seconds=30)
_TALLIES = {
    "sent": telemetry.SurveyOutcome.SENT,
    "failed": telemetry.SurveyOutcome.FAILED,
    "expired": telemetry.SurveyOutcome.EXPIRED,
}


class _Observer:
    """Keep the due index up to date, note own ticks seen back, count sends and failures."""

    def __init__(self, agenda: RunAgenda, ticks_out: dict[int, datetime]) -> None:
        self._agenda = agenda
        self._ticks_out = ticks_out

    def __call__(self, observation: Any) -> None:
        if isinstance(observation, Tally):
            telemetry.record_survey(_TALLIES[observation.outcome], observation.channel)
        else:
            if isinstance(observation, Ticked) and observation.writer == self._agenda.run():
                self._ticks_out.pop(observation.partition, None)
            self._agenda.observe(observation)


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:
    """Add the forwarders, the scheduler stage, its table and its timer to the app."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    vault = app.topic(names.vault, **raw)
    by_survey = app.topic(
        f"{app.conf.id}-surveys-by-id",
        internal=True,
        partitions=settings.streams.partitions,
        **raw,
    )
    table = app.Table(
        LIFECYCLE_TABLE,
        default=None,
        partitions=settings.streams.partitions,
        schema=faust.Schema(key_type=str, value_type=str),
        options=table_store_options(),
    )
    topics = {
        BY_SURVEY: by_survey.get_topic_name(),
        SURVEYS: names.surveys,
        RESPONSES: names.responses,
        VAULT: names.vault,
        DEADLETTER: names.deadletter,
    }

    def active_partitions() -> set[int]:
        topic = by_survey.get_topic_name()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    pacer = Pacer(settings.dispatch)
    agenda = RunAgenda(retry_policy(settings), pacer, table.items, active_partitions)
    senders = ProviderSenders(settings)
    ticks_out: dict[int, datetime] = {}
    run_stage(app, ForwardDetails(), vault, topics=topics)
    run_stage(
        app,
        ScheduleSurveys(settings, agenda),
        by_survey,
        topics=topics,
        table=table,
        observe=_Observer(agenda, ticks_out),
        execute=Deliveries(senders, pacer),
    )

    @app.on_before_shutdown.connect
    async def _close_providers(*_: Any, **__: Any) -> None:
        await senders.aclose()

    @app.on_partitions_revoked.connect
    async def _revoked(*_: Any, **__: Any) -> None:
        agenda.revoked()

    @app.on_partitions_assigned.connect
    async def _assigned(*_: Any, **__: Any) -> None:
        agenda.restart()
        ticks_out.clear()

    for role, topic, part in (
        ("surveys", names.surveys, ForwardSurveyEvents()),
        ("responses", names.responses, ForwardAnswers()),
    ):
        shared.forward(
            app,
            role,
            topic,
            part,
            topics={BY_SURVEY: by_survey.get_topic_name()},
            deadletter=names.deadletter,
        )
    producer = DirectProducer(app)

    @app.timer(interval=settings.dispatch.tick.total_seconds())  # type: ignore[untyped-decorator] # faust's timer is untyped
    async def tick() -> None:
        now = datetime.now(UTC)
        for partition in sorted(active_partitions()):
            sent_at = ticks_out.get(partition)
            if sent_at is not None and now - sent_at < _TICK_TIMEOUT:
                continue  # the last tick is still queued; one is enough
            ticks_out[partition] = now
            await producer.send(by_survey, b"tick", tick_value(agenda.run()), partition=partition)
