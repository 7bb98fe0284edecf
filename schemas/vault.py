"""ContactDetails: the only place a phone number or address is kept.

The vault topic is compacted and keyed by survey id: the dispatcher reads a
survey's details when it sends, and a tombstone deletes them when the survey
closes or the citizen asks to be forgotten.
"""

from __future__ import annotations

from typing import Literal

from schemas.base import CitizenKey, Event, Identifier, Language, Timestamp
from schemas.contacts import EmailAddress, PhoneNumber


class ContactDetails(Event):
    """How to reach the citizen for one survey."""

    type: Literal["ContactDetails"] = "ContactDetails"
    survey_id: Identifier
    citizen_key: CitizenKey
    phone: PhoneNumber | None = None
    email: EmailAddress | None = None
    language: Language
    stored_at: Timestamp
