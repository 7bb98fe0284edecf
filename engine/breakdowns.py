"""The groups a rating is counted in besides its touchpoint as a whole.

A touchpoint's figures are broken down by a few dimensions so that an
operations team can see *where* a score dropped (one team, one case type,
one answer channel, one length of queue). Every dimension must have a small,
bounded number of values: each value is a row in the daily history for 13
months, so an unbounded dimension (a free-text field) would grow the
compacted topic and the console without limit. The bounds, per touchpoint:

======================  ======================================================
dimension               values
======================  ======================================================
``all``                 ``all``
``channel``             ``sms``, ``email``
``team``                the names in ``[breakdowns] teams`` (at most 30), ``other``
``case_type``           the names in ``[breakdowns] case_types`` (at most 30), ``other``
``queue_wait``          one band per limit of ``queue_wait_minutes`` (at most 8), and one above
======================  ======================================================

A rating whose contact named no team (case type, queue wait) is not counted
in that dimension, and a dimension with no list configured is not broken
down: nothing grows unless an operator asks for it.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from schemas.base import SurveyChannel
from schemas.config_console import BreakdownsConfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from schemas.responses import Rating

#: The whole touchpoint: every rating is in this group.
ALL: Final = ("all", "all")
#: Where a value outside the configured list is counted.
OTHER: Final = "other"
#: The dimensions, in the order the console shows them.
DIMENSIONS: Final = ("channel", "team", "case_type", "queue_wait")
#: With nothing configured: no team or case type breakdown, the default wait bands.
NOTHING_LISTED: Final = BreakdownsConfig()


def normalised(value: str) -> str:
    """Give the form two spellings of one value share: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


@lru_cache(maxsize=1024)
def _lookup(names: tuple[str, ...]) -> dict[str, str]:
    return {normalised(name): name for name in names}


def named(value: str, names: Sequence[str]) -> str:
    """Give the listed name a value matches, or :data:`OTHER`."""
    return _lookup(tuple(names)).get(normalised(value), OTHER)


def wait_band(seconds: int, limits_minutes: Sequence[int]) -> str:
    """Give a wait's band: ``<from>-<to>`` minutes, or ``<from>+`` above the last limit."""
    low = 0
    for limit in limits_minutes:
        if seconds < limit * 60:
            return f"{low}-{limit}"
        low = limit
    return f"{low}+"


def wait_bands(limits_minutes: Sequence[int]) -> tuple[str, ...]:
    """Give every band of the limits, shortest wait first."""
    lows = (0, *limits_minutes)
    return (*(f"{a}-{b}" for a, b in zip(lows, limits_minutes, strict=False)), f"{lows[-1]}+")


def groups_of(
    rating: Rating, breakdowns: BreakdownsConfig = NOTHING_LISTED
) -> tuple[tuple[str, str], ...]:
    """(dimension, value) pairs the rating counts in, the whole touchpoint first."""
    groups = [ALL, ("channel", rating.survey_channel.value)]
    if rating.team is not None and (teams := breakdowns.teams_of(rating.touchpoint_id)):
        groups.append(("team", named(rating.team, teams)))
    if rating.case_type is not None and (kinds := breakdowns.case_types_of(rating.touchpoint_id)):
        groups.append(("case_type", named(rating.case_type, kinds)))
    if rating.queue_wait_seconds is not None:
        groups.append(
            ("queue_wait", wait_band(rating.queue_wait_seconds, breakdowns.queue_wait_minutes))
        )
    return tuple(groups)


def possible_groups(
    touchpoint_id: str, breakdowns: BreakdownsConfig = NOTHING_LISTED
) -> tuple[tuple[str, str], ...]:
    """Give every group a rating of the touchpoint can count in: the bound, made explicit."""
    teams = breakdowns.teams_of(touchpoint_id)
    kinds = breakdowns.case_types_of(touchpoint_id)
    return (
        ALL,
        *(("channel", channel.value) for channel in SurveyChannel),
        *(("team", name) for name in (*teams, OTHER) if teams),
        *(("case_type", name) for name in (*kinds, OTHER) if kinds),
        *(("queue_wait", band) for band in wait_bands(breakdowns.queue_wait_minutes)),
    )
