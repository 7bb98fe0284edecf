"""Metrics and alerts end to end: a real broker, ``palaute worker`` and ``palaute metrics rebuild``.

10,000 Rating events over 20 touchpoints and ten days, with changed answers,
replayed records and some sends. One touchpoint's mean drops from 4.3 to
3.4 halfway and recovers after a quarter of its ratings. The figures on the
metrics topic must equal a plain recomputation written here (not the
engine's), exactly one alert must fire, for that touchpoint, and resolve, and
the rebuild must publish the very same figures as the live path. The daily
counts on the history topic must equal the same plain recomputation per
Helsinki day, and the rebuild's recount must equal them too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.notifiers import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from palaute.commands import metrics as metrics_command
from schemas.alerts import ScoreDropAlert
from schemas.topics import (
    ALERTS,
    CONTACTS,
    DEADLETTER,
    HISTORY,
    METRICS,
    RATINGS,
    SURVEYS,
    VAULT,
)
from streams.partitioning import key_partition, touchpoint_partition
from tests.fixtures import RunTopics, start_worker, stop_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.integration

PARTITIONS = 4
TOUCHPOINTS = [f"tp-{n:02d}" for n in range(20)]
DROPPING = "tp-07"
CHANNELS = ["phone", "face-to-face", "digital"]
SERVICES = ["tax", "health", "housing"]
RATINGS_TOTAL = 10_000
#: Scores 1..5 with mean 4.30, and with mean 3.41 during the drop.
USUAL = [0.02, 0.03, 0.08, 0.37, 0.50]
DROPPED = [0.08, 0.14, 0.25, 0.35, 0.18]
WINDOWS = {"1h": 3_600, "24h": 86_400, "7d": 7 * 86_400, "28d": 28 * 86_400}
#: Per phase. Generous: a shared 2-core machine can be several times slower than an idle one.
DEADLINE_SECONDS = 300.0
SEED = 2
WEBHOOK_SECRET = b"integration-webhook-secret-0123456789abcdef"


@dataclass(frozen=True)
class Traffic:
    """The records produced, in order."""

    ratings: list[dict[str, Any]]
    sends: list[dict[str, Any]]


def _channel(touchpoint: str) -> str:
    return CHANNELS[int(touchpoint[3:]) % len(CHANNELS)]


def _service(touchpoint: str) -> str:
    return SERVICES[int(touchpoint[3:]) % len(SERVICES)]


def _rating(
    touchpoint: str, survey: str, *, revision: int, score: int, at: datetime, after: float
) -> dict[str, Any]:
    return {
        "type": "Rating",
        "rating_id": f"{survey}.r{revision}",
        "survey_id": survey,
        "revision": revision,
        "touchpoint_id": touchpoint,
        "service": _service(touchpoint),
        "touchpoint_channel": _channel(touchpoint),
        "survey_channel": "sms",
        "language": "fi",
        "scale": "csat-5",
        "score": score,
        "normalised": (score - 1) / 4,
        "answered_after_seconds": after,
        "answered_at": at.isoformat(),
    }


def traffic(end: datetime, seed: int = SEED) -> Traffic:
    """Build the ratings (time-ordered per touchpoint) and some sends, reproducibly."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    start = end - timedelta(days=10)
    per_touchpoint = RATINGS_TOTAL // len(TOUCHPOINTS)
    streams: dict[str, list[dict[str, Any]]] = {}
    sends: list[dict[str, Any]] = []
    for touchpoint in TOUCHPOINTS:
        records: list[dict[str, Any]] = []
        times = sorted(rng.uniform(0, 10 * 86_400) for _ in range(per_touchpoint))
        fresh = 0
        while len(records) < per_touchpoint:
            position = len(records)
            at = start + timedelta(seconds=times[position])
            share = position / per_touchpoint
            dropped = touchpoint == DROPPING and 0.5 <= share < 0.75
            weights = DROPPED if dropped else USUAL
            roll = rng.random()
            if fresh > 10 and roll < 0.03:
                earlier = records[rng.randrange(max(0, len(records) - 10), len(records))]
                score = rng.choices(range(1, 6), weights)[0]
                records.append(
                    _rating(
                        touchpoint,
                        earlier["survey_id"],
                        revision=earlier["revision"] + 1,
                        score=score,
                        at=at,
                        after=earlier["answered_after_seconds"] + 60.0,
                    )
                )
            elif fresh > 10 and roll < 0.04:
                records.append(dict(records[-1]))
            else:
                score = rng.choices(range(1, 6), weights)[0]
                after = math.exp(rng.uniform(math.log(30), math.log(86_400)))
                survey = f"{touchpoint}-s{fresh}"
                records.append(
                    _rating(
                        touchpoint, survey, revision=1, score=score, at=at, after=round(after, 3)
                    )
                )
                fresh += 1
                if int(touchpoint[3:]) < 3 and rng.random() < 0.4:
                    sends.append(_sent(touchpoint, f"sent-{survey}", at - timedelta(hours=1)))
        streams[touchpoint] = records
    # Interleave the touchpoints as they would arrive, keeping each one's order.
    merged = sorted(
        (record for records in streams.values() for record in records),
        key=lambda r: r["answered_at"],
    )
    return Traffic(merged, sends)


def _sent(touchpoint: str, survey: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "SurveySent",
        "survey_id": survey,
        "citizen_key": "a" * 64,
        "contact_id": f"c-{survey}",
        "touchpoint_id": touchpoint,
        "occurred_at": at.isoformat(),
        "channel": "sms",
    }


# The plain recomputation the worker's figures are checked against.


def _bucket(seconds: float, width: int) -> int:
    return math.floor(seconds) // width


def expected_figures(traffic_: Traffic) -> dict[str, dict[str, Any]]:
    """Recompute every figure from the records, without the engine's code."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for record in traffic_.ratings:
        owners = [
            f"touchpoint:{record['touchpoint_id']}",
            f"channel:{record['touchpoint_channel']}",
            f"service:{record['service']}",
        ]
        for owner in owners:
            current = latest.get((owner, record["survey_id"]))
            if current is None or current["revision"] < record["revision"]:
                latest[(owner, record["survey_id"])] = record
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for (owner, _), record in latest.items():
        by_owner.setdefault(owner, []).append(record)
    sent_by_owner: dict[str, list[float]] = {}
    for send in traffic_.sends:
        at = datetime.fromisoformat(send["occurred_at"]).timestamp()
        sent_by_owner.setdefault(f"touchpoint:{send['touchpoint_id']}", []).append(at)
    figures: dict[str, dict[str, Any]] = {}
    for owner, records in by_owner.items():
        times = [datetime.fromisoformat(r["answered_at"]).timestamp() for r in records]
        now = max([*times, *sent_by_owner.get(owner, [])])
        for label, length in WINDOWS.items():
            width = 300 if length <= 86_400 else 3_600
            last = _bucket(now, width)
            first = last - length // width + 1
            inside = [
                r for r, t in zip(records, times, strict=True) if first <= _bucket(t, width) <= last
            ]
            sent = [t for t in sent_by_owner.get(owner, []) if first <= _bucket(t, width) <= last]
            scores = [r["score"] for r in inside]
            figures[f"{owner}:{label}"] = {
                "count": len(scores),
                "mean": sum(scores) / len(scores) if scores else None,
                "distribution": {str(s): scores.count(s) for s in sorted(set(scores))},
                "csat_share": sum(s >= 4 for s in scores) / len(scores) if scores else None,
                "surveys_sent": len(sent),
                "as_of": now,
                "answer_times": sorted(r["answered_after_seconds"] for r in inside),
            }
    return figures


def expected_days(traffic_: Traffic) -> dict[str, dict[str, Any]]:
    """Recount each touchpoint's Helsinki days (the whole, ``all/all``), without the engine."""
    zone = ZoneInfo("Europe/Helsinki")
    latest: dict[str, dict[str, Any]] = {}
    for record in traffic_.ratings:
        current = latest.get(record["survey_id"])
        if current is None or current["revision"] < record["revision"]:
            latest[record["survey_id"]] = record
    days: dict[str, dict[str, Any]] = {}

    def day(record: dict[str, Any], field_name: str) -> dict[str, Any]:
        local = datetime.fromisoformat(record[field_name]).astimezone(zone).date().isoformat()
        key = f"{record['touchpoint_id']}|all|all|csat-5|d|{local}"
        return days.setdefault(key, {"scores": {}, "sent": 0})

    for record in latest.values():
        scores = day(record, "answered_at")["scores"]
        scores[str(record["score"])] = scores.get(str(record["score"]), 0) + 1
    for send in traffic_.sends:
        day(send, "occurred_at")["sent"] += 1
    return days


def _days_on(latest: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Give the whole-touchpoint days of a history topic, as :func:`expected_days` does."""
    return {
        key: {"scores": value["scores"], "sent": value["sent"]}
        for key, value in latest.items()
        if "|all|all|" in key and "|d|" in key
    }


def _matches(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    if actual["count"] != expected["count"]:
        return False
    if actual["distribution"] != expected["distribution"]:
        return False
    if actual["surveys_sent"] != expected["surveys_sent"]:
        return False
    if datetime.fromisoformat(actual["as_of"]).timestamp() != expected["as_of"]:
        return False
    if expected["mean"] is None:
        return actual["mean"] is None
    return bool(
        math.isclose(actual["mean"], expected["mean"], rel_tol=1e-9)
        and math.isclose(actual["csat_share"], expected["csat_share"], rel_tol=1e-9)
    )


def _all_match(latest: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> bool:
    return set(latest) >= set(expected) and all(_matches(latest[k], v) for k, v in expected.items())


def _mismatches(latest: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> str:
    wrong = [key for key in expected if key in latest and not _matches(latest[key], expected[key])]
    shown = [
        f"{key}: got {_brief(latest[key])}, expected {_brief(expected[key])}" for key in wrong[:3]
    ]
    missing = len(set(expected) - set(latest))
    return f"{missing} keys missing, {len(wrong)} differ: " + "; ".join(shown)


def _brief(figures: dict[str, Any]) -> dict[str, Any]:
    names = ("count", "mean", "csat_share", "surveys_sent", "as_of", "distribution")
    return {name: figures.get(name) for name in names}


def _median_close(actual: float, times: list[float]) -> bool:
    middle = len(times) // 2
    true = times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2
    # Log-spaced bins: within 4.5 % of a neighbouring answer time for an even count.
    low, high = times[(len(times) - 1) // 2], times[len(times) // 2]
    return low * 0.95 <= actual <= high * 1.05 or math.isclose(actual, true, rel_tol=0.05)


# Plumbing: topics, the worker, readers.


class LatestReader:
    """Read a topic from the start, keeping every record and the latest value per key."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.topic = topic
        self.records: list[Any] = []
        self.latest: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        """Assign every partition from the beginning."""
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def poll(self) -> None:
        """Take in whatever arrived."""
        batches = await self.consumer.getmany(timeout_ms=300, max_records=20_000)
        for batch in batches.values():
            for record in batch:
                self.records.append(record)
                if record.value is None:  # a tombstone
                    self.latest.pop(record.key.decode(), None)
                else:
                    self.latest[record.key.decode()] = json.loads(record.value)

    async def stop(self) -> None:
        """Close the consumer."""
        await self.consumer.stop()


def _config(tmp_path: Path, bootstrap: str, suffix: str, webhook: str) -> Path:
    path = tmp_path / "palaute.toml"
    path.write_text(
        f"""
[kafka]
bootstrap_servers = ["{bootstrap}"]

[secrets]
pseudonymisation_key = "integration-pseudonymisation-key-0123456789"
link_signing_key = "integration-link-signing-key-9876543210abc"

[streams]
topic_suffix = "{suffix}"
data_dir = "{tmp_path / "data"}"
partitions = {PARTITIONS}

[metrics]
emit_interval = "1s"

[alerts]
webhook_url = "{webhook}"
webhook_secret = "{WEBHOOK_SECRET.decode()}"
webhook_attempts = 3
""",
        encoding="utf-8",
    )
    return path


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


async def _produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, int | None]]
) -> None:
    """Send (key, value, partition) records; a partition of None is the default partitioner's."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value, partition in records:
            await producer.send(topic, key=key, value=value, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.fixture
def run_topics() -> RunTopics:
    """Create the metrics run's topics, and the one the rebuild writes to."""
    return RunTopics(
        bases=(CONTACTS, SURVEYS, VAULT, DEADLETTER, RATINGS, METRICS, ALERTS, HISTORY),
        internal=(),
        extra=(METRICS + "{suffix}-rebuilt", METRICS + "{suffix}-rebuilt.history"),
        partitions=PARTITIONS,
    )


async def _routed_touchpoints(bootstrap: str, suffix: str) -> set[str]:
    """Name the touchpoints whose ratings went through the metrics stage's internal topic."""
    reader = LatestReader(bootstrap, f"palaute{suffix}-metrics-by-key")
    await reader.start()
    try:
        ends = await reader.consumer.end_offsets(list(reader.consumer.assignment()))
        deadline = time.monotonic() + 120
        while [tp for tp, end in ends.items() if await reader.consumer.position(tp) < end]:
            assert time.monotonic() < deadline, "the internal topic could not be read to its end"
            await reader.poll()
    finally:
        await reader.stop()
    return {
        json.loads(r.value)["touchpoint_id"]
        for r in reader.records
        if b'"type":"Rating"' in r.value.replace(b" ", b"")
    }


def _alerts(records: list[Any]) -> list[ScoreDropAlert]:
    return [
        ScoreDropAlert.model_validate_json(r.value)
        for r in records
        if json.loads(r.value)["type"] == "ScoreDropAlert"
    ]


@pytest.mark.timeout(900)
@pytest.mark.slow
async def test_metrics_equal_a_recomputation_and_one_alert_fires_and_resolves(
    kafka_bootstrap: str, run_suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance of rolling metrics and drop alerts, on a real broker."""
    hooks = Hooks()
    async with _webhook_receiver(hooks) as webhook:
        config = _config(tmp_path, kafka_bootstrap, run_suffix, webhook)
        produced = traffic(datetime.now(UTC) - timedelta(hours=1))
        expected = expected_figures(produced)
        metrics, alerts = await _run_worker_twice(
            config, kafka_bootstrap, run_suffix, produced, hooks
        )
    history = await _history_settled(kafka_bootstrap, HISTORY + run_suffix, produced)

    # The final figures: every key and window, as recomputed here.
    assert len(expected) == (20 + 3 + 3) * len(WINDOWS)
    for key, figures in expected.items():
        actual = metrics.latest[key]
        assert _matches(actual, figures), key
        if figures["answer_times"]:
            assert _median_close(actual["median_answer_seconds"], figures["answer_times"]), key
    assert metrics.latest["touchpoint:tp-00:7d"]["response_rate"] is not None

    _check_alerts(_alerts(alerts.records), produced)
    # Delivered once per state, signed, although the worker restarted in between.
    delivered = [json.loads(body) for body in hooks.bodies]
    assert [(d["alert_id"], d["state"]) for d in delivered] == [
        (a.alert_id, a.state.value) for a in _alerts(alerts.records)
    ]
    assert all(hooks.verified)

    # Ratings written where they count were counted there; only the others were routed.
    routed = await _routed_touchpoints(kafka_bootstrap, run_suffix)
    misplaced = {
        touchpoint
        for touchpoint in TOUCHPOINTS
        if not _written_as_the_responses_stage_does(touchpoint)
        and key_partition(touchpoint.encode(), PARTITIONS)
        != touchpoint_partition(touchpoint, PARTITIONS)
    }
    assert misplaced, "the traffic should exercise the routed path"
    assert routed == misplaced

    # The rebuild publishes the same figures as the live path.
    rebuilt = await _rebuild(config, kafka_bootstrap, METRICS + run_suffix + "-rebuilt", capsys)
    assert f"{len(expected)} figures" in rebuilt.summary
    assert rebuilt.latest == metrics.latest
    # And recounts the very history the live path counted, every group, day and hour.
    assert f"recounted {len(history)} buckets" in rebuilt.summary
    recounted = await _read_latest(kafka_bootstrap, METRICS + run_suffix + "-rebuilt.history")
    assert recounted == history


async def _read_latest(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """Read a topic to its end; give the latest value per key."""
    reader = LatestReader(bootstrap, topic)
    await reader.start()
    try:
        ends = await reader.consumer.end_offsets(list(reader.consumer.assignment()))
        deadline = time.monotonic() + 120
        while [tp for tp, end in ends.items() if await reader.consumer.position(tp) < end]:
            assert time.monotonic() < deadline, f"{topic} could not be read to its end"
            await reader.poll()
    finally:
        await reader.stop()
    return reader.latest


async def _history_settled(
    bootstrap: str, topic: str, produced: Traffic
) -> dict[str, dict[str, Any]]:
    """Wait for the history topic's days to equal the plain recount; give every bucket."""
    expected = expected_days(produced)
    reader = LatestReader(bootstrap, topic)
    await reader.start()
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while _days_on(reader.latest) != expected:
            assert time.monotonic() < deadline, (
                f"{len(expected)} days expected, {len(_days_on(reader.latest))} on the topic"
            )
            await reader.poll()
        for _ in range(3):  # time for a wrong late record to show
            await reader.poll()
    finally:
        await reader.stop()
    assert _days_on(reader.latest) == expected
    return reader.latest


async def _run_worker_twice(
    config: Path, bootstrap: str, suffix: str, produced: Traffic, hooks: Hooks
) -> tuple[LatestReader, LatestReader]:
    """Half the ratings, a stop with the local store wiped, the rest: state from changelogs."""
    log = config.parent / "worker.log"
    expected = expected_figures(produced)
    metrics = LatestReader(bootstrap, METRICS + suffix)
    alerts = LatestReader(bootstrap, ALERTS + suffix)
    await metrics.start()
    await alerts.start()
    half = len(produced.ratings) // 2
    first = expected_figures(Traffic(produced.ratings[:half], produced.sends))
    worker = start_worker(config, log)
    try:
        await _produce(
            bootstrap,
            SURVEYS + suffix,
            [(s["citizen_key"].encode(), json.dumps(s).encode(), None) for s in produced.sends],
        )
        await _produce(bootstrap, RATINGS + suffix, _rating_records(produced.ratings[:half]))
        deadline = time.monotonic() + DEADLINE_SECONDS
        # Stopped once idle; tests/faults stops workers in mid-stream.
        while not _all_match(metrics.latest, first):
            assert worker.poll() is None, f"worker died:\n{_tail(log)}"
            assert time.monotonic() < deadline, _mismatches(metrics.latest, first)
            await metrics.poll()
        assert stop_process(worker) == 0, _tail(log)
        shutil.rmtree(config.parent / "data")
        await _produce(bootstrap, RATINGS + suffix, _rating_records(produced.ratings[half:]))
        worker = start_worker(config, log)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not _all_match(metrics.latest, expected):
            assert worker.poll() is None, f"worker died:\n{_tail(log)}"
            assert time.monotonic() < deadline, _mismatches(metrics.latest, expected)
            await metrics.poll()
            await alerts.poll()
        # Both deliveries (firing, resolved), and time for a wrong third one to show.
        for _ in range(5):
            await alerts.poll()
        while len(hooks.bodies) < len(_alerts(alerts.records)) and time.monotonic() < deadline:
            await alerts.poll()
    finally:
        returncode = stop_process(worker)
        await metrics.stop()
        await alerts.stop()
    assert returncode == 0, _tail(log)
    return metrics, alerts


def _written_as_the_responses_stage_does(touchpoint: str) -> bool:
    """Half the touchpoints: the others' ratings come by the default partitioner."""
    return int(touchpoint[3:]) % 2 == 0


def _rating_records(ratings: list[dict[str, Any]]) -> list[tuple[bytes, bytes, int | None]]:
    """Key each rating by touchpoint, some to the partition that counts it, as the join does."""
    return [
        (
            r["touchpoint_id"].encode(),
            json.dumps(r).encode(),
            touchpoint_partition(r["touchpoint_id"], PARTITIONS)
            if _written_as_the_responses_stage_does(r["touchpoint_id"])
            else None,
        )
        for r in ratings
    ]


@dataclass
class Hooks:
    """What the webhook receiver got, and whether each signature verified."""

    bodies: list[bytes] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)


@contextlib.asynccontextmanager
async def _webhook_receiver(hooks: Hooks) -> AsyncIterator[str]:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = signature(WEBHOOK_SECRET, request.headers[TIMESTAMP_HEADER], body)
        hooks.bodies.append(body)
        hooks.verified.append(hmac.compare_digest(expected, request.headers[SIGNATURE_HEADER]))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


def _check_alerts(everything: list[ScoreDropAlert], produced: Traffic) -> None:
    """Exactly one drop alert, for the right touchpoint: fired in the drop, resolved after it.

    The dropped scores have four times the 1s and 2s, so a polarisation alert for
    the same touchpoint is right too; no other touchpoint may have any alert.
    """
    assert {a.touchpoint_id for a in everything} == {DROPPING}
    found = [a for a in everything if a.kind.value == "drop"]
    polarised = [a for a in everything if a.kind.value == "polarisation"]
    assert len(found) + len(polarised) == len(everything)
    assert [(a.touchpoint_id, a.kind.value, a.state.value) for a in found] == [
        (DROPPING, "drop", "firing"),
        (DROPPING, "drop", "resolved"),
    ]
    assert found[0].alert_id == found[1].alert_id
    assert found[0].before is not None
    assert found[0].after is not None
    assert found[0].before - found[0].after > 0.5
    dropping = [r for r in produced.ratings if r["touchpoint_id"] == DROPPING]
    per_touchpoint = len(dropping)
    drop_start = datetime.fromisoformat(dropping[per_touchpoint // 2]["answered_at"])
    recovery_start = datetime.fromisoformat(dropping[per_touchpoint * 3 // 4]["answered_at"])
    assert drop_start <= found[0].started_at < recovery_start
    assert found[1].resolved_at is not None
    assert found[1].resolved_at >= recovery_start
    for alert in polarised:
        assert drop_start <= alert.started_at < recovery_start


@dataclass(frozen=True)
class Rebuilt:
    """What ``palaute metrics rebuild`` printed and wrote."""

    summary: str
    latest: dict[str, dict[str, Any]]


async def _rebuild(
    config: Path, bootstrap: str, topic: str, capsys: pytest.CaptureFixture[str]
) -> Rebuilt:
    """Run ``palaute metrics rebuild`` through its own argument parser, in a thread."""
    parser = argparse.ArgumentParser(prog="palaute")
    metrics_command.register(parser.add_subparsers())
    args = parser.parse_args(["metrics", "rebuild", "--config", str(config), "--to-topic", topic])
    capsys.readouterr()
    status = await asyncio.to_thread(args.handler, args)
    printed = capsys.readouterr()
    assert status == 0, printed.err
    summary = printed.out
    reader = LatestReader(bootstrap, topic)
    await reader.start()
    try:
        deadline = time.monotonic() + 120
        while len(reader.records) < int(summary.split()[1]) and time.monotonic() < deadline:
            await reader.poll()
    finally:
        await reader.stop()
    return Rebuilt(summary, reader.latest)
