"""The answers join as a pure stage: what it asks to publish and store, for one record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.ratings import Refusal, SurveyAnswers
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.contacts import TouchpointChannel
from schemas.responses import AnswerVia, OptOut, Rating, RatingReceived
from schemas.surveys import SurveyScheduled, SurveySent
from streams.runtime.model import Record
from streams.stages.responses import (
    RATINGS,
    JoinAnswers,
    Refused,
    answer_to_forward,
    survey_to_forward,
)

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "examples" / "palaute.toml")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CITIZEN = "ab" * 32


class _State(dict[str, str]):
    def get(self, key: str) -> str | None:  # type: ignore[override]
        return super().get(key)


def _scheduled(survey: str = "s-1", touchpoint: str = "tp-1") -> SurveyScheduled:
    return SurveyScheduled(
        survey_id=survey,
        citizen_key=CITIZEN,
        contact_id="c-1",
        touchpoint_id=touchpoint,
        occurred_at=T0,
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=T0,
        send_at=T0 + timedelta(minutes=10),
        expires_at=T0 + timedelta(days=3),
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
    )


def _answer(score: int, answer_id: str = "a-1", *, confirmed: bool = True) -> RatingReceived:
    return RatingReceived(
        answer_id=answer_id,
        survey_id="s-1",
        score=score,
        via=AnswerVia.SMS_REPLY,
        received_at=T0 + timedelta(hours=1),
        confirmed=confirmed,
    )


def _record(value: bytes, offset: int = 0) -> Record:
    return Record("by-survey", 0, offset, b"s-1", value)


def _feed(stage: JoinAnswers, state: _State, *events: bytes) -> list[Rating]:
    """Handle each record and apply its state changes, as a committed checkpoint would."""
    ratings: list[Rating] = []
    for offset, value in enumerate(events):
        output = stage.handle(state, _record(value, offset), T0)
        assert output.rejection is None
        ratings += [Rating.model_validate_json(p.value or b"") for p in output.produce]
        for key, new in output.state.items():
            assert new is not None
            state[key] = new
    return ratings


def _json(event: SurveyScheduled | SurveySent | RatingReceived | OptOut) -> bytes:
    return event.model_dump_json().encode()


def test_a_confirmed_answer_is_a_rating_keyed_by_touchpoint_where_it_is_counted() -> None:
    """The Rating goes out keyed by touchpoint id, to the partition ``place`` gives."""
    stage = JoinAnswers(SETTINGS, place=lambda touchpoint: 2 if touchpoint == "tp-1" else None)
    state = _State()
    _feed(stage, state, _json(_scheduled()))
    output = stage.handle(state, _record(_json(_answer(4)), 1), T0)
    (produce,) = output.produce
    assert (produce.topic, produce.key, produce.partition) == (RATINGS, b"tp-1", 2)
    rating = Rating.model_validate_json(produce.value or b"")
    assert (rating.rating_id, rating.revision, rating.score, rating.service) == ("s-1", 1, 4, "tax")
    stored = SurveyAnswers.from_json(output.state["s-1"] or "")
    assert (stored.revision, stored.score, stored.seen) == (1, 4, ("a-1",))
    assert rating in output.observations


def test_without_a_place_the_producer_chooses_the_partition() -> None:
    """The default placement leaves the partition to the producer (keyed by touchpoint)."""
    stage = JoinAnswers(SETTINGS)
    ratings = stage.handle(_State(), _record(_json(_scheduled())), T0)
    assert ratings.produce == ()
    state = _State()
    _feed(stage, state, _json(_scheduled()))
    (produce,) = stage.handle(state, _record(_json(_answer(3))), T0).produce
    assert produce.partition is None


def test_an_answer_before_its_survey_waits_and_counts_when_the_survey_arrives() -> None:
    """The two inputs are read independently: the answer is kept, then rated once."""
    stage = JoinAnswers(SETTINGS)
    state = _State()
    early = stage.handle(state, _record(_json(_answer(5))), T0)
    assert early.produce == ()
    assert Refused("s-1", Refusal.WAITING) in early.observations
    state.update({k: v for k, v in early.state.items() if v is not None})
    ratings = _feed(stage, state, _json(_scheduled()), _json(_scheduled()))
    assert [(r.revision, r.score) for r in ratings] == [(1, 5)]


def test_a_changed_score_is_a_new_revision_and_repeats_change_nothing() -> None:
    """Revisions replace; the same answer id again, or the same score, publishes nothing."""
    stage = JoinAnswers(SETTINGS)
    state = _State()
    ratings = _feed(
        stage,
        state,
        _json(_scheduled()),
        _json(_answer(2, "a-1")),
        _json(_answer(2, "a-1")),  # a retry of the same answer
        _json(_answer(2, "a-2")),  # the same score again
        _json(_answer(5, "a-3")),
    )
    assert [(r.revision, r.score) for r in ratings] == [(1, 2), (2, 5)]
    assert {r.rating_id for r in ratings} == {"s-1"}


def test_a_replay_of_a_stored_answer_asks_for_nothing() -> None:
    """Once the state is stored, the same record again neither publishes nor writes."""
    stage = JoinAnswers(SETTINGS)
    state = _State()
    _feed(stage, state, _json(_scheduled()), _json(_answer(4)))
    again = stage.handle(state, _record(_json(_answer(4))), T0)
    assert (again.produce, dict(again.state)) == ((), {})
    assert again.observations == (Refused("s-1", Refusal.REPEAT),)


def test_an_unconfirmed_answer_is_refused_and_sent_learns_the_send_time() -> None:
    """A provisional link vote is not counted; SurveySent only updates the survey's facts."""
    stage = JoinAnswers(SETTINGS)
    state = _State()
    sent = SurveySent(
        survey_id="s-1",
        citizen_key=CITIZEN,
        contact_id="c-1",
        touchpoint_id="tp-1",
        occurred_at=T0 + timedelta(minutes=30),
        channel=SurveyChannel.SMS,
    )
    assert _feed(stage, state, _json(_scheduled()), _json(sent)) == []
    assert _feed(stage, state, _json(_answer(4, confirmed=False))) == []
    (rating,) = _feed(stage, state, _json(_answer(4, "a-2")))
    assert rating.answered_after_seconds == 30 * 60


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b'{"type": "RatingReceived", "survey_id": "s-1"', "invalid_json"),
        (b"not json at all", "invalid_json"),
    ],
)
def test_an_unreadable_record_is_rejected_with_the_decoders_reason(value: bytes, code: str) -> None:
    """The runtime turns the rejection into a dead letter; the reason never quotes input."""
    output = JoinAnswers(SETTINGS).handle(_State(), _record(value), T0)
    assert output.rejection is not None
    assert output.rejection.code == code
    assert (output.produce, dict(output.state)) == ((), {})


def test_an_event_the_join_does_not_read_is_rejected_as_not_joined() -> None:
    """An OptOut on the join's topic is someone's bug, set aside rather than folded."""
    opt_out = OptOut(
        answer_id="a-9",
        survey_id="s-1",
        citizen_key=CITIZEN,
        via=AnswerVia.SMS_REPLY,
        received_at=T0,
    )
    output = JoinAnswers(SETTINGS).handle(_State(), _record(_json(opt_out)), T0)
    assert output.rejection is not None
    assert output.rejection.code == "not_joined"


def test_the_forwarders_take_only_the_joins_events_keyed_by_survey() -> None:
    """Survey events and answers go by survey id; others' events stay; a bad answer is refused."""
    assert survey_to_forward(_json(_scheduled())) == b"s-1"
    assert survey_to_forward(b'{"type": "SurveySkipped"}') is None
    assert survey_to_forward(b'{"type": "SurveyScheduled"') is None
    assert answer_to_forward(_json(_answer(4))) == b"s-1"
    assert answer_to_forward(b'{"type": "OptOut"}') is None
    refused = answer_to_forward(b'{"type": "RatingReceived"')
    assert not isinstance(refused, bytes | None)
    assert refused.code == "invalid_json"
