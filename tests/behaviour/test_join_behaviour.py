"""The answers join's behaviour, the same on the in-memory runtime and on Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from streams.partitioning import touchpoint_partition
from tests.behaviour.join_harness import EXPIRES_IN, answer, scheduled

if TYPE_CHECKING:
    from tests.behaviour.join_harness import JoinHarness


def _ids(*names: str) -> list[str]:
    """Give survey ids unique to this run, so a shared broker's old records never match."""
    run = uuid.uuid4().hex[:8]
    return [f"s-{run}-{name}" for name in names]


async def test_a_confirmed_answer_is_one_rating_and_a_changed_score_replaces_it(
    join: JoinHarness,
) -> None:
    """Revision 1, then revision 2 for a new score; retries and the same score add nothing."""
    now = datetime.now(UTC)
    (survey,) = _ids("a")
    await join.survey_event(scheduled(survey, "tp-behaviour", now))
    await join.response(answer(survey, f"{survey}-1", 4, now))
    await join.response(answer(survey, f"{survey}-1", 4, now))  # a retry of the same answer
    await join.response(answer(survey, f"{survey}-2", 4, now))  # the same score again
    await join.response(answer(survey, f"{survey}-3", 2, now, after=timedelta(minutes=2)))
    outcome = await join.settle(lambda o: len(o.revisions(survey)) >= 2)
    assert sorted(outcome.revisions(survey)) == [1, 2]
    counted = outcome.counted(survey)
    assert counted is not None
    assert (counted.score, counted.service, counted.touchpoint_id) == (2, "tax", "tp-behaviour")
    # Keyed by touchpoint, in the partition where the metrics stage counts the touchpoint.
    assert {(p.key, p.partition) for p in outcome.ratings} == {
        (b"tp-behaviour", touchpoint_partition("tp-behaviour", join.partitions))
    }
    assert outcome.dead_letters == []


async def test_an_answer_before_its_survey_is_counted_once_the_survey_is_known(
    join: JoinHarness,
) -> None:
    """The two topics are read independently: an early answer waits for its survey."""
    now = datetime.now(UTC)
    (survey,) = _ids("early")
    await join.response(answer(survey, f"{survey}-1", 5, now))
    await join.survey_event(scheduled(survey, "tp-early", now))
    outcome = await join.settle(lambda o: o.counted(survey) is not None)
    assert list(outcome.revisions(survey)) == [1]
    counted = outcome.counted(survey)
    assert counted is not None
    assert counted.score == 5


async def test_unconfirmed_late_and_off_scale_answers_are_not_counted(join: JoinHarness) -> None:
    """Only a confirmed answer on the scale within the survey's life becomes a rating."""
    now = datetime.now(UTC)
    refused, counted = _ids("refused", "counted")
    await join.survey_event(scheduled(refused, "tp-refused", now))
    await join.response(answer(refused, f"{refused}-1", 3, now, confirmed=False))
    await join.response(answer(refused, f"{refused}-2", 3, now, after=EXPIRES_IN))
    await join.response(answer(refused, f"{refused}-3", 9, now))
    # A survey answered after all the others: once it is rated, they were all handled.
    await join.survey_event(scheduled(counted, "tp-refused", now))
    await join.response(answer(counted, f"{counted}-1", 1, now))
    outcome = await join.settle(lambda o: o.counted(counted) is not None)
    assert outcome.revisions(refused) == {}
    assert list(outcome.revisions(counted)) == [1]
    assert outcome.dead_letters == []


async def test_an_unreadable_answer_is_set_aside_and_the_answers_around_it_counted(
    join: JoinHarness,
) -> None:
    """A broken RatingReceived is a dead letter of the responses stage, with the reason."""
    now = datetime.now(UTC)
    before, after = _ids("before", "after")
    for survey in (before, after):
        await join.survey_event(scheduled(survey, "tp-broken", now))
    await join.response(answer(before, f"{before}-1", 3, now))
    await join.response(b'{"type": "RatingReceived", "survey_id": "s-x", "score": ')
    await join.response(b'{"type": "RatingReceived", "survey_id": "s-x", "score": "many"}')
    await join.response(answer(after, f"{after}-1", 4, now))
    outcome = await join.settle(
        lambda o: None not in (o.counted(before), o.counted(after)) and len(o.dead_letters) >= 2
    )
    assert len(outcome.dead_letters) == 2
    assert {letter.stage for letter in outcome.dead_letters} == {"responses"}
    codes = sorted(letter.reason_code for letter in outcome.dead_letters)
    assert codes[0] == "invalid_json"
    assert codes[1] != "invalid_json"
    assert all("many" not in letter.reason for letter in outcome.dead_letters)
