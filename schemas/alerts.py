"""Alerts for operations teams (alerts topic, keyed by touchpoint id).

An alert never carries a phone number or an email address: it speaks of
touchpoints, figures and evidence only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Event, Identifier, Timestamp


class AlertKind(StrEnum):
    """What the detector saw."""

    TARGET_BREACH = "target-breach"  # CSAT share below its target with confidence
    KPI_BREACH = "kpi-breach"  # mean score (or NPS) below the touchpoint's kpi_target
    DROP = "drop"  # significantly below the touchpoint's own baseline
    SILENCE = "silence"  # answers, deliveries or contacts stopped or collapsed
    POLARISATION = "polarisation"  # the share of bottom-box answers rose above its baseline


class AlertState(StrEnum):
    """Lifecycle of an alert."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """How urgently someone should look."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Evidence(Event):
    """The statistic behind an alert, so that a person can judge it."""

    method: Annotated[str, Field(max_length=64)] = Field(
        description="e.g. wilson-upper-bound, cusum, beta-binomial"
    )
    statistic: float | None = None
    threshold: float | None = None
    probability: float | None = Field(default=None, ge=0.0, le=1.0)


class ScoreDropAlert(Event):
    """A firing or resolved alert for one touchpoint."""

    type: Literal["ScoreDropAlert"] = "ScoreDropAlert"
    alert_id: Identifier = Field(description="Stable across firing and resolved.")
    touchpoint_id: Identifier
    kind: AlertKind
    state: AlertState
    severity: Severity
    started_at: Timestamp
    resolved_at: Timestamp | None = None
    before: float | None = Field(default=None, description="Baseline level.")
    after: float | None = Field(default=None, description="Recent level.")
    target: float | None = None
    sample_size: int = Field(ge=0)
    evidence: Evidence
    summary: Annotated[str, Field(max_length=500)]
    dashboard_url: Annotated[str, Field(max_length=512)] | None = None


class AlertAcknowledged(Event):
    """An operator acknowledged an alert, with a comment, possibly assigning it to someone.

    It is also the audit trail's record: ``acknowledged_by`` is the name
    shown; ``acknowledged_by_subject`` the lasting identifier of who it was:
    the identity provider's subject of a signed-in person, or ``token:`` and
    the first digits of a program's token digest (absent on acknowledgements
    written before sign-in existed).
    """

    type: Literal["AlertAcknowledged"] = "AlertAcknowledged"
    alert_id: Identifier
    touchpoint_id: Identifier
    acknowledged_by: Annotated[str, Field(min_length=1, max_length=100)]
    acknowledged_by_subject: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    comment: Annotated[str, Field(max_length=1000)] = ""
    assigned_to: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="Who follows the alert up: a name or handle, never an address."
    )
    acknowledged_at: Timestamp


#: Anything on the alerts topic.
AlertEvent = Annotated[ScoreDropAlert | AlertAcknowledged, Field(discriminator="type")]
