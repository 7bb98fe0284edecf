"""The metrics, roll-up and alerting stages in memory, with a crash at any step: every rating once.

Hypothesis interleaves ratings of a few surveys of three touchpoints (with
replays, changed answers as new revisions, old revisions arriving late, and
ratings written to a partition other than their touchpoint's) with publish
and silence ticks, and picks crashes at any step of any stage's checkpoint.
After the runtime runs dry and publishes, the figures of every key equal a
plain recount of the distinct ratings (:func:`engine.ledger.recompute`), the
alerts are those of the same input without crashes, with the same ids, and
each alert state was notified, more than once only after a crash of the
alerting stage. The clock stands still, so silence ticks are handled and
never judged (a restarted worker waits a window before it judges, so
silence alerts depend on when crashes come: tests/unit/test_metrics_stages.py
judges silence).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.ledger import recompute
from schemas.alerts import ScoreDropAlert
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.contacts import TouchpointChannel
from schemas.metrics import TouchpointMetrics
from schemas.responses import Rating
from streams.partitioning import key_partition, touchpoint_partition
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.memory import STEPS, MemoryBroker, MemoryRuntime
from streams.runtime.model import Produce
from streams.stages.alerting import DeliverAlerts, Notify
from streams.stages.metrics import ALERTS, BY_KEY, METRICS, ROLLUP, CountMetrics
from streams.stages.metrics_rules import PUBLISH_TICK, SILENCE_TICK
from streams.stages.rollups import CombineRollups

if TYPE_CHECKING:
    from collections.abc import Sequence

    from streams.runtime.model import Stage

ROOT = Path(__file__).resolve().parents[2]
BASE = load_settings(ROOT / "examples" / "palaute.toml")
#: tp-0 has a CSAT target, so a run of low scores breaches it within the example sizes.
SETTINGS = BASE.model_copy(
    update={"alerts": BASE.alerts.model_copy(update={"csat_targets": {"tp-0": 0.8}})}
)
PARTITIONS = 3
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
TOPICS = {BY_KEY: "by-key", METRICS: "metrics", ALERTS: "alerts", ROLLUP: "rollup"}
TOPICS[DEADLETTER] = "dlq"
CHANNELS = (TouchpointChannel.PHONE, TouchpointChannel.CHAT)


def _partition_of(owner: str) -> int:
    return key_partition(owner.encode(), PARTITIONS)


def _rating(survey: int, revision: int) -> Rating:
    """Make a survey's revision; a later one is answered later, as the join publishes them.

    Half the surveys are tp-0's, and half of those score 1; a revision's
    score is fixed, so that a replay is the same record.
    """
    touchpoint = ("tp-0", "tp-0", "tp-1", "tp-2")[survey % 4]
    score = 1 if survey % 4 == 0 else 2 + (survey + revision) % 4
    return Rating(
        rating_id=f"s-{survey}.{revision}",
        survey_id=f"s-{survey}",
        revision=revision,
        touchpoint_id=touchpoint,
        service="tax",
        touchpoint_channel=CHANNELS[survey % 2],
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=Scale.CSAT_5.normalise(score),
        answered_after_seconds=60.0,
        answered_at=T0 + timedelta(minutes=survey, seconds=revision),
    )


ratings = st.builds(
    lambda survey, revision, astray: (
        "rating",
        _rating(survey, revision),
        # Only tp-2's ratings go astray: their order past the routing is not the
        # touchpoint's order any more, and tp-2 has no target and too few for a baseline.
        astray and survey % 4 == 3,
    ),
    st.integers(0, 79),
    st.integers(1, 3),
    st.booleans(),
)
events = st.one_of(
    ratings,
    ratings,
    ratings,
    ratings,
    st.just(("publish", None, False)),
    st.just(("silence", None, False)),
)
crashes = st.lists(st.sampled_from([False, False, False, False, True]), max_size=80)


class _Run:
    """The three stages on one in-memory broker, with the notifications they asked for."""

    def __init__(self, crash_at: Sequence[bool], batch_size: int) -> None:
        plan = iter(crash_at)

        def crash(stage: str, step: str) -> bool:
            assert step in STEPS
            return next(plan, False) and stage in {"metrics", "metrics-rollup", "alerting"}

        self.notified: list[tuple[str, str]] = []
        self.broker = MemoryBroker(partitions=PARTITIONS)
        self.runtime = MemoryRuntime(
            self.broker, batch_size=batch_size, clock=lambda: T0, crash=crash, perform=self.perform
        )
        metrics = CountMetrics(SETTINGS, ratings_topic="ratings", partition_of=_partition_of)
        windows = list(SETTINGS.metrics.windows)
        self.runtime.add(metrics, ("ratings", "by-key"), TOPICS)
        self.runtime.add(CombineRollups(windows, _partition_of), "rollup", TOPICS)
        self.runtime.add(DeliverAlerts(), "alerts", TOPICS)

    async def perform(self, stage: Stage, effects: Sequence[Any]) -> None:
        assert stage.name == "alerting"
        self.notified += [
            (e.alert.alert_id, e.alert.state.value) for e in effects if isinstance(e, Notify)
        ]

    def tick(self, value: bytes, topics: Sequence[str]) -> None:
        for topic in topics:
            for partition in range(PARTITIONS):
                self.broker.append(topic, Produce(topic, b"tick", value, partition))

    async def feed(self, sent: Sequence[tuple[str, Rating | None, bool]]) -> None:
        for kind, rating, astray in sent:
            if rating is not None:
                place = touchpoint_partition(rating.touchpoint_id, PARTITIONS)
                partition = (place + 1) % PARTITIONS if astray else place
                value = rating.model_dump_json().encode()
                self.broker.append(
                    "ratings", Produce("ratings", rating.touchpoint_id.encode(), value, partition)
                )
            elif kind == "publish":
                self.tick(PUBLISH_TICK, ("by-key", "rollup"))
            else:
                self.tick(SILENCE_TICK, ("by-key",))
        await self.runtime.run_until_idle()
        for _ in range(2):  # the parts, then their sums
            self.tick(PUBLISH_TICK, ("by-key", "rollup"))
            await self.runtime.run_until_idle()

    def figures(self) -> dict[str, TouchpointMetrics]:
        latest: dict[str, TouchpointMetrics] = {}
        for record in self.broker.records("metrics"):
            key = (record.key or b"").decode()
            latest[key] = TouchpointMetrics.model_validate_json(record.value or b"")
        return latest

    def alerts(self) -> set[tuple[str, str]]:
        found = [
            ScoreDropAlert.model_validate_json(r.value or b"")
            for r in self.broker.records("alerts")
        ]
        return {(alert.alert_id, alert.state.value) for alert in found}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sent=st.lists(events, max_size=120),
    crash_at=crashes,
    batch_size=st.integers(1, 12),
)
# A breach of tp-0's target, replays and a publish on the way, and crashes all along.
@example(
    sent=[
        *(("rating", _rating(survey, 1), False) for survey in range(80) if survey % 4 < 2),
        ("publish", None, False),
        *(("rating", _rating(survey, 1), False) for survey in range(0, 80, 8)),
        ("rating", _rating(3, 2), True),
    ],
    crash_at=[False, True] * 40,
    batch_size=5,
)
async def test_every_rating_is_counted_once_and_every_alert_is_the_same_across_crashes(
    sent: list[tuple[str, Rating | None, bool]],
    crash_at: list[bool],
    batch_size: int,
) -> None:
    """A crash at any step repeats work and never loses a rating or counts one twice."""
    crashing = _Run(crash_at, batch_size)
    await crashing.feed(sent)
    calm = _Run([], batch_size)
    await calm.feed(sent)

    distinct = [rating for _kind, rating, _astray in sent if rating is not None]
    expected = recompute(distinct, windows=SETTINGS.metrics.windows)
    assert crashing.figures() == expected
    assert crashing.broker.records("dlq") == []

    assert crashing.alerts() == calm.alerts()
    assert set(crashing.notified) == crashing.alerts()
    assert Counter(calm.notified) == Counter(dict.fromkeys(calm.alerts(), 1))
    repeats = len(crashing.notified) - len(set(crashing.notified))
    alerting_crashes = sum(crash.startswith("alerting") for crash in crashing.runtime.crashes)
    assert repeats <= alerting_crashes
