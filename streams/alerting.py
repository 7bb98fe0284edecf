"""Alert delivery wiring: the alerting stage on the Kafka runtime, and the notifiers.

``alerting`` (:class:`~streams.stages.alerting.DeliverAlerts`, a pure stage)
reads the alerts topic on the runtime (:func:`streams.runtime.faust_agent.run_stage`)
and keeps each ``alert_id:state`` it had notified in the table
``alerts-notified``. Each ScoreDropAlert updates the Prometheus gauge of
firing alerts; a state not notified before is handed to every configured
notifier (email to ``[alerts] ops_email``, the signed webhook at ``[alerts]
webhook_url``) by :func:`perform`, which the runtime calls after the
batch's records are acknowledged and before the table remembers the state:
at least once per alert state, and a replayed record (after a restart or
rebalance) notifies no one twice. An acknowledgement is logged. A notifier
that keeps failing is logged and counted and the stage moves on: a dead
receiver must not hold up every later alert. A record that is no alert goes
to the dead-letter topic (stage ``notifier``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust

from connectors import telemetry
from connectors.notifiers import (
    AlertNotifier,
    AlertWording,
    EmailNotifier,
    WebhookNotifier,
    notify_all,
)
from engine.alert_text import touchpoint_name
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.faust_agent import run_stage
from streams.stages.alerting import Acknowledged, DeliverAlerts, Notify, Seen
from streams.stores import table_store_options

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from schemas.config import Settings
    from schemas.topics import TopicNames

log = logging.getLogger(__name__)

ALERTING_AGENT = DeliverAlerts.name
NOTIFIED_TABLE = "alerts-notified"


def notifiers(settings: Settings) -> list[AlertNotifier]:
    """Build the notifiers the configuration asks for (possibly none)."""
    found: list[AlertNotifier] = []
    alerts = settings.alerts
    catalogue = settings.catalogue

    def name(touchpoint_id: str, language: str) -> str:
        entry = catalogue.touchpoints.get(touchpoint_id)
        return touchpoint_name(entry, touchpoint_id, language)

    wording = AlertWording(alerts.language, settings.policy.zone, name)
    if alerts.ops_email is not None:
        if settings.smtp is None:
            log.warning("[alerts] ops_email is set but [smtp] is not: alerts are not mailed")
        else:
            found.append(EmailNotifier(settings.smtp, alerts.ops_email, wording=wording))
    if alerts.webhook_url is not None and alerts.webhook_secret is not None:
        found.append(
            WebhookNotifier(
                str(alerts.webhook_url),
                alerts.webhook_secret.get_secret_value().encode(),
                timeout=alerts.webhook_timeout.total_seconds(),
                attempts=alerts.webhook_attempts,
                wording=wording,
            )
        )
    return found


def observe(observation: Any) -> None:
    """Keep the firing-alerts gauge and the notifier's counts; log acknowledgements."""
    if isinstance(observation, Seen):
        telemetry.observe_alert(observation.alert)
        outcome = telemetry.Outcome.DUPLICATE if observation.duplicate else telemetry.Outcome.OK
        telemetry.count_event(telemetry.Stage.NOTIFIER, outcome)
    elif isinstance(observation, Acknowledged):
        log.info("alert %s acknowledged", observation.alert_id)


def performer(targets: list[AlertNotifier]) -> Callable[[Sequence[Any]], Awaitable[None]]:
    """Give what carries out the stage's effects: each alert to every notifier, in order.

    A notifier failing is logged and counted by :func:`notify_all` and never
    holds up the next alert; anything else a notifier raises is a bug of its
    own, logged, and the alert counts as handed over.
    """

    async def perform(effects: Sequence[Any]) -> None:
        for effect in effects:
            if not isinstance(effect, Notify):
                continue
            try:
                await notify_all(targets, effect.alert)
            except Exception as error:  # noqa: BLE001 - one broken notifier must not stop the rest
                log.warning(
                    "alert %s: a notifier raised %s",
                    effect.alert.alert_id,
                    type(error).__name__,
                )

    return perform


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:
    """Add the alerting stage and its de-duplication table."""
    alerts_topic = app.topic(names.alerts, key_serializer="raw", value_serializer="raw")
    notified = app.Table(
        NOTIFIED_TABLE,
        default=None,
        partitions=settings.streams.partitions,
        schema=faust.Schema(key_type=str, value_type=str),
        options=table_store_options(),
    )
    run_stage(
        app,
        DeliverAlerts(),
        alerts_topic,
        topics={DEADLETTER: names.deadletter},
        table=notified,
        batch=50,
        observe=observe,
        perform=performer(notifiers(settings)),
    )
