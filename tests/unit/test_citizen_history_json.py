"""The citizen history survives its trip through a changelog-backed table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.policy import CitizenHistory, SurveyRecord

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
        decided_contacts=("c-0", "c-1", "c-2"),
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
