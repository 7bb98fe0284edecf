"""The history stage on the in-memory runtime, with crashes: its topic equals a recount.

Ratings (with later revisions, replays and old revisions arriving late, some
in another partition than their touchpoint's) and sends of a few touchpoints
are written where the worker writes them, the metrics stage hands them on and
the history stage counts them, with a crash injected at any step of either,
and the history topic's latest
record per key must be exactly what :func:`engine.history.recount` gives for
the same events: every changed answer counted once, every send once, nothing
lost to a crash and nothing counted twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.history import Counts, recount
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.contacts import TouchpointChannel
from schemas.history import HistoryCounts
from schemas.responses import Rating
from schemas.surveys import SurveySent
from streams.partitioning import key_partition
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.memory import STEPS, MemoryBroker, MemoryRuntime
from streams.runtime.model import Produce
from streams.stages.history import HISTORY, CountHistory
from streams.stages.metrics import ALERTS, BY_KEY, HISTORY_FEED, METRICS, ROLLUP, CountMetrics

PARTITIONS = 3
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "examples" / "palaute.toml")
TOPICS = {
    BY_KEY: "by-key",
    METRICS: "metrics",
    ALERTS: "alerts",
    ROLLUP: "rollup",
    HISTORY_FEED: "history-by-key",
    HISTORY: "history",
    DEADLETTER: "dlq",
}
ZONE = ZoneInfo("Europe/Helsinki")
START = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
TOUCHPOINTS = ("tp-a", "tp-b", "tp-c")
CITIZEN = "0" * 64


def partition_of(owner: str) -> int:
    """Where the metrics stage counts a key, as the worker computes it."""
    return key_partition(owner.encode(), PARTITIONS)


def _rating(survey: int, revision: int, score: int, minutes: int, email: bool) -> Rating:
    touchpoint = TOUCHPOINTS[survey % len(TOUCHPOINTS)]
    return Rating(
        rating_id=f"s-{survey}",
        survey_id=f"s-{survey}",
        revision=revision,
        touchpoint_id=touchpoint,
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.EMAIL if email else SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=30.0,
        answered_at=START + timedelta(minutes=minutes),
    )


def _sent(survey: int, minutes: int) -> SurveySent:
    return SurveySent(
        survey_id=f"s-{survey}",
        citizen_key=CITIZEN,
        contact_id=f"c-{survey}",
        touchpoint_id=TOUCHPOINTS[survey % len(TOUCHPOINTS)],
        occurred_at=START + timedelta(minutes=minutes),
        channel=SurveyChannel.SMS,
    )


events = st.lists(
    st.one_of(
        # The last element: written to another partition than the touchpoint's.
        st.tuples(st.just("rating"), st.integers(0, 8), st.integers(1, 3), st.booleans()),
        st.tuples(st.just("sent"), st.integers(0, 8), st.integers(0, 6 * 24 * 60)),
    ),
    max_size=40,
)
#: What each revision of each survey says is drawn once per example: a replay is the same record.
seeds = st.integers(0, 10**6)
crashes = st.lists(st.sampled_from([False, False, False, True]), max_size=40)


def _of(seed: int, survey: int, revision: int) -> Rating:
    """Give the rating a survey's revision is in this example (days and hours apart)."""
    score = (seed + survey * 7 + revision * 13) % 5 + 1
    minutes = (seed * 31 + survey * 997 + revision * 4001) % (6 * 24 * 60)
    return _rating(survey, revision, score, minutes, email=(seed + survey) % 2 == 0)


def _run(
    stream: list[tuple[int | str, ...]], crash_at: list[bool], seed: int = 0
) -> dict[str, Counts]:
    broker = MemoryBroker(partitions=PARTITIONS)
    plan = iter(crash_at)

    def crash(stage: str, step: str) -> bool:
        assert step in STEPS
        del stage
        return next(plan, False)

    runtime = MemoryRuntime(broker, batch_size=7, crash=crash)
    metrics = CountMetrics(
        SETTINGS, ratings_topic="ratings", partition_of=partition_of, feeds_history=True
    )
    history = CountHistory(
        partition_of=partition_of, time_zone=ZONE, scale_of=lambda _touchpoint: Scale.CSAT_5
    )
    runtime.add(metrics, ("ratings", "by-key"), TOPICS)
    runtime.add(history, "history-by-key", TOPICS)
    for event in stream:
        if event[0] == "rating":
            rating = _of(seed, int(event[1]), int(event[2]))
            partition = partition_of(f"touchpoint:{rating.touchpoint_id}")
            if len(event) > 3 and event[3]:  # astray
                partition = (partition + 1) % PARTITIONS
            value = rating.model_dump_json().encode()
            key = rating.touchpoint_id.encode()
            broker.append("ratings", Produce("ratings", key, value, partition))
        else:
            _, survey, minutes = event
            sent = _sent(int(survey), int(minutes))
            owner = f"touchpoint:{sent.touchpoint_id}"
            value = sent.model_dump_json().encode()
            broker.append("by-key", Produce("by-key", owner.encode(), value, partition_of(owner)))
    asyncio.run(runtime.run_until_idle())
    latest: dict[str, bytes | None] = {}
    for record in broker.records("history"):
        latest[(record.key or b"").decode()] = record.value
    published: dict[str, Counts] = {}
    for name, stored in latest.items():
        if stored is None:
            continue
        counts = HistoryCounts.model_validate_json(stored)
        assert counts.key == name
        published[name] = Counts({int(s): n for s, n in counts.scores.items()}, counts.sent)
    assert broker.records("dlq") == []
    return published


def _expected(stream: list[tuple[int | str, ...]], seed: int) -> dict[str, Counts]:
    ratings = []
    sends = []
    for event in stream:
        if event[0] == "rating":
            ratings.append(_of(seed, int(event[1]), int(event[2])))
        else:
            _, survey, minutes = event
            sent = _sent(int(survey), int(minutes))
            sends.append((sent.touchpoint_id, sent.survey_id, "sms", sent.occurred_at))
    # Each touchpoint's events are read in the order written; touchpoints are independent.
    return recount(ratings, sends, ZONE, lambda _tp: Scale.CSAT_5, now=START + timedelta(days=7))


@settings(max_examples=60, deadline=None)
@given(stream=events, crash_at=crashes, seed=seeds)
def test_the_history_topic_is_the_recount_of_what_was_written(
    stream: list[tuple[int | str, ...]], crash_at: list[bool], seed: int
) -> None:
    """Crashes at any step lose nothing and count nothing twice; revisions replace."""
    published = _run(stream, crash_at, seed)
    assert published == _expected(stream, seed)
    # And independently of the engine: each survey counts once, with its latest revision.
    latest: dict[int, tuple[int, int]] = {}
    for event in stream:
        if event[0] == "rating":
            rating = _of(seed, int(event[1]), int(event[2]))
            if rating.revision > latest.get(int(event[1]), (0, 0))[0]:
                latest[int(event[1])] = (rating.revision, rating.score)
    days: dict[int, int] = {}
    for key, counts in published.items():
        if "|all|all|csat-5|d|" in key:
            for score, n in counts.scores.items():
                days[score] = days.get(score, 0) + n
    wanted: dict[int, int] = {}
    for _revision, score in latest.values():
        wanted[score] = wanted.get(score, 0) + 1
    assert days == wanted


def test_a_changed_answer_moves_between_days_and_is_counted_once() -> None:
    """A revision on the next day takes the score back from the first day."""
    stream: list[tuple[int | str, ...]] = [
        ("rating", 0, 1),
        ("rating", 0, 1),  # replayed
        ("rating", 0, 2),  # changed, on another day
        ("rating", 0, 1),  # the old revision, late
    ]
    first, second = _of(0, 0, 1), _of(0, 0, 2)
    assert first.answered_at.date() != second.answered_at.date()
    published = _run(stream, [])
    days = {
        key.rsplit("|", 1)[1]: counts.scores
        for key, counts in published.items()
        if "|all|all|csat-5|d|" in key
    }
    assert days == {second.answered_at.astimezone(ZONE).date().isoformat(): {second.score: 1}}


def test_sends_are_counted_once_per_survey_in_the_whole_and_the_channel() -> None:
    """A send forwarded twice (a replay) is one send; its local day is Helsinki's."""
    stream: list[tuple[int | str, ...]] = [("sent", 0, 0), ("sent", 0, 0), ("sent", 3, 1)]
    published = _run(stream, [])
    sent = {key: counts.sent for key, counts in published.items() if "|d|" in key}
    assert sent == {
        "tp-a|all|all|csat-5|d|2026-11-20": 2,
        "tp-a|channel|sms|csat-5|d|2026-11-20": 2,
    }
