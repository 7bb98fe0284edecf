"""HistoryCounts: what a touchpoint counted in one day or one hour, for 13 months.

The rolling windows of the metrics topic end at 28 days; the console
compares a year with the last, so each touchpoint's answers are also kept
per day (13 months) and per hour (the last fortnight) on the compacted
history topic. A record holds *counts* (answers per score, surveys sent),
never a mean or a share: counts add up, so a week, a month or a year is the
sum of its days, and means, CSAT, NPS, CES and their intervals are computed
when the figures are read.

Each touchpoint is counted as a whole and in each group of
:func:`engine.breakdowns.groups_of` (``all/all``, ``channel/sms`` …). Surveys
sent name no group, so ``sent`` is counted in the ``all/all`` group only.

Keyed ``<touchpoint>|<dimension>|<value>|<scale>|<d|h>|<start>`` (see
:func:`history_key`): a day is the policy time zone's calendar day
(``2026-12-07``), an hour is a UTC hour (``2026-12-07T13``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Event, Identifier, Scale

#: A dimension or one of its few values (a team's name, say): never ``|``, the key's separator.
GroupName = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^|\x00-\x1f]+$")]


class Period(StrEnum):
    """How long one record's span is."""

    DAY = "d"
    HOUR = "h"


class HistoryCounts(Event):
    """The counts of one touchpoint, group and scale in one day or hour."""

    type: Literal["HistoryCounts"] = "HistoryCounts"
    touchpoint_id: Identifier
    dimension: GroupName = Field(description="The breakdown dimension; ``all`` for the whole.")
    value: GroupName = Field(description="The dimension's value; ``all`` for the whole.")
    scale: Scale
    period: Period
    start: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}(T\d{2})?$")] = Field(
        description="The local calendar day (``YYYY-MM-DD``) or the UTC hour (``YYYY-MM-DDTHH``)."
    )
    scores: dict[str, int] = Field(
        default_factory=dict, description="Answers per raw score (latest revision of each)."
    )
    sent: int = Field(default=0, ge=0, description="Surveys sent (``all/all`` only).")

    @property
    def key(self) -> str:
        """Give the record's key on the history topic."""
        return history_key(
            self.touchpoint_id, self.dimension, self.value, self.scale, self.period, self.start
        )


def history_key(  # noqa: PLR0917 - the key's six parts, each needed
    touchpoint_id: str, dimension: str, value: str, scale: Scale, period: Period, start: str
) -> str:
    """Key one bucket on the history topic; identifiers and group names never hold ``|``."""
    return f"{touchpoint_id}|{dimension}|{value}|{scale.value}|{period.value}|{start}"
