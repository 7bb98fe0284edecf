"""The worker's stall definition: records waiting and no progress, never "no records"."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from faust.types import TP

from connectors import telemetry
from connectors.telemetry import Telemetry
from schemas.config import load_settings
from streams.diagnostics import HANDLER_FAILED, StageCounts, StageFailures, stage_counts
from streams.web import (
    PartitionOffsets,
    PartitionWatch,
    idle_agents,
    idle_check_interval,
    note_idle_agents,
    stuck_agents,
    worker_health,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
STALLED_AFTER = timedelta(minutes=5)
CONTACTS = "palaute.contacts.v1"
RESPONSES = "palaute.responses.v1"


@pytest.mark.parametrize(
    ("offsets", "waiting"),
    [
        (PartitionOffsets(committed=120, highwater=120), 0),
        (PartitionOffsets(committed=None, highwater=0), 0),
        (PartitionOffsets(committed=100, highwater=120), 20),
        (PartitionOffsets(committed=None, highwater=7), 7),
        (PartitionOffsets(committed=-1, highwater=7), 7),
        # Retention deleted what was never processed: nothing can wait for it.
        (PartitionOffsets(committed=None, highwater=50, earliest=50), 0),
        (PartitionOffsets(committed=10, highwater=50, earliest=40), 10),
    ],
)
def test_records_waiting_are_those_between_the_committed_offset_and_the_end(
    offsets: PartitionOffsets, waiting: int
) -> None:
    """Lag decides whether an agent is idle; a wrong count hides or invents a stall."""
    assert offsets.waiting == waiting


def test_an_agent_with_a_record_waiting_is_not_idle_and_one_owning_nothing_is() -> None:
    """Only an agent with work waiting may be called stalled; one with nothing to do may not."""
    inputs = {"intake": {CONTACTS}, "answers": {RESPONSES}, "elsewhere": {"not-owned-here"}}
    partitions = {
        TP(CONTACTS, 0): PartitionOffsets(committed=5, highwater=5),
        TP(CONTACTS, 1): PartitionOffsets(committed=3, highwater=4),
        TP(RESPONSES, 0): PartitionOffsets(committed=9, highwater=9),
    }
    assert idle_agents(inputs, partitions) == ["answers", "elsewhere"]


def test_agents_reading_one_topic_share_its_waiting_records() -> None:
    """The topic's offset is committed for all its readers: none of them is idle while it lags."""
    inputs = {"surveys-a": {RESPONSES}, "surveys-b": {RESPONSES}}
    partitions = {TP(RESPONSES, 2): PartitionOffsets(committed=0, highwater=1)}
    assert idle_agents(inputs, partitions) == []


@pytest.mark.parametrize(
    ("state", "stalled", "recovering", "status", "body"),
    [
        ("running", [], False, 200, {"status": "ok"}),
        ("running", [], True, 200, {"status": "recovering"}),
        (
            "running",
            ["intake", "alerting"],
            False,
            503,
            {"status": "stalled", "stalled_agents": ["alerting", "intake"]},
        ),
        ("init", [], False, 503, {"status": "init"}),
        ("stopping", [], False, 503, {"status": "stopping"}),
        ("crashed", ["intake"], False, 503, {"status": "crashed"}),
    ],
)
def test_health_is_ok_only_while_running_without_a_stalled_agent(
    state: str, stalled: list[str], recovering: bool, status: int, body: dict[str, Any]
) -> None:
    """Probes restart on 503: it must name why, and never be given to a working worker."""
    health = worker_health(state, stalled=stalled, recovering=recovering)
    reason = health.body.pop("reason", None)
    assert (health.status, health.body) == (status, body)
    assert (reason is not None) == (status != 200), "an unhealthy answer says why"


def test_a_stage_failing_on_every_record_makes_the_worker_unhealthy_and_says_which() -> None:
    """A stage that sets every record aside has progress and no lag; only this shows it."""
    health = worker_health(
        "running",
        stalled=[],
        recovering=False,
        failing={"intake": 12},
        stalled_after=STALLED_AFTER,
    )
    assert health.status == 503
    assert health.body["status"] == "failing"
    assert health.body["failing_stages"] == {"intake": 12}
    assert "intake (12 failed)" in health.body["reason"]
    assert "300 s" in health.body["reason"]


def _counts(**stages: tuple[float, float]) -> dict[str, StageCounts]:
    return {stage: StageCounts(handled, failed) for stage, (handled, failed) in stages.items()}


def test_a_stage_is_failing_when_its_records_fail_and_none_is_handled_within_the_window() -> None:
    """The intake crashed on every record while /healthz said ok; a single bad record must not."""
    failures = StageFailures(STALLED_AFTER, NOW, threshold=5)
    failures.observe(NOW + timedelta(seconds=30), _counts(intake=(10, 0), metrics=(3, 0)))
    assert failures.failing() == {}
    # One odd record set aside among records handled: the stage works.
    failures.observe(NOW + timedelta(seconds=60), _counts(intake=(20, 1), metrics=(3, 0)))
    assert failures.failing() == {}
    # From now on the intake fails on everything it is given.
    failures.observe(NOW + timedelta(seconds=90), _counts(intake=(20, 4), metrics=(3, 0)))
    assert failures.failing() == {}, "below the threshold"
    failures.observe(NOW + timedelta(seconds=400), _counts(intake=(20, 30), metrics=(3, 0)))
    # Over the last 300 s (since the sample at 90 s): 26 failures, nothing handled.
    assert failures.failing() == {"intake": 26}
    # A record handled within the window clears it...
    failures.observe(NOW + timedelta(seconds=420), _counts(intake=(21, 31), metrics=(3, 0)))
    assert failures.failing() == {}
    failures.observe(NOW + timedelta(seconds=500), _counts(intake=(21, 40), metrics=(3, 0)))
    assert failures.failing() == {}, "the handled record is still within the window"
    # ...until it is older than the window while the failures go on.
    failures.observe(NOW + timedelta(seconds=800), _counts(intake=(21, 48), metrics=(3, 0)))
    assert failures.failing() == {"intake": 8}
    # A whole window without failures clears it too.
    failures.observe(NOW + timedelta(seconds=1200), _counts(intake=(21, 48), metrics=(3, 0)))
    assert failures.failing() == {}


def test_stage_counts_read_handled_records_and_handler_failures_only(tele: Telemetry) -> None:
    """A contact refused by validation is the record's fault, not a failing stage."""
    for _ in range(3):
        tele.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.OK)
    tele.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.DUPLICATE)
    tele.count_event(telemetry.Stage.INTAKE, telemetry.Outcome.DEAD_LETTERED)
    tele.record_dead_letter(telemetry.Stage.INTAKE, "invalid_event")
    for _ in range(2):
        tele.record_dead_letter(telemetry.Stage.METRICS, HANDLER_FAILED)
    counts = stage_counts([*tele.events.collect(), *tele.dead_letters.collect()], crashes={})
    assert counts == {"intake": StageCounts(4, 0), "metrics": StageCounts(0, 2)}


async def test_an_agent_that_keeps_crashing_makes_the_worker_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crashed agent is restarted after its record by faust: each crash skips a record."""
    from streams import diagnostics  # noqa: PLC0415 - its process-wide counter is replaced
    from streams.app import create_app  # noqa: PLC0415 - builds a faust app

    crashes: Counter[str] = Counter()
    monkeypatch.setattr(diagnostics, "_agent_crashes", crashes)
    app = create_app(load_settings(ROOT / "examples" / "palaute.toml"))
    failures = StageFailures(STALLED_AFTER, NOW, threshold=5)
    for _ in range(5):
        # faust calls this for every exception that ends an agent's loop.
        await app._on_agent_error(app.agents["dispatch-scheduler"], RuntimeError("bug"))
    failures.observe(NOW + timedelta(seconds=10), stage_counts([]))
    assert crashes == {"dispatch-scheduler": 5}
    assert failures.failing() == {"agent dispatch-scheduler": 5}


def test_the_failure_reason_code_is_the_one_containment_writes() -> None:
    """Were the two to drift apart, no failing stage would ever be seen."""
    from streams.runtime.deadletters import HANDLER_FAILED as WRITTEN  # noqa: PLC0415

    assert WRITTEN == HANDLER_FAILED


def test_idle_checks_come_several_times_per_stall_limit_and_at_most_30_seconds_apart() -> None:
    """A check per stall limit would let one late tick call a quiet agent stalled."""
    assert idle_check_interval(timedelta(minutes=5)) == 30.0
    assert idle_check_interval(timedelta(seconds=8)) == 2.0


@dataclass
class FakeConsumer:
    """The parts of faust's consumer the idle check reads."""

    committed: dict[TP, int | None]
    ends: dict[TP, int]
    firsts: dict[TP, int] = field(default_factory=dict)
    broken: bool = False

    @property
    def _committed_offset(self) -> Mapping[TP, int | None]:
        return self.committed

    def assignment(self) -> set[TP]:
        """Own every partition with a committed entry."""
        return set(self.committed)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        """Answer from ``ends``, or fail like an unreachable broker."""
        if self.broken:
            raise ConnectionError("broker unreachable")
        return {tp: self.ends[tp] for tp in partitions}

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        """Answer from ``firsts`` (0 when retention deleted nothing)."""
        return {tp: self.firsts.get(tp, 0) for tp in partitions}


def _app(consumer: FakeConsumer, *, rebalancing: bool = False) -> Any:
    agents = {
        "intake": SimpleNamespace(name="intake", channel=SimpleNamespace(topics=(CONTACTS,))),
        "answers": SimpleNamespace(name="answers", channel=SimpleNamespace(topics=(RESPONSES,))),
    }
    return SimpleNamespace(
        agents=agents, consumer=consumer, rebalancing=rebalancing, in_recovery=False
    )


@pytest.fixture
def tele(monkeypatch: pytest.MonkeyPatch) -> Telemetry:
    fresh = Telemetry(process_metrics=False)
    monkeypatch.setattr(telemetry, "_current", fresh)
    return fresh


async def test_a_quiet_worker_stays_healthy_long_after_its_last_record(tele: Telemetry) -> None:
    """Without idle progress every worker would be restarted after a quiet night."""
    tele.agent_progress("intake", NOW)
    consumer = FakeConsumer(
        committed={TP(CONTACTS, 0): 40, TP(RESPONSES, 0): None},
        ends={TP(CONTACTS, 0): 40, TP(RESPONSES, 0): 0},
    )
    later = NOW + 3 * STALLED_AFTER
    assert await note_idle_agents(_app(consumer), later) == ["answers", "intake"]
    assert tele.stalled_agents(later, STALLED_AFTER) == []
    assert tele.stalled_agents(later + STALLED_AFTER + timedelta(seconds=1), STALLED_AFTER) == [
        "answers",
        "intake",
    ]


async def test_an_agent_with_records_waiting_and_no_progress_is_named_stalled(
    tele: Telemetry,
) -> None:
    """The faust stall of issues 523 and 532: work waits, nothing moves, and /healthz says so."""
    tele.agent_progress("intake", NOW)
    tele.agent_progress("answers", NOW)
    consumer = FakeConsumer(
        committed={TP(CONTACTS, 0): 40, TP(RESPONSES, 0): 12},
        ends={TP(CONTACTS, 0): 41, TP(RESPONSES, 0): 12},
    )
    later = NOW + STALLED_AFTER + timedelta(seconds=1)
    assert await note_idle_agents(_app(consumer), later) == ["answers"]
    stalled = tele.stalled_agents(later, STALLED_AFTER)
    assert stalled == ["intake"]
    health = worker_health("running", stalled=stalled, recovering=False)
    assert health.status == 503
    assert health.body["stalled_agents"] == ["intake"]


async def test_records_lost_to_retention_do_not_count_as_waiting(tele: Telemetry) -> None:
    """An agent cannot be behind on records that no longer exist."""
    consumer = FakeConsumer(
        committed={TP(CONTACTS, 0): 10, TP(RESPONSES, 0): 0},
        ends={TP(CONTACTS, 0): 90, TP(RESPONSES, 0): 0},
        firsts={TP(CONTACTS, 0): 90},
    )
    assert await note_idle_agents(_app(consumer), NOW) == ["answers", "intake"]
    assert tele.stalled_agents(NOW, STALLED_AFTER) == []


async def test_an_unreachable_broker_claims_no_idle_progress(tele: Telemetry) -> None:
    """Unknown lag is not "nothing to do": no agent is noted as idle on a guess."""
    tele.agent_progress("intake", NOW)
    consumer = FakeConsumer(committed={TP(CONTACTS, 0): 40}, ends={}, broken=True)
    later = NOW + STALLED_AFTER + timedelta(seconds=1)
    assert await note_idle_agents(_app(consumer), later) == ["answers"]
    assert tele.stalled_agents(later, STALLED_AFTER) == ["intake"]


async def test_a_rebalancing_worker_notes_progress_for_every_agent(tele: Telemetry) -> None:
    """Agents wait for a rebalance; a restart would only start the rebuilding over."""
    tele.agent_progress("intake", NOW)
    consumer = FakeConsumer(committed={TP(CONTACTS, 0): 0}, ends={TP(CONTACTS, 0): 500})
    later = NOW + STALLED_AFTER + timedelta(seconds=1)
    assert await note_idle_agents(_app(consumer, rebalancing=True), later) == ["answers", "intake"]
    assert tele.stalled_agents(later, STALLED_AFTER) == []


def _lag(tele: Telemetry) -> dict[tuple[str, int], float]:
    """Read the published consumer lag, by topic and partition."""
    return {
        (sample.labels["topic"], int(sample.labels["partition"])): sample.value
        for metric in tele.consumer_lag.collect()
        for sample in metric.samples
    }


async def test_the_idle_check_publishes_the_lag_of_every_owned_input_partition(
    tele: Telemetry,
) -> None:
    """The consumer-lag alert reads this figure; without it the alert can never fire."""
    consumer = FakeConsumer(
        committed={TP(CONTACTS, 0): 40, TP(CONTACTS, 1): 3, TP(RESPONSES, 0): None},
        ends={TP(CONTACTS, 0): 40, TP(CONTACTS, 1): 10, TP(RESPONSES, 0): 0},
    )
    await note_idle_agents(_app(consumer), NOW)
    assert _lag(tele) == {(CONTACTS, 0): 0, (CONTACTS, 1): 7, (RESPONSES, 0): 0}
    consumer.committed[TP(CONTACTS, 1)] = 10
    await note_idle_agents(_app(consumer), NOW)
    assert _lag(tele)[(CONTACTS, 1)] == 0


async def test_the_lag_of_a_partition_given_up_in_a_rebalance_is_removed(tele: Telemetry) -> None:
    """Another worker reads it now; a last figure left here would keep a lag alert up."""
    consumer = FakeConsumer(
        committed={TP(CONTACTS, 0): 0, TP(CONTACTS, 1): 0},
        ends={TP(CONTACTS, 0): 1500, TP(CONTACTS, 1): 2000},
    )
    await note_idle_agents(_app(consumer), NOW)
    assert _lag(tele) == {(CONTACTS, 0): 1500, (CONTACTS, 1): 2000}
    del consumer.committed[TP(CONTACTS, 1)]
    # While rebalancing no offsets are read: what is still owned keeps its figure.
    await note_idle_agents(_app(consumer, rebalancing=True), NOW)
    assert _lag(tele) == {(CONTACTS, 0): 1500}
    del consumer.committed[TP(CONTACTS, 0)]
    await note_idle_agents(_app(consumer), NOW)
    assert _lag(tele) == {}


async def test_an_unreachable_broker_leaves_the_last_lag_in_place(tele: Telemetry) -> None:
    """A slow broker is no reason to hide a backlog from the lag alert."""
    consumer = FakeConsumer(committed={TP(CONTACTS, 0): 10}, ends={TP(CONTACTS, 0): 1200})
    await note_idle_agents(_app(consumer), NOW)
    consumer.broken = True
    await note_idle_agents(_app(consumer), NOW)
    assert _lag(tele) == {(CONTACTS, 0): 1190}


async def test_a_failure_to_publish_the_lag_costs_no_agent_its_idle_progress(
    tele: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lag is a figure; losing it must not get a quiet worker restarted as stalled."""

    def broken(_owned: object) -> None:
        raise RuntimeError("registry broken")

    monkeypatch.setattr(telemetry, "retain_consumer_lag", broken)
    tele.agent_progress("intake", NOW)
    consumer = FakeConsumer(committed={TP(CONTACTS, 0): 5}, ends={TP(CONTACTS, 0): 5})
    later = NOW + STALLED_AFTER + timedelta(seconds=1)
    assert await note_idle_agents(_app(consumer), later) == ["answers", "intake"]
    assert tele.stalled_agents(later, STALLED_AFTER) == []


async def test_the_web_service_health_names_its_stalled_follower_and_why(tele: Telemetry) -> None:
    """The web service's probe log must say what was wrong, not only that it was."""
    from aiohttp import web  # noqa: PLC0415 - only this test serves HTTP
    from aiohttp.test_utils import TestClient, TestServer  # noqa: PLC0415

    from connectors.web import health  # noqa: PLC0415
    from schemas.catalogue import Catalogue, LiveCatalogue  # noqa: PLC0415
    from schemas.config import TouchpointConfig  # noqa: PLC0415

    tele.agent_progress("open-surveys", datetime.now(UTC) - timedelta(minutes=10))
    app = web.Application()
    live = LiveCatalogue(Catalogue(defaults=TouchpointConfig(), touchpoints={}, version=7))
    health.setup(app, stalled_after=STALLED_AFTER, catalogue=live)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        answer = await client.get("/healthz")
        body = await answer.json()
    assert answer.status == 503
    assert body["stalled_agents"] == ["open-surveys"]
    assert "open-surveys" in body["reason"]
    assert body["catalogue_version"] == 7


def test_a_partition_whose_records_wait_unmoved_is_stuck_though_its_agent_progresses() -> None:
    """An agent busy on its other partitions notes progress; one partition may still never move."""
    watch = PartitionWatch()
    stuck, moving = TP(CONTACTS, 0), TP(CONTACTS, 1)
    for seconds in range(0, 400, 30):
        at = NOW + timedelta(seconds=seconds)
        watch.observe(
            at,
            {
                stuck: PartitionOffsets(committed=10, highwater=50),
                moving: PartitionOffsets(committed=100 + seconds, highwater=5000),
            },
        )
        if seconds <= STALLED_AFTER.total_seconds():
            assert watch.stuck_topics(at, STALLED_AFTER) == set()
    assert watch.stuck_topics(at, STALLED_AFTER) == {CONTACTS}
    inputs = {"intake": {CONTACTS}, "answers": {RESPONSES}}
    assert stuck_agents(inputs, watch.stuck_topics(at, STALLED_AFTER)) == ["intake"]
    # Once it moves, or nothing waits, or it is no longer owned, it is not stuck.
    later = at + timedelta(seconds=30)
    watch.observe(later, {stuck: PartitionOffsets(committed=11, highwater=50)})
    assert watch.stuck_topics(later, STALLED_AFTER) == set()
    watch.observe(later + STALLED_AFTER * 2, {stuck: PartitionOffsets(committed=50, highwater=50)})
    assert watch.stuck_topics(later + STALLED_AFTER * 3, STALLED_AFTER) == set()


def test_a_partition_whose_offsets_are_unknown_keeps_its_watch() -> None:
    """A broker too slow to answer once neither hides nor invents a stuck partition."""
    watch = PartitionWatch()
    tp = TP(CONTACTS, 0)
    watch.observe(NOW, {tp: PartitionOffsets(committed=0, highwater=5)})
    watch.observe(NOW + timedelta(minutes=3), {tp: None})
    assert watch.stuck_topics(NOW + timedelta(minutes=6), STALLED_AFTER) == {CONTACTS}
    watch.forget()
    assert watch.stuck_topics(NOW + timedelta(minutes=6), STALLED_AFTER) == set()


async def test_the_idle_check_feeds_the_partition_watch_and_forgets_it_in_a_rebalance(
    tele: Telemetry,
) -> None:
    """After a rebalance the offsets are new; an old wait must not make a stall."""
    consumer = FakeConsumer(committed={TP(CONTACTS, 0): 0}, ends={TP(CONTACTS, 0): 9})
    watch = PartitionWatch()
    await note_idle_agents(_app(consumer), NOW, watch)
    assert watch.stuck_topics(NOW + timedelta(minutes=6), STALLED_AFTER) == {CONTACTS}
    await note_idle_agents(_app(consumer, rebalancing=True), NOW + timedelta(minutes=1), watch)
    assert watch.stuck_topics(NOW + timedelta(minutes=6), STALLED_AFTER) == set()
    assert tele.stalled_agents(NOW, STALLED_AFTER) == []
