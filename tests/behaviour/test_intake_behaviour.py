"""The intake's behaviour, the same on the in-memory runtime and on Kafka."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from tests.behaviour.harness import SOURCE, contact

if TYPE_CHECKING:
    from tests.behaviour.harness import IntakeHarness


async def test_each_event_is_decided_once_and_its_repeats_are_not(intake: IntakeHarness) -> None:
    """A resent event, or a contact resent under a new event id, is one decision."""
    await intake.send(contact("e-1", "c-1", "citizen-1"))
    await intake.send(contact("e-1", "c-1", "citizen-1"))  # the same event again
    await intake.send(contact("e-2", "c-1", "citizen-1"))  # the same contact, a new event
    await intake.send(contact("e-2", "c-9", "citizen-1"))  # event e-2 again, another contact id
    await intake.send(contact("e-3", "c-2", "citizen-2"))
    outcome = await intake.settle(lambda o: {"c-1", "c-2"} <= set(o.decisions))
    assert outcome.decided("c-1") == 1
    assert outcome.decided("c-2") == 1
    assert "c-9" not in outcome.decisions
    assert outcome.dead_letters == []


async def test_a_broken_record_is_set_aside_and_the_records_around_it_are_decided(
    intake: IntakeHarness,
) -> None:
    """Bad input is a dead letter with a reason; it never holds up or hides the next contact."""
    await intake.send(contact("e-10", "c-10", "citizen-10"))
    await intake.send(b'{"specversion": "1.0", "id": "x"')
    await intake.send(
        contact("e-11", "c-11", "citizen-11"), headers=[("content-type", b"text/plain")]
    )
    await intake.send(contact("e-12", "c-12", "citizen-12"))
    outcome = await intake.settle(
        lambda o: {"c-10", "c-12"} <= set(o.decisions) and len(o.dead_letters) >= 2
    )
    assert sorted(letter.reason_code for letter, _value in outcome.dead_letters) == [
        "invalid_json",
        "unsupported_content_type",
    ]
    assert all(letter.stage == "intake" for letter, _value in outcome.dead_letters)
    assert "c-11" not in outcome.decisions


async def test_binary_mode_and_any_other_header_reach_one_decision(intake: IntakeHarness) -> None:
    """The CloudEvents SDK's binary mode, tracing and null headers: all plain contacts."""
    structured = contact("e-20", "c-20", "citizen-20")
    import orjson  # noqa: PLC0415 - only to take the sample apart

    event = orjson.loads(structured)
    message = ce_kafka.to_binary(
        CloudEvent(
            attributes={
                "id": "e-21",
                "source": SOURCE,
                "type": event["type"],
                "time": datetime.fromisoformat(event["time"]),
                "datacontenttype": "application/json",
            },
            data={**event["data"], "contact": {**event["data"]["contact"], "id": "c-21"}},
        ),
        JSONFormat(),
    )
    await intake.send(structured, headers=[("traceparent", b"00-ab-cd-01"), ("x-null", None)])
    await intake.send(message.value or b"", headers=list(message.headers.items()))
    outcome = await intake.settle(lambda o: {"c-20", "c-21"} <= set(o.decisions))
    assert outcome.decided("c-20") == outcome.decided("c-21") == 1
    assert outcome.dead_letters == []
