"""The citizen history survives its trip through a changelog-backed table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.policy import CitizenHistory, ContactIdentity, SurveyRecord

ENDED = datetime(2025, 3, 30, 2, 30, tzinfo=ZoneInfo("Europe/Helsinki"))


def _history() -> CitizenHistory:
    return CitizenHistory(
        surveys=(
            SurveyRecord(
                survey_id="sv-1",
                contact_id="c-1",
                touchpoint_id="tp-a",
                service="health",
                contact_ended_at=ENDED,
                send_at=ENDED + timedelta(minutes=10),
                source="/crm/a",
            ),
            SurveyRecord(
                survey_id="sv-2",
                contact_id="c-2",
                touchpoint_id="tp-b",
                service="tax",
                contact_ended_at=datetime(2025, 4, 1, 9, 0, tzinfo=UTC),
                send_at=datetime(2025, 4, 1, 12, 0, tzinfo=UTC),
                sent=True,
            ),
        ),
        opted_out=True,
        event_prints=tuple(ContactIdentity("/crm/a", f"e-{n}", "c").event_print for n in range(3)),
        contact_prints=tuple(
            ContactIdentity("/crm/a", "e", f"c-{n}").contact_print for n in range(3)
        ),
        legacy_contact_ids=("c-old",),
    )


@pytest.mark.parametrize("history", [CitizenHistory(), _history()], ids=["empty", "full"])
def test_history_round_trips_through_json(history: CitizenHistory) -> None:
    """A worker restarted from the changelog must decide exactly as before the restart."""
    restored = CitizenHistory.from_json(history.to_json())
    assert restored == history
    assert [r.send_at.utcoffset() for r in restored.surveys] == [
        r.send_at.utcoffset() for r in history.surveys
    ]


def test_history_reads_from_bytes() -> None:
    """Table values arrive as bytes from the changelog."""
    history = _history()
    assert CitizenHistory.from_json(history.to_json().encode()) == history


def test_an_unknown_format_is_refused() -> None:
    """Reading a future format as this one would silently forget caps and opt-outs."""
    with pytest.raises(ValueError, match="known format"):
        CitizenHistory.from_json('{"v": 99}')


#: A history as format 1 wrote it: bare contact ids, surveys without their source.
FORMAT_1 = (
    '{"v":1,"opted_out":false,"decided_contacts":["c-0","c-1"],"surveys":[{"survey_id":'
    '"sv-0123456789abcdef0123456789abcdef","contact_id":"c-1","touchpoint_id":"tp-a",'
    '"service":"health","contact_ended_at":"2025-03-30T02:30:00+03:00",'
    '"send_at":"2025-03-30T02:40:00+03:00","sent":true}]}'
)


def test_a_history_of_the_old_format_is_read_and_still_recognises_its_contacts() -> None:
    """Histories stored before the upgrade must keep de-duplicating what they decided."""
    history = CitizenHistory.from_json(FORMAT_1)
    assert history.legacy_contact_ids == ("c-0", "c-1")
    assert history.event_prints == history.contact_prints == ()
    assert history.surveys[0].source is None
    # The old form knew no source, so the contact id matches from any source.
    assert history.has_decided(ContactIdentity("/crm/new", "another-event", "c-0"))
    assert history.has_decided(ContactIdentity("/crm/new", "another-event", "c-1"))
    assert not history.has_decided(ContactIdentity("/crm/new", "another-event", "c-2"))
    # Written back, it is in the new format and reads back the same.
    assert '"v":2' in history.to_json()
    assert CitizenHistory.from_json(history.to_json()) == history
