"""TouchpointMetrics: rolling scores per touchpoint (and roll-ups), compacted.

Keyed by ``<dimension>:<key>:<window>`` so that the compacted topic keeps the
latest figures of each window of each touchpoint, channel and service.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Event, Identifier, Scale, Timestamp


class Dimension(StrEnum):
    """What the figures are aggregated over."""

    TOUCHPOINT = "touchpoint"
    CHANNEL = "channel"
    SERVICE = "service"


class TouchpointMetrics(Event):
    """Figures of one window; ratings are counted once per survey (latest revision)."""

    type: Literal["TouchpointMetrics"] = "TouchpointMetrics"
    dimension: Dimension = Dimension.TOUCHPOINT
    key: Identifier = Field(description="Touchpoint id, channel name or service id.")
    window: Annotated[str, Field(pattern=r"^[0-9]+[mhd]$")] = Field(
        description="Rolling window length, e.g. 1h, 24h, 7d, 28d."
    )
    as_of: Timestamp
    scale: Scale
    count: int = Field(ge=0)
    mean: float | None = None
    distribution: dict[str, int] = Field(
        default_factory=dict, description="Count of each raw score, keyed by the score."
    )
    csat_share: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Share of answers in the top two boxes."
    )
    nps: float | None = Field(default=None, ge=-100.0, le=100.0)
    surveys_sent: int = Field(default=0, ge=0)
    response_rate: float | None = Field(default=None, ge=0.0)
    median_answer_seconds: float | None = Field(default=None, ge=0.0)
