"""Alert delivery as a pure stage: decide which alert states to notify, once each.

:class:`DeliverAlerts` reads the alerts topic. A ScoreDropAlert whose
``alert_id:state`` the ``alerts-notified`` state does not hold yet asks
for a :class:`Notify` effect and for the key to be stored; one it holds
already is a duplicate (a replay after a restart or rebalance) and asks for
nothing. An AlertAcknowledged is only observed; anything else is rejected.

The notification itself is I/O, so it is an effect: the runtime carries it
out after the batch's records are acknowledged and before the state that
remembers it is written (:mod:`streams.runtime.checkpoint`). Each alert
state is therefore notified at least once, and twice only when the worker
dies between the notification and the state write; a replayed record
finds the key and notifies no one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import TypeAdapter, ValidationError

from schemas.alerts import AlertAcknowledged, AlertEvent, ScoreDropAlert
from streams.runtime.model import Output, Rejection

if TYPE_CHECKING:
    from datetime import datetime

    from streams.runtime.model import Record, StateView

#: The stage label of its dead letters and counters.
LABEL = "notifier"
NOT_AN_ALERT = "not_an_alert"
#: What the state holds for an alert state that was handed to the notifiers.
NOTIFIED = "notified"
_ALERT_EVENT: TypeAdapter[ScoreDropAlert | AlertAcknowledged] = TypeAdapter(AlertEvent)


@dataclass(frozen=True, slots=True)
class Notify:
    """An effect: hand this alert to every configured notifier."""

    alert: ScoreDropAlert


@dataclass(frozen=True, slots=True)
class Seen:
    """An observation: an alert state came through, and whether it was notified before."""

    alert: ScoreDropAlert
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An observation: someone acknowledged an alert."""

    alert_id: str


def notified_key(alert: ScoreDropAlert) -> str:
    """Give the de-duplication key of one state of one alert."""
    return f"{alert.alert_id}:{alert.state.value}"


def read_alert(value: bytes) -> ScoreDropAlert | AlertAcknowledged | None:
    """Read a record of the alerts topic; None when it is no alert event of a known type."""
    try:
        return _ALERT_EVENT.validate_json(value)
    except ValidationError:
        return None


class DeliverAlerts:
    """The alerting stage: each alert state notified once, a replay notifying no one."""

    name = "alerting"
    label = LABEL

    def handle(self, state: StateView, record: Record, now: datetime) -> Output:
        """Ask for a notification of an alert state not yet notified; nothing for a repeat."""
        del now
        event = read_alert(record.value or b"")
        if event is None:
            return Output(rejection=Rejection(NOT_AN_ALERT, "not an alert event of a known type"))
        if isinstance(event, AlertAcknowledged):
            return Output(observations=(Acknowledged(event.alert_id),))
        key = notified_key(event)
        if state.get(key) is not None:
            return Output(observations=(Seen(event, duplicate=True),))
        return Output(
            state={key: NOTIFIED},
            observations=(Seen(event, duplicate=False),),
            effects=(Notify(event),),
        )
