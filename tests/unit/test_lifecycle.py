"""The survey lifecycle: when a survey is sent, retried, given up, closed, and never sent twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.email import MailOutcomeUnknownError, MailRecipientRefusedError, MailRetriableError
from connectors.sms import (
    SmsConfigurationError,
    SmsOptedOutError,
    SmsOutcomeUnknownError,
    SmsPermanentError,
    SmsRetriableError,
)
from engine.lifecycle import (
    OPTED_OUT,
    OUTCOME_UNKNOWN,
    Accepted,
    Deliver,
    Drop,
    ForgetDetails,
    Outcome,
    Phase,
    Publish,
    RecordOptOut,
    Refused,
    RetryPolicy,
    Step,
    SurveyState,
    TokenBucket,
    Transient,
    Unknown,
    due,
    due_at,
    on_event,
    on_outcome,
)
from engine.outbound import status_callback_url, survey_email, survey_sms
from engine.tokens import SigningKey, TokenPayload, TokenSigner
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import TouchpointConfig
from schemas.responses import AnswerVia, RatingReceived
from schemas.surveys import SkipReason, SurveyScheduled, SurveySent, SurveySkipped
from schemas.vault import ContactDetails
from streams.scheduling import DueIndex
from streams.sending import outcome_of
from streams.stages.dispatch_records import decode_entry, encode_entry

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEND_AT = T0 + timedelta(minutes=10)
EXPIRES_AT = SEND_AT + timedelta(days=3)
POLICY = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(minutes=10))
KEY = "a" * 32
SIGNER = TokenSigner([SigningKey("k1", b"s" * 32)])


def scheduled(
    channel: SurveyChannel = SurveyChannel.SMS,
    reminder_at: datetime | None = None,
    expires_at: datetime = EXPIRES_AT,
    scale: Scale = Scale.CSAT_5,
) -> SurveyScheduled:
    return SurveyScheduled(
        survey_id="sv-1",
        citizen_key=KEY,
        contact_id="contact-1",
        touchpoint_id="tp-1",
        occurred_at=T0,
        channel=channel,
        language=Language.SV,
        scale=scale,
        contact_ended_at=T0,
        send_at=SEND_AT,
        reminder_at=reminder_at,
        expires_at=expires_at,
    )


def details() -> ContactDetails:
    return ContactDetails(
        survey_id="sv-1",
        citizen_key=KEY,
        phone="+358401234567",
        language=Language.SV,
        stored_at=T0,
    )


def ready(**kwargs: object) -> SurveyState:
    """Give a survey scheduled with its details, waiting for its send time."""
    state = on_event(None, scheduled(**kwargs), T0).state  # type: ignore[arg-type]
    state = on_event(state, details(), T0).state
    assert state is not None
    return state


def published(step: Step) -> list[str]:
    return [c.event.type for c in step.commands if isinstance(c, Publish)]  # type: ignore[attr-defined]


def dispatching(state: SurveyState, now: datetime = SEND_AT) -> SurveyState:
    step = due(state, now, POLICY)
    assert step.state is not None
    assert step.state.phase is Phase.DISPATCHING
    return step.state


def test_nothing_is_sent_before_the_send_time() -> None:
    """A survey sent early lands during the contact it asks about."""
    state = ready()
    assert due_at(state, POLICY) == SEND_AT
    assert due(state, SEND_AT - timedelta(seconds=1), POLICY) == Step(state)


def test_the_intent_to_send_is_published_before_the_provider_is_called() -> None:
    """At most once rests on this order: the record of intent exists before any send."""
    step = due(ready(), SEND_AT, POLICY)
    assert isinstance(step.commands[0], Publish)
    assert step.commands[0].event.type == "SurveyDispatching"
    assert step.commands[1] == Deliver(SurveyChannel.SMS)
    assert step.state is not None
    assert step.state.attempts == 1


def test_an_accepted_send_is_recorded_and_the_details_forgotten() -> None:
    """Without a reminder nothing more is sent, so the phone number has no reason to stay."""
    step = on_outcome(dispatching(ready()), Accepted("SM1", 2), SEND_AT, POLICY)
    assert published(step) == ["SurveySent"]
    assert ForgetDetails("sv-1") in step.commands
    assert step.state is not None
    assert step.state.phase is Phase.SENT
    assert step.state.details is None
    sent = step.commands[0].event  # type: ignore[union-attr]
    assert sent.provider_message_id == "SM1"  # type: ignore[attr-defined]
    assert sent.segments == 2  # type: ignore[attr-defined]


def test_a_send_in_flight_found_after_a_crash_is_never_sent_again() -> None:
    """The provider may have sent it; a second text is worse than a missing one."""
    step = due(dispatching(ready()), SEND_AT + timedelta(minutes=1), POLICY)
    assert not any(isinstance(c, Deliver) for c in step.commands)
    assert published(step) == ["SurveyFailed"]
    assert step.commands[0].event.reason == OUTCOME_UNKNOWN  # type: ignore[union-attr]
    assert step.state is not None
    assert step.state.outcome is Outcome.FAILED


def test_an_unknown_outcome_fails_the_survey_without_a_retry() -> None:
    """A timeout after the request went out may mean the citizen got it."""
    step = on_outcome(dispatching(ready()), Unknown("timeout"), SEND_AT, POLICY)
    assert published(step) == ["SurveyFailed"]
    assert step.state is not None
    assert step.state.phase is Phase.FAILED
    assert due_at(step.state, POLICY) == SEND_AT + POLICY.forget_after


def test_a_transient_error_retries_after_a_backoff() -> None:
    """A 503 from Twilio means nothing was sent; the survey waits and tries again."""
    step = on_outcome(dispatching(ready()), Transient("503"), SEND_AT, POLICY)
    assert published(step) == []
    state = step.state
    assert state is not None
    assert state.phase is Phase.PENDING
    retry_at = SEND_AT + POLICY.backoff("sv-1", 1)
    assert state.retry_at == retry_at
    assert due_at(state, POLICY) == retry_at
    assert due(state, retry_at - timedelta(milliseconds=1), POLICY) == Step(state)
    again = due(state, retry_at, POLICY)
    assert again.state is not None
    assert again.state.attempts == 2
    assert again.commands[0].event.attempt == 2  # type: ignore[union-attr]


def test_an_outage_longer_than_the_survey_expires_it_unsent() -> None:
    """Never past expiry: a late question about an old contact is noise."""
    state = ready(expires_at=SEND_AT + POLICY.last_call + timedelta(seconds=5))
    step = on_outcome(dispatching(state), Transient("503"), SEND_AT, POLICY)
    assert published(step) == ["SurveyExpired"]
    assert step.commands[0].event.was_sent is False  # type: ignore[union-attr]
    assert step.state is not None
    assert step.state.outcome is Outcome.EXPIRED


def test_max_attempts_fails_the_survey_with_the_last_reason() -> None:
    """An operator may prefer a bounded number of tries to waiting until expiry."""
    policy = RetryPolicy(max_attempts=2)
    state = ready()
    now = SEND_AT
    for _ in range(2):
        state = dispatching(state, now)
        step = on_outcome(state, Transient("relay down"), now, policy)
        assert step.state is not None
        state = step.state
        now = state.retry_at or state.finished_at or now
    assert state.phase is Phase.FAILED
    assert published(step) == ["SurveyFailed"]
    assert step.commands[0].event.reason == "retries-exhausted: relay down"  # type: ignore[union-attr]


def test_an_opt_out_at_the_provider_fails_with_its_reason_and_code() -> None:
    """Twilio 21610: the citizen replied STOP, and must never be texted again."""
    step = on_outcome(dispatching(ready()), Refused("unsubscribed", "21610", True), SEND_AT, POLICY)  # noqa: FBT003 - the dataclass's field
    failed = step.commands[0].event  # type: ignore[union-attr]
    assert failed.reason == OPTED_OUT  # type: ignore[attr-defined]
    assert failed.provider_error_code == "21610"  # type: ignore[attr-defined]
    assert failed.attempts == 1  # type: ignore[attr-defined]
    (record,) = [c for c in step.commands if isinstance(c, RecordOptOut)]
    assert record.opt_out.survey_id == "sv-1"
    assert record.opt_out.citizen_key == KEY


def test_a_survey_without_details_waits_for_them_and_expires_without() -> None:
    """The vault record may arrive after the survey; it is waited for, not guessed."""
    state = on_event(None, scheduled(), T0).state
    assert state is not None
    assert due(state, SEND_AT, POLICY) == Step(state)
    assert due_at(state, POLICY) == EXPIRES_AT - POLICY.last_call
    late = on_event(state, details(), SEND_AT).state
    assert late is not None
    assert due(late, SEND_AT, POLICY).commands[1] == Deliver(SurveyChannel.SMS)
    step = due(state, EXPIRES_AT - POLICY.last_call, POLICY)
    assert published(step) == ["SurveyExpired"]


def test_nothing_is_sent_in_the_last_call_before_expiry() -> None:
    """Links expire with the survey: a text sent seconds before would arrive dead."""
    step = due(ready(), EXPIRES_AT - POLICY.last_call, POLICY)
    assert published(step) == ["SurveyExpired"]
    assert not any(isinstance(c, Deliver) for c in step.commands)


def test_details_before_the_schedule_are_kept_until_it_arrives() -> None:
    """Two topics, no order between them: either may come first."""
    state = on_event(None, details(), T0).state
    assert state is not None
    assert state.phase is Phase.AWAITING
    state = on_event(state, scheduled(), T0).state
    assert state is not None
    assert state.phase is Phase.PENDING
    assert state.details == details()


def test_orphaned_details_are_deleted() -> None:
    """Contact details whose survey never came must not stay forever."""
    state = on_event(None, details(), T0).state
    assert state is not None
    step = due(state, T0 + POLICY.orphan_details_after, POLICY)
    assert step == Step(None, (ForgetDetails("sv-1"), Drop("sv-1")))


def _skip(reason: SkipReason = SkipReason.SUPERSEDED) -> SurveySkipped:
    return SurveySkipped(
        survey_id="sv-1",
        citizen_key=KEY,
        contact_id="contact-1",
        touchpoint_id="tp-1",
        occurred_at=T0,
        reason=reason,
    )


def test_a_superseded_survey_is_skipped_before_it_is_sent() -> None:
    """A newer contact took its place; the skip on the topic is its only ending."""
    step = on_event(ready(), _skip(), T0)
    assert step.state is not None
    assert step.state.outcome is Outcome.SKIPPED
    assert step.commands == (ForgetDetails("sv-1"),)
    assert due(step.state, SEND_AT, POLICY) == Step(step.state)


def test_a_skip_that_comes_after_the_send_began_changes_nothing() -> None:
    """Too late to call off: the survey keeps its one ending."""
    state = dispatching(ready())
    assert on_event(state, _skip(), SEND_AT) == Step(state)


def test_a_skip_for_an_unknown_survey_keeps_no_state() -> None:
    """Most contacts are skipped; remembering each would fill the table for nothing."""
    assert on_event(None, _skip(SkipReason.NOT_SAMPLED), T0) == Step(None)


def test_a_replayed_schedule_does_not_restart_a_sent_survey() -> None:
    """Kafka delivers at least once; a replay must not become a second text."""
    sent = on_outcome(dispatching(ready()), Accepted(), SEND_AT, POLICY).state
    assert sent is not None
    assert on_event(sent, scheduled(), SEND_AT) == Step(sent)
    replay = on_event(sent, details(), SEND_AT)
    assert replay.commands == (ForgetDetails("sv-1"),)


def test_the_one_reminder_is_sent_once_and_then_the_details_go() -> None:
    """A reminder doubles the answers of the forgetful, and annoys when repeated."""
    reminder_at = SEND_AT + timedelta(days=1)
    state = on_outcome(dispatching(ready(reminder_at=reminder_at)), Accepted(), SEND_AT, POLICY)
    assert state.state is not None
    assert state.state.details is not None
    assert due_at(state.state, POLICY) == reminder_at
    step = due(state.state, reminder_at, POLICY)
    assert step.commands == (Deliver(SurveyChannel.SMS, reminder=True),)
    assert step.state is not None
    done = on_outcome(step.state, Accepted(), reminder_at, POLICY)
    assert published(done) == ["ReminderSent"]
    assert done.state is not None
    assert done.state.reminded
    assert done.state.details is None
    assert due_at(done.state, POLICY) == EXPIRES_AT


def test_a_reminder_in_flight_at_a_crash_is_not_repeated() -> None:
    """Same rule as the survey itself: unknown means not again."""
    reminder_at = SEND_AT + timedelta(days=1)
    sent = on_outcome(dispatching(ready(reminder_at=reminder_at)), Accepted(), SEND_AT, POLICY)
    assert sent.state is not None
    reminding = due(sent.state, reminder_at, POLICY).state
    assert reminding is not None
    after = due(reminding, reminder_at + timedelta(minutes=5), POLICY)
    assert after.commands == ()
    assert after.state is not None
    assert after.state.reminded
    assert after.state.phase is Phase.SENT


def test_a_sent_survey_closes_at_expiry_and_is_forgotten_later() -> None:
    """Closing tells the responses side the survey no longer takes answers."""
    sent = on_outcome(dispatching(ready()), Accepted(), SEND_AT, POLICY).state
    assert sent is not None
    closed = due(sent, EXPIRES_AT, POLICY)
    assert published(closed) == ["SurveyExpired"]
    assert closed.commands[0].event.was_sent is True  # type: ignore[union-attr]
    assert closed.state is not None
    assert closed.state.outcome is Outcome.SENT
    forget = due(closed.state, EXPIRES_AT + POLICY.forget_after, POLICY)
    assert forget == Step(None, (Drop("sv-1"),))


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 10, 40])
def test_backoff_doubles_up_to_the_cap_with_bounded_jitter(attempt: int) -> None:
    """Spread retries so that surveys failing together do not retry in lockstep."""
    ceiling = min(POLICY.cap, POLICY.base * 2 ** (attempt - 1))
    wait = POLICY.backoff("sv-1", attempt)
    assert ceiling / 2 <= wait <= ceiling
    assert wait == POLICY.backoff("sv-1", attempt)  # deterministic: replays agree


def test_jitter_differs_between_surveys() -> None:
    """The jitter would be useless if every survey drew the same."""
    waits = {POLICY.backoff(f"sv-{n}", 3) for n in range(20)}
    assert len(waits) > 10


def test_state_survives_its_json_form() -> None:
    """The table stores JSON; a state that changes on the way would change behaviour."""
    state = dispatching(ready(reminder_at=SEND_AT + timedelta(days=1)))
    assert SurveyState.from_json(state.to_json()) == state
    assert decode_entry(encode_entry(3, state)) == (3, state)
    with pytest.raises(ValueError, match="known format"):
        SurveyState.from_json('{"v": 99}')


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    """Providers throttle bursts; our own limit keeps us under theirs."""
    bucket: TokenBucket | None = TokenBucket(rate=2.0, burst=3)
    for _ in range(3):
        assert bucket is not None
        bucket = bucket.take(T0)
    assert bucket is not None
    assert bucket.take(T0) is None
    assert bucket.wait(T0) == timedelta(seconds=0.5)
    assert bucket.take(T0 + timedelta(seconds=0.5)) is not None


def test_the_due_index_hands_out_each_due_survey_once() -> None:
    """Two entries for one survey (an old and a new due time) must not act twice."""
    index = DueIndex()
    index.push(0, T0, "sv-1")
    index.push(0, T0 + timedelta(seconds=1), "sv-1")
    index.push(0, T0 + timedelta(hours=1), "sv-2")
    index.push(1, T0, "sv-3")
    assert index.pop_due(0, T0 + timedelta(seconds=2)) == ["sv-1"]
    assert index.pop_due(0, T0 + timedelta(seconds=2)) == []
    assert index.pop_due(1, T0) == ["sv-3"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SmsRetriableError("Twilio temporarily unavailable", code=20503, status=503), Transient),
        (SmsConfigurationError("authentication failed", code=20003, status=401), Transient),
        (SmsOutcomeUnknownError("Twilio did not answer in time"), Unknown),
        (SmsPermanentError("invalid recipient number", code=21211, status=400), Refused),
        (MailRetriableError("relay unreachable"), Transient),
        (MailOutcomeUnknownError("connection dropped during DATA"), Unknown),
        (MailRecipientRefusedError("recipient refused", code=550), Refused),
        (RuntimeError("a bug"), Unknown),
    ],
)
def test_connector_errors_map_to_what_the_lifecycle_does(error: Exception, expected: type) -> None:
    """Retry only what provably was not sent; anything unclear counts as maybe sent."""
    assert isinstance(outcome_of(error), expected)


def test_twilio_opt_out_maps_to_an_opt_out_refusal() -> None:
    """21610 must be told apart from other refusals: it changes the citizen's history."""
    outcome = outcome_of(SmsOptedOutError("recipient has unsubscribed", code=21610, status=400))
    assert outcome == Refused("recipient has unsubscribed", "21610", opted_out=True)


def test_the_sms_carries_the_organisation_the_service_the_reply_instruction_and_the_code() -> None:
    """The SMS is answered by reply or by one tap; both, and who asks about what, must be in it."""
    survey = scheduled()
    touchpoint = TouchpointConfig(name="Puhelinpalvelu")
    text = survey_sms(survey, touchpoint, SIGNER, "https://palaute.example.fi", "Kela")
    organisation, question, reply = text.body.split("\n")
    assert organisation == "Kela"
    assert question == "Puhelinpalvelu: " + TouchpointConfig().question(Language.SV)
    assert reply.startswith("Svara 1-5 eller https://palaute.example.fi/r/")
    assert reply.rsplit("/", 1)[1] == SIGNER.survey_code("sv-1")
    assert (text.sender_id, text.messaging_service_sid) == (None, None)
    assert status_callback_url("https://p.example.fi/") == "https://p.example.fi/twilio/status"


def test_the_email_has_one_score_link_per_point_of_the_scale() -> None:
    """One tap per score; a missing score would bias every answer."""
    survey = scheduled(channel=SurveyChannel.EMAIL, scale=Scale.NPS_11)
    email = survey_email(survey, TouchpointConfig(), SIGNER, "https://p.example.fi", "Kela", T0)
    assert email.unsubscribe_url.startswith("https://p.example.fi/u/")
    tokens = [line.rsplit("/", 1)[1] for line in email.content.text.splitlines() if "/r/" in line]
    payloads = [SIGNER.verify(token, T0) for token in tokens]
    assert all(isinstance(p, TokenPayload) for p in payloads)
    scores = sorted(
        p.score for p in payloads if isinstance(p, TokenPayload) and p.score is not None
    )
    assert scores == list(range(11))
    assert email.content.language is Language.SV


def test_a_send_in_flight_waits_for_its_outcome_to_be_read_back() -> None:
    """After a crash the table may be behind the topic; the grace lets the topic catch up."""
    state = dispatching(ready())
    assert due_at(state, POLICY) == SEND_AT + POLICY.outcome_grace
    assert due(state, SEND_AT + POLICY.outcome_grace / 2, POLICY) == Step(state)
    sent = SurveySent(
        survey_id="sv-1",
        citizen_key=KEY,
        contact_id="contact-1",
        touchpoint_id="tp-1",
        occurred_at=SEND_AT,
        channel=SurveyChannel.SMS,
    )
    adopted = on_event(state, sent, SEND_AT)
    assert adopted.commands == ()
    assert adopted.state is not None
    assert adopted.state.phase is Phase.SENT


def test_a_recorded_intent_read_back_stops_a_second_send() -> None:
    """A table that lost its DISPATCHING must learn it from the topic, never send again."""
    state = ready()
    intent = due(state, SEND_AT, POLICY).commands[0]
    assert isinstance(intent, Publish)
    adopted = on_event(state, intent.event, SEND_AT)
    assert adopted.state is not None
    assert adopted.state.phase is Phase.DISPATCHING
    later = due(adopted.state, SEND_AT + POLICY.outcome_grace, POLICY)
    assert not any(isinstance(c, Deliver) for c in later.commands)
    assert published(later) == ["SurveyFailed"]


def test_an_old_intent_read_back_after_a_retry_changes_nothing() -> None:
    """The first attempt's echo arrives while the survey waits for its second."""
    step = due(ready(), SEND_AT, POLICY)
    intent = step.commands[0]
    assert isinstance(intent, Publish)
    assert step.state is not None
    waiting = on_outcome(step.state, Transient("503"), SEND_AT, POLICY).state
    assert waiting is not None
    assert on_event(waiting, intent.event, SEND_AT) == Step(waiting)


def test_a_failure_read_back_finishes_a_survey_without_publishing_again() -> None:
    """The ending is on the topic already; publishing it twice would break the accounting."""
    state = dispatching(ready())
    failure = on_outcome(state, Unknown("timeout"), SEND_AT, POLICY).commands[0]
    assert isinstance(failure, Publish)
    step = on_event(state, failure.event, SEND_AT)
    assert published(step) == []
    assert step.state is not None
    assert step.state.outcome is Outcome.FAILED


def _rating(*, confirmed: bool) -> RatingReceived:
    return RatingReceived(
        answer_id="answer-1",
        survey_id="sv-1",
        score=4,
        via=AnswerVia.LINK,
        received_at=SEND_AT + timedelta(hours=1),
        confirmed=confirmed,
    )


def test_an_answered_survey_gets_no_reminder() -> None:
    """Reminding someone who already answered is the surest way to lose their goodwill."""
    reminder_at = SEND_AT + timedelta(days=1)
    sent = on_outcome(dispatching(ready(reminder_at=reminder_at)), Accepted(), SEND_AT, POLICY)
    assert sent.state is not None
    step = on_event(sent.state, _rating(confirmed=True), SEND_AT + timedelta(hours=1))
    assert step.commands == (ForgetDetails("sv-1"),)
    assert step.state is not None
    assert step.state.reminded
    assert due_at(step.state, POLICY) == EXPIRES_AT
    assert due(step.state, reminder_at, POLICY) == Step(step.state)


def test_a_scanners_unconfirmed_click_keeps_the_reminder() -> None:
    """Mail scanners follow every link; that is not the citizen answering."""
    reminder_at = SEND_AT + timedelta(days=1)
    sent = on_outcome(dispatching(ready(reminder_at=reminder_at)), Accepted(), SEND_AT, POLICY)
    assert sent.state is not None
    step = on_event(sent.state, _rating(confirmed=False), SEND_AT + timedelta(hours=1))
    assert step == Step(sent.state)
    assert due_at(sent.state, POLICY) == reminder_at
