"""Alert delivery: every alert on the alerts topic reaches operations once per state.

One agent, ``alerting``, reads the alerts topic. Each ScoreDropAlert updates
the Prometheus gauge of firing alerts and is handed to every configured
notifier (email to ``[alerts] ops_email``, the signed webhook at ``[alerts]
webhook_url``). The table ``alerts-notified`` remembers each ``alert_id:state``
delivered, so a replayed record (after a restart or rebalance) notifies no
one twice; an acknowledgement is logged. A notifier that keeps failing is
logged and counted and the agent moves on: a dead receiver must not hold up
every later alert.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust
from pydantic import TypeAdapter, ValidationError

from connectors import telemetry
from connectors.notifiers import AlertNotifier, EmailNotifier, WebhookNotifier, notify_all
from schemas.alerts import AlertAcknowledged, AlertEvent, ScoreDropAlert
from streams.containment import Containment
from streams.producer import DirectProducer
from streams.stores import table_store_options

if TYPE_CHECKING:
    from schemas.config import Settings
    from schemas.topics import TopicNames

log = logging.getLogger(__name__)

ALERTING_AGENT = "alerting"
NOTIFIED_TABLE = "alerts-notified"
_ALERT_EVENT: TypeAdapter[ScoreDropAlert | AlertAcknowledged] = TypeAdapter(AlertEvent)


def notifiers(settings: Settings) -> list[AlertNotifier]:
    """Build the notifiers the configuration asks for (possibly none)."""
    found: list[AlertNotifier] = []
    alerts = settings.alerts
    if alerts.ops_email is not None:
        if settings.smtp is None:
            log.warning("[alerts] ops_email is set but [smtp] is not: alerts are not mailed")
        else:
            found.append(EmailNotifier(settings.smtp, alerts.ops_email))
    if alerts.webhook_url is not None and alerts.webhook_secret is not None:
        found.append(
            WebhookNotifier(
                str(alerts.webhook_url),
                alerts.webhook_secret.get_secret_value().encode(),
                timeout=alerts.webhook_timeout.total_seconds(),
                attempts=alerts.webhook_attempts,
            )
        )
    return found


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:
    """Add the alerting agent and its de-duplication table."""
    alerts_topic = app.topic(names.alerts, key_serializer="raw", value_serializer="raw")
    notified = app.Table(
        NOTIFIED_TABLE,
        default=None,
        partitions=settings.streams.partitions,
        schema=faust.Schema(key_type=str, value_type=str),
        options=table_store_options(),
    )
    targets = notifiers(settings)
    guard = Containment(DirectProducer(app), names.deadletter, telemetry.Stage.NOTIFIER)

    async def deliver_one(message: Any) -> None:
        try:
            event = _ALERT_EVENT.validate_json(message.value or b"")
        except ValidationError:
            await guard.reject(message, "not_an_alert", "not an alert event of a known type")
            return
        if isinstance(event, AlertAcknowledged):
            log.info("alert %s acknowledged", event.alert_id)
        else:
            await _deliver(event, notified, targets)

    @app.agent(alerts_topic, name=ALERTING_AGENT)
    async def deliver(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guard.run(event.message, deliver_one, event.message)
            telemetry.agent_progress(ALERTING_AGENT, datetime.now(UTC))


async def _deliver(alert: ScoreDropAlert, notified: Any, targets: list[AlertNotifier]) -> None:
    telemetry.observe_alert(alert)
    key = f"{alert.alert_id}:{alert.state.value}"
    if notified.get(key) is not None:
        telemetry.count_event(telemetry.Stage.NOTIFIER, telemetry.Outcome.DUPLICATE)
        return
    failures = await notify_all(targets, alert)
    notified[key] = ",".join(sorted(failures)) or "delivered"
    telemetry.count_event(telemetry.Stage.NOTIFIER, telemetry.Outcome.OK)
