"""An event is CloudEvents ``source`` + ``id``; a contact id is unique only inside its source."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.policy import (
    CitizenHistory,
    ContactIdentity,
    Decision,
    Schedule,
    Skip,
    decide,
    survey_id_for,
)
from schemas.config import PolicyConfig, TouchpointConfig
from schemas.contacts import ContactCompleted
from schemas.surveys import SkipReason

HELSINKI = ZoneInfo("Europe/Helsinki")
ENDED = datetime(2025, 11, 12, 10, 0, tzinfo=HELSINKI)
NOW = ENDED + timedelta(minutes=2)
# Neither rule that could hide a second survey of one citizen applies here.
POLICY = PolicyConfig(episode_window=timedelta(0), frequency_cap=10, supersede_pending=False)
TOUCHPOINT = TouchpointConfig()
HOLIDAYS = POLICY.holiday_calendar()


def contact(source: str, event_id: str, contact_id: str, phone: str) -> ContactCompleted:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "fi.palaute.contact.completed.v1",
        "time": ENDED,
        "data": {
            "contact": {"id": contact_id, "ended_at": ENDED},
            "citizen": {"phone": phone, "birth_year": 1980, "consent": {"sms": True}},
            "touchpoint": {
                "id": "tp-a",
                "name": "Palvelupiste",
                "channel": "phone",
                "service": "Asumisen tuet",
            },
        },
    }
    return ContactCompleted.model_validate(body)


def run(event: ContactCompleted, history: CitizenHistory, key: str = "ab" * 16) -> Decision:
    return decide(event, history, TOUCHPOINT, POLICY, NOW, citizen_key=key, is_holiday=HOLIDAYS)


def test_one_contact_id_from_two_sources_is_two_surveys_for_two_citizens() -> None:
    """Two systems' contact 1042 are two people: one survey id would merge their answers."""
    crm = run(contact("/crm", "e-1", "1042", "+358401234567"), CitizenHistory(), "aa" * 16)
    booking = run(contact("/booking", "e-1", "1042", "+358409876543"), CitizenHistory(), "bb" * 16)
    assert isinstance(crm, Schedule)
    assert isinstance(booking, Schedule)
    assert crm.survey_id != booking.survey_id
    assert crm.survey_id == survey_id_for("/crm", "1042")
    assert booking.survey_id == survey_id_for("/booking", "1042")


def test_one_contact_id_from_two_sources_for_one_citizen_is_decided_twice() -> None:
    """The second system's contact is not a repeat of the first's, even in one history."""
    first = run(contact("/crm", "e-1", "1042", "+358401234567"), CitizenHistory())
    second = run(contact("/booking", "e-9", "1042", "+358401234567"), first.history)
    assert isinstance(first, Schedule)
    assert isinstance(second, Schedule)
    assert second.survey_id != first.survey_id
    assert [record.source for record in second.history.surveys] == ["/crm", "/booking"]


def test_one_event_repeated_with_another_contact_id_is_a_duplicate() -> None:
    """CloudEvents: the same source and id are the same event, whatever its data says."""
    first = run(contact("/crm", "e-1", "c-1", "+358401234567"), CitizenHistory())
    again = run(contact("/crm", "e-1", "c-2", "+358401234567"), first.history)
    assert isinstance(first, Schedule)
    assert isinstance(again, Skip)
    assert again.reason is SkipReason.DUPLICATE
    assert again.skipped_event(NOW) is None
    assert again.history == first.history


def test_one_event_id_from_two_sources_is_two_events() -> None:
    """An id is unique only inside its source: another system's e-1 is another event."""
    first = run(contact("/crm", "e-1", "c-1", "+358401234567"), CitizenHistory())
    other = run(contact("/booking", "e-1", "c-2", "+358401234567"), first.history)
    assert isinstance(other, Schedule)


def test_a_contact_resent_under_a_new_event_id_is_still_one_decision() -> None:
    """The survey id derives from source and contact id: a second decision would reuse it."""
    first = run(contact("/crm", "e-1", "c-1", "+358401234567"), CitizenHistory())
    resent = run(contact("/crm", "e-2", "c-1", "+358401234567"), first.history)
    assert isinstance(resent, Skip)
    assert resent.reason is SkipReason.DUPLICATE


def test_a_scheduled_survey_of_the_same_source_and_contact_is_recognised() -> None:
    """A history whose remembered ids aged out still knows the contacts of its surveys."""
    first = run(contact("/crm", "e-1", "c-1", "+358401234567"), CitizenHistory())
    forgetful = CitizenHistory(surveys=first.history.surveys)
    assert forgetful.has_decided(ContactIdentity("/crm", "e-7", "c-1"))
    assert not forgetful.has_decided(ContactIdentity("/booking", "e-7", "c-1"))


def test_every_decision_event_names_the_source_of_its_contact_id() -> None:
    """Readers of the surveys topic must tell two systems' contact 1042 apart too."""
    scheduled = run(contact("/crm", "e-1", "1042", "+358401234567"), CitizenHistory())
    assert isinstance(scheduled, Schedule)
    assert scheduled.scheduled_event(NOW).contact_source == "/crm"
    skipped = run(
        contact("/booking", "e-2", "1042", "+358401234567"),
        CitizenHistory(opted_out=True),
    )
    assert isinstance(skipped, Skip)
    event = skipped.skipped_event(NOW)
    assert event is not None
    assert event.contact_source == "/booking"
    newer = decide(
        contact("/booking", "e-3", "2001", "+358401234567"),
        scheduled.history,
        TOUCHPOINT,
        PolicyConfig(episode_window=timedelta(0), frequency_cap=10),
        NOW,
        citizen_key="ab" * 16,
        is_holiday=HOLIDAYS,
    )
    assert isinstance(newer, Schedule)
    assert [e.contact_source for e in newer.superseded_events(NOW)] == ["/crm"]


def test_the_event_of_a_repeated_contact_is_remembered_so_its_id_stays_a_repeat() -> None:
    """Contact 7 sent again as event e-2, then e-2 sent again with contact 8: still one event."""
    phone = "+358401234567"
    first = run(contact("/crm", "e-1", "7", phone), CitizenHistory())
    assert isinstance(first, Schedule)
    again = run(contact("/crm", "e-2", "7", phone), first.history)
    assert isinstance(again, Skip)
    assert again.reason is SkipReason.DUPLICATE
    repeat_of_e2 = run(contact("/crm", "e-2", "8", phone), again.history)
    assert isinstance(repeat_of_e2, Skip)
    assert repeat_of_e2.reason is SkipReason.DUPLICATE
