"""The scheduler stage's rules, each by its public name: ticks, echoes, outcomes, messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.lifecycle import (
    OUTCOME_UNKNOWN,
    Accepted,
    Deliver,
    Phase,
    ProviderOutcome,
    Publish,
    Refused,
    RetryPolicy,
    Step,
    SurveyState,
    Transient,
    Unknown,
    due,
    on_event,
)
from engine.tokens import SigningKey, TokenSigner
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.responses import AnswerVia, RatingReceived
from schemas.surveys import SurveyScheduled, SurveySent
from schemas.vault import ContactDetails
from streams.runtime.model import Record
from streams.scheduling import DueIndex, Pacer, RunAgenda
from streams.stages.dispatch import BY_SURVEY, SURVEYS, ScheduleSurveys
from streams.stages.dispatch_records import (
    ECHO_HEADER,
    Composer,
    DeliveryOutcome,
    EmailMessage,
    SendSurvey,
    SmsMessage,
    compose,
    decode_outcome,
    encode_entry,
    encode_outcome,
    tick_value,
)
from streams.stages.dispatch_rules import (
    Due,
    Later,
    Ticked,
    act_on,
    belongs,
    fold_outcome,
    is_own_tick,
    outcome_record,
    republishes,
)

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "examples" / "palaute.toml")
T0 = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy(outcome_grace=timedelta(seconds=30))
KEY = "c" * 64


def _scheduled(
    survey_id: str = "sv-1", channel: SurveyChannel = SurveyChannel.SMS
) -> SurveyScheduled:
    return SurveyScheduled(
        survey_id=survey_id,
        citizen_key=KEY,
        contact_id=f"contact-{survey_id}",
        touchpoint_id="tp-1",
        occurred_at=T0,
        channel=channel,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=T0,
        send_at=T0,
        expires_at=T0 + timedelta(days=3),
    )


def _ready(survey_id: str = "sv-1", *, email: bool = False) -> SurveyState:
    channel = SurveyChannel.EMAIL if email else SurveyChannel.SMS
    state = on_event(None, _scheduled(survey_id, channel), T0).state
    details = ContactDetails(
        survey_id=survey_id,
        citizen_key=KEY,
        phone=None if email else "+358401234567",
        email="citizen@example.fi" if email else None,
        language=Language.FI,
        stored_at=T0,
    )
    state = on_event(state, details, T0).state
    assert state is not None
    return state


def _dispatching(state: SurveyState) -> SurveyState:
    after = due(state, T0, POLICY).state
    assert after is not None
    assert after.phase is Phase.DISPATCHING
    return after


def test_only_a_tick_of_this_run_is_its_own() -> None:
    """A tick of an earlier owner, or of an unknown run, may precede that owner's outcome."""
    assert is_own_tick("run-a", "run-a")
    assert not is_own_tick("run-b", "run-a")
    assert not is_own_tick("", "")


def test_a_tick_leaves_a_survey_not_yet_due_for_its_time() -> None:
    """The index is a hint: a survey is looked at again when it is due, not acted on early."""
    state = _ready()
    assert act_on(state, T0 - timedelta(seconds=1), POLICY, own_tick=True) == Later(T0)


def test_an_earlier_owners_tick_never_ends_a_send_in_flight() -> None:
    """Its outcome may still be ahead in the partition: only an own tick may declare it unknown."""
    state = _dispatching(_ready())
    late = T0 + timedelta(minutes=5)
    assert act_on(state, late, POLICY, own_tick=False) == Later(late)
    step = act_on(state, late, POLICY, own_tick=True)
    assert isinstance(step, Step)
    assert step.state is not None
    assert step.state.phase is Phase.FAILED
    failed = [c.event for c in step.commands if isinstance(c, Publish)]
    assert [getattr(e, "reason", None) for e in failed] == [OUTCOME_UNKNOWN]


def test_a_due_survey_is_sent_by_any_tick() -> None:
    """A pending survey was never handed to a provider: any owner's tick may send it."""
    step = act_on(_ready(), T0, POLICY, own_tick=False)
    assert isinstance(step, Step)
    assert any(isinstance(c, Deliver) for c in step.commands)


def _sent(state: SurveyState) -> SurveySent:
    return SurveySent(
        survey_id=state.survey_id,
        citizen_key=KEY,
        contact_id=f"contact-{state.survey_id}",
        touchpoint_id="tp-1",
        occurred_at=T0,
        channel=SurveyChannel.SMS,
    )


def test_an_echo_that_finds_the_state_behind_is_published_again() -> None:
    """The crash may have come between the echo and the surveys topic: publish it (again)."""
    before = _dispatching(_ready())
    event = _sent(before)
    step = on_event(before, event, T0)
    echo = ((ECHO_HEADER, b"1"),)
    assert republishes(event, echo, before, step)
    assert not republishes(event, (), before, step)  # the forwarded copy: already on the topic
    assert not republishes(event, echo, step.state, on_event(step.state, event, T0))
    answer = RatingReceived(
        answer_id="a-1",
        survey_id=before.survey_id,
        score=4,
        via=AnswerVia.SMS_REPLY,
        received_at=T0,
    )
    assert not republishes(answer, echo, before, Step(replace(before, reminded=True)))


def test_an_outcome_of_an_earlier_attempt_never_ends_a_later_one() -> None:
    """A replayed 503 of attempt 1 must not put attempt 2, in flight, back to pending."""
    second = replace(_dispatching(_ready()), attempts=2)
    stale = DeliveryOutcome("sv-1", 1, reminder=False, outcome=Transient("503"), at=T0)
    current = DeliveryOutcome("sv-1", 2, reminder=False, outcome=Accepted("SM1", 1), at=T0)
    assert not belongs(second, stale)
    assert fold_outcome(second, stale, POLICY) == Step(second)
    assert belongs(second, current)
    sent = fold_outcome(second, current, POLICY).state
    assert sent is not None
    assert sent.phase is Phase.SENT


def test_an_outcome_read_back_again_publishes_the_same_event() -> None:
    """Folded in with the time it carries, a replayed outcome repeats, identical, never differs."""
    state = _dispatching(_ready())
    outcome = DeliveryOutcome(
        "sv-1", 1, reminder=False, outcome=Accepted("SM1", 2), at=T0 + timedelta(seconds=1)
    )
    assert fold_outcome(state, outcome, POLICY) == fold_outcome(state, outcome, POLICY)


@pytest.mark.parametrize(
    "outcome",
    [
        Accepted("SM1", 2),
        Accepted(None, None),
        Transient("503"),
        Refused("recipient has unsubscribed", "21610", opted_out=True),
        Unknown("timeout"),
    ],
)
def test_a_delivery_outcome_survives_the_topic(outcome: ProviderOutcome) -> None:
    """What the provider answered is what the stage folds in."""
    command = SendSurvey(
        "sv-1",
        2,
        SurveyChannel.SMS,
        1,
        reminder=False,
        message=SmsMessage("+358401234567", "b", "u"),
    )
    record = outcome_record(command, outcome, T0)
    assert record.partition == 2
    assert b"+358" not in (record.value or b"")  # never the number
    assert decode_outcome(record.value) == DeliveryOutcome(
        "sv-1", 1, reminder=False, outcome=outcome, at=T0
    )


def test_a_damaged_delivery_outcome_is_an_error_and_anything_else_no_outcome() -> None:
    """A damaged one is set aside; a survey event is not mistaken for one."""
    assert decode_outcome(b'{"type":"SurveySent"}') is None
    with pytest.raises(ValueError, match="damaged"):
        decode_outcome(b'{"type":"DeliveryOutcome","survey_id":"x"}')
    assert encode_outcome(
        DeliveryOutcome("s", 1, reminder=True, outcome=Unknown("t"), at=T0)
    ).startswith(b'{"type":"DeliveryOutcome"')


def _composer() -> Composer:
    return Composer(
        SETTINGS, TokenSigner([SigningKey("k1", b"s" * 32)]), "https://palaute.example.fi"
    )


def test_an_sms_goes_to_the_phone_with_the_page_link_and_the_status_callback() -> None:
    """The message is composed from engine.outbound's texts, addressed from the details."""
    message = compose(_dispatching(_ready()), SurveyChannel.SMS, _composer(), T0)
    assert isinstance(message, SmsMessage)
    assert message.to == "+358401234567"
    assert "https://palaute.example.fi/r/" in message.body
    assert message.status_callback == "https://palaute.example.fi/twilio/status"
    assert "+358" not in repr(message)


def test_an_email_goes_to_the_address_with_its_unsubscribe_link() -> None:
    """The email carries the unsubscribe link that its List-Unsubscribe header repeats."""
    message = compose(_dispatching(_ready(email=True)), SurveyChannel.EMAIL, _composer(), T0)
    assert isinstance(message, EmailMessage)
    assert message.to == "citizen@example.fi"
    assert message.unsubscribe_url.startswith("https://palaute.example.fi/u/")


def test_a_message_without_its_address_is_refused_and_nothing_is_sent() -> None:
    """Details without a phone number cannot go by SMS: the survey fails with the reason."""
    state = _dispatching(_ready(email=True))
    assert compose(state, SurveyChannel.SMS, _composer(), T0) == Refused(
        "no phone number in the contact details"
    )


class _Store:
    def __init__(self, states: list[SurveyState]) -> None:
        self.values = {s.survey_id: encode_entry(0, s) for s in states}

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def test_a_tick_sends_one_survey_stores_its_intent_with_it_and_asks_to_go_again() -> None:
    """One send a checkpoint: the intent and the state go with the command; the rest goes next."""
    states = [_ready("sv-1"), _ready("sv-2")]
    store = _Store(states)
    agenda = RunAgenda(POLICY, _pacer(), store.values.items, lambda: {0}, tokens=lambda: "run-1")
    stage = ScheduleSurveys(SETTINGS, agenda)
    output = stage.handle(store, Record("by-survey", 0, 7, b"tick", tick_value("run-1")), T0)
    (command,) = output.commands
    assert isinstance(command, SendSurvey)
    assert output.again
    stored = output.state[command.survey_id]
    assert stored is not None
    assert '"phase":"dispatching"' in stored
    kinds = [(p.topic, b"SurveyDispatching" in (p.value or b"")) for p in output.produce]
    assert kinds == [(BY_SURVEY, True), (SURVEYS, True)]  # the echo first
    assert Ticked(0, "run-1") in output.observations
    waiting = [o for o in output.observations if isinstance(o, Due) and o.when == T0]
    assert [o.survey_id for o in waiting] == [
        s.survey_id for s in states if s.survey_id != command.survey_id
    ]


def _pacer() -> Pacer:
    return Pacer(SETTINGS.dispatch, monotonic=lambda: 0.0)


def test_the_due_index_gives_ids_in_hand_again_until_they_are_settled() -> None:
    """A checkpoint handled again after a refused record must see the same due surveys."""
    index = DueIndex()
    index.push(0, T0, "sv-1")
    index.push(0, T0, "sv-2")
    assert index.take(0, T0, 10) == ["sv-1", "sv-2"]
    assert index.take(0, T0, 10) == ["sv-1", "sv-2"]
    index.settle(0, "sv-1", T0 + timedelta(hours=1))
    index.settle(0, "sv-2", None)
    assert index.take(0, T0, 10) == []
    assert index.take(0, T0 + timedelta(hours=1), 10) == ["sv-1"]


def test_nothing_is_due_from_a_revocation_until_the_next_assignment() -> None:
    """During a rebalance the partitions may be another worker's: the agenda hands out nothing."""
    store = _Store([_ready("sv-1")])
    runs = iter(["run-1", "run-2"])
    agenda = RunAgenda(POLICY, _pacer(), store.values.items, lambda: {0}, tokens=lambda: next(runs))
    assert agenda.due(0, T0, 10) == ["sv-1"]
    agenda.revoked()
    assert agenda.due(0, T0, 10) == []
    agenda.restart()
    assert agenda.run() == "run-2"
    assert agenda.due(0, T0, 10) == ["sv-1"]
