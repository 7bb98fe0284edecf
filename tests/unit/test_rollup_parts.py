"""Roll-ups counted in parts, one per partition, and added up by the combining agent.

The live stage counts a channel's or a service's ratings in the partition of
each rating's touchpoint and adds the parts up; ``palaute metrics rebuild``
counts every rating in one ledger. These tests hold the two to the same
figures, and the parts rebuilt after a restart to the parts counted live.
"""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.partitioner import DefaultPartitioner

from engine.detection import new_detector
from engine.ledger import Ledger, Part, combined, recompute, rollup_owners
from engine.metrics import merge, new_state
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating
from streams.partitioning import key_partition
from streams.stages.metrics_mirrors import Ledgers
from streams.stages.metrics_rules import RECENT_RATINGS, DetectorEntry

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PARTITIONS = 4
CHANNELS = (TouchpointChannel.PHONE, TouchpointChannel.CHAT)


def rating(
    score: int,
    survey: str,
    *,
    touchpoint: str,
    channel: TouchpointChannel,
    revision: int = 1,
    at: datetime = NOW,
) -> Rating:
    return Rating(
        rating_id=f"{survey}.{revision}",
        survey_id=survey,
        revision=revision,
        touchpoint_id=touchpoint,
        service="tax",
        touchpoint_channel=channel,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=30.0 + score * 40,
        answered_at=at,
    )


def traffic(seed: int, count: int = 600) -> list[Rating]:
    """Ratings of 12 touchpoints over two months; a third of the surveys answered twice more.

    A survey's later revision is answered later, as a citizen changes an answer.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    surveys = count // 3
    asked = [NOW - timedelta(hours=rng.randint(0, 24 * 60)) for _ in range(surveys)]
    ratings = []
    for number in range(count):
        survey, revision = number % surveys, 1 + number // surveys
        ratings.append(
            rating(
                rng.randint(1, 5),
                f"s{survey}",
                touchpoint=f"tp-{survey % 12}",
                channel=CHANNELS[survey % 2],
                revision=revision,
                at=asked[survey] + timedelta(minutes=10 * revision),
            )
        )
    return ratings


def owner_partition(owner: str) -> int:
    return key_partition(owner.encode(), PARTITIONS)


def live_ledgers(ratings: list[Rating]) -> Ledgers:
    """Count as the metrics agent does: the touchpoint's ledger, then its roll-ups' parts."""
    ledgers = Ledgers([timedelta(hours=1), timedelta(days=7)], owner_partition)
    by_owner = ledgers.load([])
    for each in ratings:
        owner = f"touchpoint:{each.touchpoint_id}"
        if by_owner.setdefault(owner, Ledger(owner)).add_rating(each):
            ledgers.count_parts(each, owner_partition(owner))
    return ledgers


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_rollup_added_up_from_its_parts_has_the_figures_of_one_ledger(seed: int) -> None:
    """Parts hold disjoint surveys, so their counts add up to the whole, revisions included."""
    ratings = traffic(seed)
    ledgers = live_ledgers(ratings)
    for ledger in ledgers.parts.values():
        ledger.prune()  # what the stage does every PRUNE_EVERY changes
    expected = recompute(ratings, windows=ledgers.windows)
    owners = {owner for each in ratings for owner in rollup_owners(each)}
    assert owners == {"channel:phone", "channel:chat", "service:tax"}
    assert len({partition for _, partition in ledgers.parts}) > 1
    for owner in owners:
        parts = [
            Part.loads(found.dumps())
            for (name, _), ledger in ledgers.parts.items()
            if name == owner and (found := Part.of(ledger)) is not None
        ]
        for figures in combined(owner, parts).figures(ledgers.windows):
            assert figures == expected[f"{owner}:{figures.window}"]


def test_parts_rebuilt_from_the_touchpoint_entries_are_the_parts_counted_live() -> None:
    """After a restart the parts come from the ledger table, which stores touchpoints only."""
    ratings = traffic(7)
    live = live_ledgers(ratings)
    entries = [
        (f"{owner}|r|{survey_id}", stored.model_dump_json())
        for owner, ledger in (live.by_owner or {}).items()
        for survey_id, stored in ledger.ratings.items()
    ]
    # An entry of a roll-up key, as stored before parts: left out, not counted twice.
    entries.append(("channel:phone|r|s1", ratings[1].model_dump_json()))
    rebuilt = Ledgers(live.windows, owner_partition)
    rebuilt.load(entries)
    assert set(rebuilt.parts) == set(live.parts)
    assert rebuilt.dirty_parts == set(live.parts)
    for key, ledger in live.parts.items():
        assert Part.of(rebuilt.parts[key]) == Part.of(ledger), key
    assert "channel:phone" not in (rebuilt.by_owner or {})


def test_a_rating_its_touchpoint_does_not_count_is_not_in_the_rollups_either() -> None:
    """A replayed older revision changes neither the touchpoint nor its roll-ups."""
    first = rating(5, "s1", touchpoint="tp-1", channel=TouchpointChannel.PHONE, revision=2)
    older = rating(1, "s1", touchpoint="tp-1", channel=TouchpointChannel.PHONE, revision=1)
    ledgers = live_ledgers([first, older])
    [hour, *_] = ledgers.parts[("channel:phone", owner_partition("touchpoint:tp-1"))].figures()
    assert (hour.count, hour.mean) == (1, 5.0)
    assert recompute([first, older])["channel:phone:1h"].mean == pytest.approx(5.0)


def test_only_states_of_one_scale_add_up() -> None:
    """Roll-up keys carry their scale, so a mix means two keys were confused."""
    assert merge([]) is None
    with pytest.raises(ValueError, match="one scale"):
        merge([new_state(Scale.CSAT_5), new_state(Scale.NPS_11)])


def test_key_partition_is_the_producers_default_partitioner() -> None:
    """The stage sends to the partition it later rebuilds from: both must agree with Kafka's."""
    partitioner = DefaultPartitioner()
    for number in range(200):
        key = f"touchpoint:tp-{number}".encode()
        expected = partitioner(key, list(range(8)), list(range(8)))
        assert key_partition(key, 8) == expected


def test_a_detector_remembers_the_latest_rating_ids_only() -> None:
    """The set mirrors the list: an id that fell off the list is new again."""
    stored = DetectorEntry(new_detector("tp-1", Scale.CSAT_5), deque(maxlen=RECENT_RATINGS))
    for number in range(RECENT_RATINGS + 10):
        assert not stored.has_seen(f"r{number}")
        stored.remember(f"r{number}")
    assert stored.has_seen(f"r{RECENT_RATINGS + 9}")
    assert stored.has_seen("r10")
    assert not stored.has_seen("r9")
    assert stored.seen == set(stored.recent)
    reloaded = DetectorEntry.load(stored.dump(), "tp-1", Scale.CSAT_5)
    assert reloaded.seen == stored.seen
