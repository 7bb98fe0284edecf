"""Intake wiring: the two intake stages on the plain-aiokafka runtime, and the opt-out forwarder.

The rules are in :mod:`streams.stages.intake` (pure handlers); this module
gives them their topics and state. Both stages run on
:mod:`streams.runtime.kafka_plain`, each in a consumer group of its own
(``<app id>-intake``, ``<app id>-intake-decide``): faust's per-record
plumbing cost about four times the stages' own work (docs/performance.md).

1. ``intake`` (:class:`~streams.stages.intake.AdmitContacts`) reads the
   contacts topic and writes valid contacts, re-keyed by citizen, to the
   internal ``<app>-contacts-by-citizen`` topic; a record that fails the
   gate is dead-lettered with the gate's reason.
2. ``intake-decide`` (:class:`~streams.stages.intake.DecideContacts`) reads
   that topic, whose partitions are those of the ``citizen-history`` state
   (the changelog topic faust's table of that name used), and publishes
   each decision before the history is stored, in the runtime's checkpoint
   order (:mod:`streams.runtime.checkpoint`): a batch of up to
   ``INTAKE_BATCH`` contacts is decided, produced, acknowledged by one
   wait, and only then stored.

The intake's part of the responses topic's one reader (``responses-reader``,
see :mod:`streams.shared`), :class:`~streams.stages.intake.ForwardOptOuts`,
forwards OptOut events to the same internal topic,
marked with the ``palaute-record: opt-out`` header; ``intake-decide``
records them in the citizen's history, so the citizen's next contact is
skipped as opted-out.

Idempotence: the history remembers decided events, so a replayed contact is
a duplicate that publishes nothing. A crash before the history is stored
decides the contact again with the same survey id, which downstream stages
already de-duplicate by survey id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from connectors import telemetry
from engine.policy import Schedule
from schemas.surveys import SkipReason
from streams import shared
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.kafka_plain import run_stage
from streams.stages.intake import (
    BY_CITIZEN,
    SURVEYS,
    VAULT,
    AdmitContacts,
    DecideContacts,
    ForwardOptOuts,
    UnknownTouchpoint,
    publications,
)

if TYPE_CHECKING:
    import faust

    from schemas.config import Settings
    from schemas.topics import TopicNames

__all__ = ["DECIDE_AGENT", "HISTORY_TABLE", "INTAKE_AGENT", "publications", "register"]

log = logging.getLogger(__name__)

INTAKE_AGENT = AdmitContacts.name
DECIDE_AGENT = DecideContacts.name
HISTORY_TABLE = "citizen-history"
#: Contacts decided together: one acknowledgement wait per batch instead of one per contact.
INTAKE_BATCH = 2000


class _Observer:
    """Count each decision and report each touchpoint missing from the catalogue once."""

    def __init__(self) -> None:
        self._unknown: set[str] = set()

    def __call__(self, observation: Any) -> None:
        if isinstance(observation, UnknownTouchpoint):
            self._report_unknown(observation.touchpoint_id)
        elif isinstance(observation, Schedule):
            telemetry.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.OK)
            telemetry.record_survey(telemetry.SurveyOutcome.SCHEDULED, observation.channel)
            for _ in observation.superseded:
                telemetry.record_survey(
                    telemetry.SurveyOutcome.SKIPPED, None, SkipReason.SUPERSEDED
                )
        elif observation.reason is SkipReason.DUPLICATE:
            telemetry.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.DUPLICATE)
        else:
            telemetry.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.OK)
            telemetry.record_survey(telemetry.SurveyOutcome.SKIPPED, None, observation.reason)

    def _report_unknown(self, touchpoint_id: str) -> None:
        if touchpoint_id in self._unknown:
            return
        self._unknown.add(touchpoint_id)
        # Identifiers may in principle hold a national phone number; name only safe ones.
        shown = touchpoint_id if telemetry.is_safe_label_value(touchpoint_id) else "(unsafe id)"
        log.warning("touchpoint %s is not in the catalogue; surveyed with [defaults]", shown)


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:
    """Add the intake stages, their citizen-history state and the opt-out forwarder to the app."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    by_citizen = app.topic(
        f"{app.conf.id}-contacts-by-citizen",
        internal=True,
        partitions=settings.streams.partitions,
        **raw,
    )
    topics = {
        BY_CITIZEN: by_citizen.get_topic_name(),
        SURVEYS: names.surveys,
        VAULT: names.vault,
        DEADLETTER: names.deadletter,
    }
    secret = settings.secrets.pseudonymisation_key.get_secret_value().encode()
    run_stage(
        app, settings, AdmitContacts(secret), names.contacts, topics=topics, batch=INTAKE_BATCH
    )
    run_stage(
        app,
        settings,
        DecideContacts(settings),
        by_citizen.get_topic_name(),
        topics=topics,
        table=HISTORY_TABLE,
        internal_source=True,
        batch=INTAKE_BATCH,
        observe=_Observer(),
    )

    shared.forward(
        app,
        "responses",
        names.responses,
        ForwardOptOuts(),
        topics={BY_CITIZEN: topics[BY_CITIZEN]},
        deadletter=names.deadletter,
    )
