"""The answers join on the in-memory runtime, with a crash at any step: one rating per survey.

Hypothesis interleaves survey events (scheduled, repeated, sent) and answers
(confirmed or not, repeated, changed, late, off the scale, before their
survey is known) of a few surveys, and picks crashes at any step of the
join's checkpoint. After the runtime runs dry, each survey with a countable
answer has exactly one counted rating (its latest revision, revisions
1..n with nothing skipped), whose score is the last countable answer's; a
repeat after a crash is the same record; and what was published is exactly
what folding the records once, without a runtime, publishes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.ratings import MAX_PENDING, SurveyAnswers
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.decoding import Rejected
from schemas.responses import AnswerVia, Rating, RatingReceived
from schemas.surveys import SurveyScheduled, SurveySent
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.memory import STEPS, MemoryBroker, MemoryRuntime
from streams.stages.responses import RATINGS, JoinAnswers, decode_joined, fold

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "examples" / "palaute.toml")
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
EXPIRES = T0 + timedelta(days=3)
TOPICS = {RATINGS: "ratings", DEADLETTER: "dlq"}
CITIZEN = "cd" * 32


def _scheduled(survey: int) -> bytes:
    return (
        SurveyScheduled(
            survey_id=f"s-{survey}",
            citizen_key=CITIZEN,
            contact_id=f"c-{survey}",
            touchpoint_id=f"tp-{survey % 2}",
            occurred_at=T0,
            channel=SurveyChannel.SMS,
            language=Language.FI,
            scale=Scale.CSAT_5,
            contact_ended_at=T0,
            send_at=T0 + timedelta(minutes=5),
            expires_at=EXPIRES,
        )
        .model_dump_json()
        .encode()
    )


def _sent(survey: int) -> bytes:
    return (
        SurveySent(
            survey_id=f"s-{survey}",
            citizen_key=CITIZEN,
            contact_id=f"c-{survey}",
            touchpoint_id=f"tp-{survey % 2}",
            occurred_at=T0 + timedelta(minutes=6),
            channel=SurveyChannel.SMS,
        )
        .model_dump_json()
        .encode()
    )


def _answer(survey: int, answer: int, score: int, *, confirmed: bool, late: bool) -> bytes:
    return (
        RatingReceived(
            answer_id=f"a-{survey}-{answer}",
            survey_id=f"s-{survey}",
            score=score,
            via=AnswerVia.SMS_REPLY,
            received_at=EXPIRES if late else T0 + timedelta(hours=1, minutes=answer),
            confirmed=confirmed,
        )
        .model_dump_json()
        .encode()
    )


surveys = st.integers(0, 2)
answers = st.builds(
    lambda s, a, score, confirmed, late: (
        "answer",
        s,
        _answer(s, a, score, confirmed=confirmed, late=late),
    ),
    surveys,
    st.integers(0, 4),
    st.integers(0, 6),  # 0 and 6 are off the CSAT-5 scale
    st.sampled_from([True, True, False]),  # confirmed
    st.sampled_from([False, False, False, True]),  # late
)
events = st.one_of(
    surveys.map(lambda s: ("scheduled", s, _scheduled(s))),
    surveys.map(lambda s: ("sent", s, _sent(s))),
    answers,
    answers,
    answers,
)
#: Whether to crash at each step the runtime reaches, in order: any step, any number of times.
crashes = st.lists(st.sampled_from([False, False, False, True]), max_size=60)


def _countable(answers: list[bytes]) -> list[int]:
    """Give the scores that count, in order, by the rules of docs/responses.md.

    An unconfirmed answer is not counted and does not use up its answer id (the
    confirmed write follows under the same id); a confirmed answer id counts
    once, if it is in time and on the scale.
    """
    used: set[str] = set()
    scores: list[int] = []
    for value in answers:
        answer = RatingReceived.model_validate_json(value)
        if not answer.confirmed or answer.answer_id in used:
            continue
        used.add(answer.answer_id)
        if answer.received_at < EXPIRES and 1 <= answer.score <= 5:
            scores.append(answer.score)
    return scores


def _once(records: list[bytes]) -> list[str]:
    """Fold the records once per survey, in order, with no runtime: the ratings published."""
    states: dict[str, SurveyAnswers] = defaultdict(SurveyAnswers)
    published: list[str] = []
    for value in records:
        event = decode_joined(value)
        assert not isinstance(event, Rejected)
        result = fold(states[event.survey_id], event, SETTINGS)
        states[event.survey_id] = result.state
        published += [rating.model_dump_json() for rating in result.ratings]
    return published


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sent=st.lists(events, max_size=25),
    crash_at=crashes,
    batch_size=st.integers(1, 8),
)
# Two revisions in one batch, and a crash after the first is produced: were the
# state stored before the batch's ratings, the second would be lost.
@example(
    sent=[
        ("scheduled", 0, _scheduled(0)),
        ("answer", 0, _answer(0, 1, 3, confirmed=True, late=False)),
        ("answer", 0, _answer(0, 2, 5, confirmed=True, late=False)),
    ],
    crash_at=[False, True],
    batch_size=8,
)
# SurveySent before SurveyScheduled, and a crash once the state is written: the
# batch is handled again from the stored state, and the answer time must still be
# measured from the send, as in one pass (it was measured from send_at).
@example(
    sent=[
        ("sent", 0, _sent(0)),
        ("scheduled", 0, _scheduled(0)),
        ("answer", 0, _answer(0, 0, 1, confirmed=True, late=False)),
    ],
    crash_at=[False, False, True],
    batch_size=2,
)
async def test_every_countable_answer_is_one_counted_rating_per_survey(
    sent: list[tuple[str, int, bytes]],
    crash_at: list[bool],
    batch_size: int,
) -> None:
    """A crash at any step repeats a rating and never loses one or counts a survey twice."""
    plan = iter(crash_at)

    def crash(stage: str, step: str) -> bool:
        assert (stage, step in STEPS) == ("responses-join", True)
        return next(plan, False)

    broker = MemoryBroker(partitions=3)
    runtime = MemoryRuntime(broker, batch_size=batch_size, clock=lambda: T0, crash=crash)
    runtime.add(JoinAnswers(SETTINGS, place=lambda tp: int(tp[-1])), "by-survey", TOPICS)
    for _kind, survey, value in sent:
        broker.send("by-survey", f"s-{survey}".encode(), value)
    await runtime.run_until_idle()

    ratings = [Rating.model_validate_json(r.value or b"") for r in broker.records("ratings")]
    # A repeat after a crash is the same record; nothing else is published.
    assert {r.model_dump_json() for r in ratings} == set(_once([v for _k, _s, v in sent]))
    assert all(r.partition == int(r.key.decode()[-1]) for r in broker.records("ratings") if r.key)
    assert broker.records("dlq") == []

    by_survey: dict[str, dict[int, Rating]] = defaultdict(dict)
    for rating in ratings:
        assert by_survey[rating.rating_id].setdefault(rating.revision, rating) == rating
    for survey in range(3):
        mine = [(kind, value) for kind, s, value in sent if s == survey]
        kinds = [kind for kind, _value in mine]
        if "scheduled" not in kinds:
            assert f"s-{survey}" not in by_survey
            continue
        answers = [value for kind, value in mine if kind == "answer"]
        early = [value for kind, value in mine[: kinds.index("scheduled")] if kind == "answer"]
        if sum(RatingReceived.model_validate_json(v).confirmed for v in early) > MAX_PENDING:
            continue  # a flood before the survey is known: the excess is refused
        countable = _countable(answers)
        revisions = by_survey.get(f"s-{survey}", {})
        if not countable:
            assert revisions == {}
            continue
        # One counted rating: the latest revision, revisions 1..n, the last countable score.
        assert sorted(revisions) == list(range(1, len(revisions) + 1))
        assert revisions[max(revisions)].score == countable[-1]
