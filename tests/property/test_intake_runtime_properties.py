"""The intake on the in-memory runtime, with a crash at any step: one decision per contact.

Hypothesis writes contacts (repeats of one event, one contact id from two
sources, one event id with two contact ids, broken bytes, awkward headers)
and picks crashes at any step of either intake stage's checkpoint. After the
runtime runs dry, every accepted event has exactly one decision (repeats of
a decision after a crash are the same record), and every record refused by
the gate is a dead letter: nothing is lost, nothing decided two ways.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from schemas.config import load_settings
from schemas.deadletter import DeadLetter
from schemas.samples import contact_completed
from schemas.surveys import SkipReason, SurveyLifecycleEvent, SurveyScheduled, SurveySkipped
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.memory import STEPS, MemoryBroker, MemoryRuntime
from streams.stages.intake import BY_CITIZEN, SURVEYS, VAULT, AdmitContacts, DecideContacts

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "examples" / "palaute.toml")
SECRET = SETTINGS.secrets.pseudonymisation_key.get_secret_value().encode()
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
TOPICS = {BY_CITIZEN: "by-citizen", SURVEYS: "surveys", VAULT: "vault", DEADLETTER: "dlq"}
EVENTS: TypeAdapter[Any] = TypeAdapter(SurveyLifecycleEvent)
BASE = contact_completed(NOW - timedelta(minutes=30)).model_dump(mode="json", exclude_none=True)


def _contact(source: int, event: int, contact: int, citizen: int) -> bytes:
    value = orjson.loads(orjson.dumps(BASE))
    value["source"] = f"/crm/system-{source}"
    value["id"] = f"event-{event}"
    value["data"]["contact"]["id"] = f"contact-{contact}"
    value["data"]["citizen"]["id"] = f"citizen-{citizen}"
    value["data"]["citizen"].pop("phone", None)
    value["data"]["citizen"]["email"] = f"asiakas{citizen}@example.fi"
    return orjson.dumps(value)


contacts = st.tuples(
    st.integers(0, 1), st.integers(0, 5), st.integers(0, 5), st.integers(0, 3)
).map(lambda t: ("contact", t))
broken = st.binary(max_size=40).map(lambda b: ("broken", b))
headers = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["traceparent", "x", "ce_id", "CE_X"]), st.binary(max_size=8)),
        st.tuples(
            st.just("content-type"),
            st.sampled_from([b"application/cloudevents+json", b"application/json; charset=utf-8"]),
        ),
    ),
    max_size=3,
).filter(lambda items: sum(name == "content-type" for name, _value in items) <= 1)
crashes = st.sets(
    st.tuples(
        st.sampled_from(["intake", "intake-decide"]), st.sampled_from(STEPS), st.integers(1, 3)
    ),
    max_size=4,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.tuples(st.one_of(contacts, contacts, broken), headers), max_size=25),
    crash_at=crashes,
    batch_size=st.integers(1, 7),
)
async def test_every_event_gets_one_decision_and_every_refused_record_a_dead_letter(
    records: list[tuple[tuple[str, Any], list[tuple[str, bytes]]]],
    crash_at: set[tuple[str, str, int]],
    batch_size: int,
) -> None:
    """A crash at any step repeats work and never loses it or decides a contact two ways."""
    seen: dict[tuple[str, str], int] = defaultdict(int)

    def crash(stage: str, step: str) -> bool:
        seen[stage, step] += 1
        return (stage, step, seen[stage, step]) in crash_at

    broker = MemoryBroker(partitions=3)
    runtime = MemoryRuntime(broker, batch_size=batch_size, clock=lambda: NOW, crash=crash)
    runtime.add(AdmitContacts(SECRET), "contacts", TOPICS)
    runtime.add(DecideContacts(SETTINGS), "by-citizen", TOPICS)
    first_contact_of_event: dict[tuple[str, str], str] = {}
    # A repeated event, or a repeated contact id within its source, is about the same
    # citizen: the history that remembers them is the citizen's.
    citizen_of: dict[tuple[str, int, int], int] = {}
    refused = 0
    for (kind, payload), extra in records:
        if kind == "contact":
            source, event, contact, citizen = payload
            known = {
                citizen_of.get(("event", source, event)),
                citizen_of.get(("contact", source, contact)),
            }
            known.discard(None)
            if len(known) > 1:
                continue
            citizen = known.pop() if known else citizen
            citizen_of["event", source, event] = citizen_of["contact", source, contact] = citizen
            value = _contact(source, event, contact, citizen)
            first_contact_of_event.setdefault(
                (f"/crm/system-{source}", f"event-{event}"), f"contact-{contact}"
            )
        else:
            value = payload
            refused += 1  # no valid contact is shorter than 40 bytes
        broker.send("contacts", b"k", value, extra)
    await runtime.run_until_idle()

    decided: dict[tuple[str | None, str], set[str]] = defaultdict(set)
    for record in broker.records("surveys"):
        event = EVENTS.validate_json(record.value or b"")
        if isinstance(event, SurveyScheduled) or (
            isinstance(event, SurveySkipped) and event.reason is not SkipReason.SUPERSEDED
        ):
            decided[event.contact_source, event.contact_id].add(event.model_dump_json())
    # One decision per event, and none for a second contact id under a used event id.
    expected = {(source, contact) for (source, _event), contact in first_contact_of_event.items()}
    assert set(decided) == expected
    assert all(len(ways) == 1 for ways in decided.values()), decided
    letters = {
        (letter.source_topic, letter.source_partition, letter.source_offset)
        for letter in (DeadLetter.from_headers(list(r.headers)) for r in broker.records("dlq"))
    }
    assert len(letters) >= refused
