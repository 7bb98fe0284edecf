"""The join of answers with their survey: what counts, once, and what is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from engine.ratings import (
    MAX_PENDING,
    Refusal,
    SurveyAnswers,
    TouchpointFacts,
    on_answer,
    on_scheduled,
    on_sent,
)
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import AnswerVia, RatingReceived
from schemas.surveys import SurveyScheduled, SurveySent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOUCHPOINT = TouchpointFacts(service="Kela phone service", channel=TouchpointChannel.PHONE)
CITIZEN = "ab" * 32


def _scheduled(scale: Scale = Scale.CSAT_5) -> SurveyScheduled:
    return SurveyScheduled(
        survey_id="s-1",
        citizen_key=CITIZEN,
        contact_id="c-1",
        touchpoint_id="tp-1",
        occurred_at=T0,
        channel=SurveyChannel.SMS,
        language=Language.SV,
        scale=scale,
        contact_ended_at=T0,
        send_at=T0 + timedelta(minutes=10),
        expires_at=T0 + timedelta(days=3),
    )


def _sent() -> SurveySent:
    return SurveySent(
        survey_id="s-1",
        citizen_key=CITIZEN,
        contact_id="c-1",
        touchpoint_id="tp-1",
        occurred_at=T0 + timedelta(minutes=11),
        channel=SurveyChannel.SMS,
    )


def _answer(
    score: int,
    *,
    answer_id: str = "a-1",
    after: timedelta = timedelta(hours=1),
    confirmed: bool = True,
) -> RatingReceived:
    return RatingReceived(
        answer_id=answer_id,
        survey_id="s-1",
        score=score,
        via=AnswerVia.SMS_REPLY,
        received_at=T0 + after,
        confirmed=confirmed,
    )


def _known() -> SurveyAnswers:
    state = on_scheduled(SurveyAnswers(), _scheduled(), TOUCHPOINT).state
    return on_sent(state, _sent())


def test_a_confirmed_answer_becomes_a_rating_with_the_survey_facts() -> None:
    """The metrics need touchpoint, scale, normalised score and answer delay together."""
    result = on_answer(_known(), _answer(4), TOUCHPOINT)
    (rating,) = result.ratings
    assert (rating.touchpoint_id, rating.score, rating.scale) == ("tp-1", 4, Scale.CSAT_5)
    assert rating.normalised == pytest.approx(0.75)
    assert rating.language is Language.SV
    assert rating.survey_channel is SurveyChannel.SMS
    assert rating.service == "Kela phone service"
    assert rating.answered_after_seconds == pytest.approx(49 * 60)
    assert (rating.rating_id, rating.revision) == ("s-1", 1)


def test_a_changed_score_is_a_new_revision_of_the_same_rating() -> None:
    """A changed answer replaces the earlier one: the survey is counted once."""
    first = on_answer(_known(), _answer(2), TOUCHPOINT)
    second = on_answer(first.state, _answer(5, answer_id="a-2"), TOUCHPOINT)
    (rating,) = second.ratings
    assert (rating.rating_id, rating.revision, rating.score) == ("s-1", 2, 5)


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        (_answer(3, confirmed=False), Refusal.UNCONFIRMED),
        (_answer(3, after=timedelta(days=3)), Refusal.EXPIRED),
        (_answer(9), Refusal.OFF_SCALE),
    ],
)
def test_unconfirmed_late_and_off_scale_answers_are_not_counted(
    answer: RatingReceived, refusal: Refusal
) -> None:
    """Scanner votes, answers after expiry and impossible scores never reach the metrics."""
    result = on_answer(_known(), answer, TOUCHPOINT)
    assert result.ratings == ()
    assert result.refusals == (refusal,)


def test_a_retried_answer_or_the_same_score_again_publishes_nothing() -> None:
    """Replays after a crash and repeated taps must not add revisions."""
    first = on_answer(_known(), _answer(4), TOUCHPOINT)
    again = on_answer(first.state, _answer(4), TOUCHPOINT)
    same = on_answer(first.state, _answer(4, answer_id="a-2"), TOUCHPOINT)
    assert (again.ratings, again.refusals) == ((), (Refusal.REPEAT,))
    assert (same.ratings, same.refusals) == ((), (Refusal.UNCHANGED,))


def test_an_answer_before_its_survey_waits_and_counts_when_the_survey_arrives() -> None:
    """The two input topics are read independently, so answers may come first."""
    waiting = on_answer(SurveyAnswers(), _answer(5), None)
    assert waiting.ratings == ()
    assert waiting.refusals == (Refusal.WAITING,)
    joined = on_scheduled(waiting.state, _scheduled(), TOUCHPOINT)
    assert [rating.score for rating in joined.ratings] == [5]
    assert joined.state.pending == ()


def test_waiting_answers_are_bounded() -> None:
    """A flood for an unknown survey must not grow the state without end."""
    state = SurveyAnswers()
    for number in range(MAX_PENDING):
        state = on_answer(state, _answer(3, answer_id=f"a-{number}"), None).state
    result = on_answer(state, _answer(3, answer_id="one-more"), None)
    assert result.refusals == (Refusal.TOO_MANY_WAITING,)
    assert len(result.state.pending) == MAX_PENDING


def test_the_state_survives_its_json_form() -> None:
    """The table stores strings; a restart must not change what counts."""
    state = on_answer(_known(), _answer(2), TOUCHPOINT).state
    waiting = on_answer(state, _answer(4, answer_id="b"), TOUCHPOINT).state
    assert SurveyAnswers.from_json(waiting.to_json()) == waiting
    assert SurveyAnswers.from_json(SurveyAnswers().to_json()) == SurveyAnswers()


def _scheduled_with_contact() -> SurveyScheduled:
    return _scheduled().model_copy(
        update={"service": "Asumisen tuet", "touchpoint_channel": TouchpointChannel.FACE_TO_FACE}
    )


def test_a_rating_carries_the_contacts_service_and_touchpoint_channel() -> None:
    """Metrics per channel and service are only true if the rating says how the citizen came."""
    state = on_scheduled(SurveyAnswers(), _scheduled_with_contact(), TOUCHPOINT).state
    (rating,) = on_answer(on_sent(state, _sent()), _answer(4), TOUCHPOINT).ratings
    assert rating.service == "Asumisen tuet"
    assert rating.touchpoint_channel is TouchpointChannel.FACE_TO_FACE


def test_a_survey_scheduled_without_them_falls_back_to_the_catalogue() -> None:
    """Records written before SurveyScheduled carried the contact's touchpoint still decode."""
    (rating,) = on_answer(_known(), _answer(4), TOUCHPOINT).ratings
    assert (rating.service, rating.touchpoint_channel) == (
        TOUCHPOINT.service,
        TOUCHPOINT.channel,
    )


def test_the_contacts_touchpoint_survives_the_json_form_and_old_state_still_reads() -> None:
    """A restart keeps the real channel; state stored before the fields existed still loads."""
    state = on_scheduled(SurveyAnswers(), _scheduled_with_contact(), TOUCHPOINT).state
    assert SurveyAnswers.from_json(state.to_json()) == state
    old = json.loads(_known().to_json())
    del old["survey"]["service"], old["survey"]["touchpoint_channel"]
    restored = SurveyAnswers.from_json(json.dumps(old))
    assert restored.survey is not None
    assert (restored.survey.service, restored.survey.touchpoint_channel) == (None, None)


def test_a_rating_carries_its_contacts_team_case_type_and_queue_wait() -> None:
    """The breakdowns read them from the Rating: the join must not lose them, even stored."""
    scheduled = _scheduled().model_copy(
        update={"team": "Neuvonta A", "case_type": "asumistuki", "queue_wait_seconds": 240}
    )
    state = on_scheduled(SurveyAnswers(), scheduled, TOUCHPOINT).state
    state = SurveyAnswers.from_json(state.to_json())
    (rating,) = on_answer(state, _answer(4), TOUCHPOINT).ratings
    assert (rating.team, rating.case_type, rating.queue_wait_seconds) == (
        "Neuvonta A",
        "asumistuki",
        240,
    )


def test_a_survey_stored_before_the_context_was_carried_still_joins() -> None:
    """State written by an older worker has no team keys; its ratings simply have none."""
    stored = json.loads(on_scheduled(SurveyAnswers(), _scheduled(), TOUCHPOINT).state.to_json())
    for key in ("team", "case_type", "queue_wait_seconds"):
        del stored["survey"][key]
    (rating,) = on_answer(
        SurveyAnswers.from_json(json.dumps(stored)), _answer(5), TOUCHPOINT
    ).ratings
    assert (rating.team, rating.case_type, rating.queue_wait_seconds) == (None, None, None)
