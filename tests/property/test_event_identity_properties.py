"""De-duplication by event identity over generated streams of contacts and repeats."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.policy import CitizenHistory, Schedule, Skip, decide
from schemas.config import PolicyConfig, TouchpointConfig
from schemas.contacts import ContactCompleted
from schemas.surveys import SkipReason

ENDED = datetime(2025, 3, 4, 9, tzinfo=UTC)
NOW = ENDED + timedelta(minutes=1)
POLICY = PolicyConfig(episode_window=timedelta(0), frequency_cap=1000, supersede_pending=False)
TOUCHPOINT = TouchpointConfig()
HOLIDAYS = POLICY.holiday_calendar()
SOURCES = ["/crm", "/booking", "urn:desk", "/crm/"]
IDS = st.text("ab1-", min_size=1, max_size=3)


def _contact(source: str, event_id: str, contact_id: str) -> ContactCompleted:
    return ContactCompleted.model_validate(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": "fi.palaute.contact.completed.v1",
            "time": ENDED,
            "data": {
                "contact": {"id": f"c{contact_id}", "ended_at": ENDED},
                "citizen": {"phone": "+358401234567", "age": 40, "consent": {"sms": True}},
                "touchpoint": {"id": "tp", "name": "Piste", "channel": "phone", "service": "s"},
            },
        },
        context={"now": NOW},
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[ContactCompleted], int]:
    """Distinct events (source, id and source-namespaced contact id unique), then repeats.

    A repeat keeps the event's source and id; its contact id is the event's
    own or a new one, as a confused producer might send. (A repeat carrying
    another event's contact id of the same source would make that contact a
    repeat too: one survey per contact of a source, by design.)
    """
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(SOURCES), IDS, IDS),
            min_size=1,
            max_size=25,
            unique_by=(lambda t: (t[0], t[1]), lambda t: (t[0], t[2])),
        )
    )
    events = [_contact(*key) for key in keys]
    repeats = draw(
        st.lists(
            st.tuples(st.integers(0, len(keys) - 1), st.booleans()),
            max_size=25,
        )
    )
    for index, fresh in repeats:
        source, event_id, contact_id = keys[index]
        if fresh:
            contact_id = f"{contact_id}-fresh"
        events.append(_contact(source, event_id, contact_id))
    order = draw(st.permutations(range(len(events))))
    return [events[i] for i in order], len(keys)


@settings(max_examples=150, deadline=None)
@given(streams())
def test_each_distinct_event_gets_one_decision_and_repeats_get_none(
    stream: tuple[list[ContactCompleted], int],
) -> None:
    """Nothing lost and nothing twice: one decision per (source, id), whatever the repeats."""
    events, distinct = stream
    history = CitizenHistory()
    decided: Counter[tuple[str, str]] = Counter()
    survey_ids: list[str] = []
    for event in events:
        decision = decide(
            event, history, TOUCHPOINT, POLICY, NOW, citizen_key="ab" * 16, is_holiday=HOLIDAYS
        )
        history = decision.history
        if isinstance(decision, Skip) and decision.reason is SkipReason.DUPLICATE:
            continue
        decided[event.source, event.id] += 1
        assert isinstance(decision, Schedule), decision
        survey_ids.append(decision.survey_id)
    assert len(decided) == distinct
    assert set(decided.values()) == {1}
    assert len(set(survey_ids)) == len(survey_ids)
