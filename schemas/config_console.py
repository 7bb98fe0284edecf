"""Configuration of what the operations console derives: breakdowns and the weekly digest.

Kept apart from :mod:`schemas.config` because neither section affects how
surveys are sent; :class:`schemas.config.Settings` holds both as
``[breakdowns]`` and ``[digest]``.

**Breakdowns** name the values a touchpoint's figures are broken down by.
Each value is a row of the 13-month daily history, so a dimension fed by
free text (a team or a case type, as the front office spells it) must have a
bounded, known set of values: the lists here. A rating's value is matched
to a list entry ignoring case, accents of width and repeated spaces, and is
counted under the entry's spelling; a value not listed counts as ``other``.
A dimension with no list is not broken down at all, so nothing grows unless
an operator asks for it.

**The digest** is a weekly email per team: a team here is a set of
recipients who look after some touchpoints and read one language.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.base import Identifier, ShortText
from schemas.contacts import EmailAddress

#: Named values per dimension and touchpoint; with ``other`` a dimension has at most one more.
MAX_NAMED_VALUES = 30
#: Queue-wait band limits; with the band above the last there is at most one more band.
MAX_WAIT_LIMITS = 8


def _no_separators(value: str) -> str:
    # Group values travel in the history's keys, which use these as separators.
    if any(char in value for char in ":|"):
        raise ValueError("a breakdown value may not contain ':' or '|'")
    if value.strip().casefold() == "other":
        raise ValueError("'other' is where unlisted values are counted; name it otherwise")
    return value.strip()


#: A named value of a breakdown dimension.
BreakdownValue = Annotated[ShortText, Field(max_length=80), AfterValidator(_no_separators)]


def _distinct(values: list[str]) -> list[str]:
    seen = {" ".join(value.casefold().split()) for value in values}
    if len(seen) != len(values):
        raise ValueError("the list names the same value twice (ignoring case and spaces)")
    return values


BreakdownValues = Annotated[
    list[BreakdownValue], Field(max_length=MAX_NAMED_VALUES), AfterValidator(_distinct)
]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BreakdownVocabulary(_Section):
    """One touchpoint's own lists, replacing ``[breakdowns]``'s for that touchpoint."""

    teams: BreakdownValues | None = Field(
        default=None, description="Teams counted by name at this touchpoint; others are 'other'."
    )
    case_types: BreakdownValues | None = Field(
        default=None,
        description="Case types counted by name at this touchpoint; others are 'other'.",
    )


class BreakdownsConfig(_Section):
    """Which values a touchpoint's figures are broken down by (see docs/dashboard.md)."""

    teams: BreakdownValues = Field(
        default_factory=list,
        description="Teams counted by name (at most 30); any other team counts as 'other'. "
        "Empty: ratings are not broken down by team.",
    )
    case_types: BreakdownValues = Field(
        default_factory=list,
        description="Case types counted by name (at most 30); any other counts as 'other'. "
        "Empty: ratings are not broken down by case type.",
    )
    queue_wait_minutes: Annotated[list[int], Field(min_length=1, max_length=MAX_WAIT_LIMITS)] = (
        Field(
            default_factory=lambda: [1, 5, 15, 30],
            description="Upper limits (minutes) of the queue-wait bands; one more band holds "
            "longer waits.",
        )
    )
    touchpoints: dict[Identifier, BreakdownVocabulary] = Field(
        default_factory=dict, description="Per-touchpoint lists that replace the ones above."
    )

    @model_validator(mode="after")
    def _increasing(self) -> Self:
        limits = self.queue_wait_minutes
        if limits[0] <= 0 or any(b <= a for a, b in itertools.pairwise(limits)):
            raise ValueError("queue_wait_minutes must be positive and increasing")
        return self

    def teams_of(self, touchpoint_id: str) -> list[str]:
        """Give the teams counted by name at a touchpoint."""
        own = self.touchpoints.get(touchpoint_id)
        return own.teams if own is not None and own.teams is not None else self.teams

    def case_types_of(self, touchpoint_id: str) -> list[str]:
        """Give the case types counted by name at a touchpoint."""
        own = self.touchpoints.get(touchpoint_id)
        return own.case_types if own is not None and own.case_types is not None else self.case_types


class DigestTeam(_Section):
    """One team's weekly digest: who reads it, in which language, about which touchpoints."""

    recipients: Annotated[list[EmailAddress], Field(min_length=1, max_length=50)] = Field(
        description="The team's addresses; one message goes to all of them."
    )
    language: Literal["fi", "sv", "en"] = Field(default="fi", description="The message's language.")
    touchpoints: Annotated[list[Identifier], Field(min_length=1, max_length=500)] = Field(
        description="The touchpoints the team looks after, in the order the message lists them."
    )
    name: ShortText | None = Field(default=None, description="How the email greets the team.")


class DigestConfig(_Section):
    """The weekly digest email per team (``palaute digest send``, from a weekly timer)."""

    teams: dict[Identifier, DigestTeam] = Field(default_factory=dict)
