"""The records of the catalogue topic (``palaute.catalogue.v1``): one per change.

A change names who made it, when, what it did, and the version it was
based on; its own version is its offset on the topic's single partition
plus one, so every process that reads the topic gives every change the same
version without asking anyone. Each record has a key of its own
(``change:<id>``): the topic is compacted, so no retention time ever
deletes the catalogue or its history, and nothing is ever superseded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from schemas.base import Event, Identifier, Timestamp


class CatalogueAction(StrEnum):
    """What a change did."""

    SEED = "seed"  # the configuration file's catalogue, written to an empty topic
    IMPORT = "import"  # a whole catalogue file (palaute catalogue import)
    CREATE = "create"
    EDIT = "edit"
    RETIRE = "retire"
    ROLLBACK = "rollback"


#: Who made a change: a person's name or e-mail address, or an operator token's label.
Author = Annotated[str, Field(min_length=1, max_length=200)]


class TouchpointEntry(Event):
    """A touchpoint as written: its own fields (the rest from ``[defaults]``) and CSAT target."""

    entry: dict[str, Any] = Field(
        description="The fields of [touchpoints.<id>] the author set, as JSON; durations "
        'such as "15m", times as "12:00:00".'
    )
    csat_target: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class CatalogueChanged(Event):
    """One change of the catalogue.

    ``touchpoints`` holds the new state of each touchpoint it touches (None:
    retired). ``base_version`` is what the author saw: the touchpoint's
    version for a change of one touchpoint, the catalogue's for a seed or an
    import. A change whose base is no longer current was made without
    seeing a later one; every process refuses it alike.
    """

    type: Literal["CatalogueChanged"] = "CatalogueChanged"
    change_id: Identifier
    at: Timestamp
    by: Author
    by_subject: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None,
        description="The signed-in person's subject at the identity provider, or token: and "
        "the first digits of a program's token digest; none for the seed and the command line.",
    )
    action: CatalogueAction
    base_version: Annotated[int, Field(ge=0)]
    defaults: dict[str, Any] | None = Field(
        default=None, description="[defaults] as written; None leaves it as it is."
    )
    touchpoints: dict[Identifier, TouchpointEntry | None] = Field(default_factory=dict)
    replace_all: bool = Field(
        default=False, description="Seed and import: touchpoints not named are retired."
    )
    comment: Annotated[str, Field(max_length=500)] = ""


def change_key(change: CatalogueChanged) -> bytes:
    """Key a change by its own id: compaction then keeps every change."""
    return f"change:{change.change_id}".encode()
