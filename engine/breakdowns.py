"""The groups a rating is counted in besides its touchpoint as a whole.

A touchpoint's figures are broken down by a few dimensions so that an
operations team can see *where* a score dropped (one team, one case type,
one answer channel). Every dimension must have a small, bounded number of
values: each value is a row in the daily history for 13 months, so an
unbounded dimension (a free-text field) would grow the compacted topic and
the console without limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from schemas.responses import Rating

#: The whole touchpoint: every rating is in this group.
ALL: Final = ("all", "all")


def groups_of(rating: Rating) -> tuple[tuple[str, str], ...]:
    """(dimension, value) pairs the rating counts in, the whole touchpoint first."""
    return (ALL, ("channel", rating.survey_channel.value))
