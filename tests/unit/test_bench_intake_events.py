"""The intake benchmark's events and its reading of Kafka's Java consumer tool."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from ops.kafka.errors import ToolRunError
from ops.kafka.tools import parse_consumer_performance
from palaute.bench.intake import TOUCHPOINTS, Plan, contact_events
from schemas.decoding import Rejected, decode_contact

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_generated_contacts_are_valid_distinct_and_varied() -> None:
    """A benchmark of rejected or identical events would measure a path real traffic never takes."""
    plan = Plan(events=2_000)
    records = contact_events(plan, NOW)
    assert len(records) == plan.events
    contacts = [decode_contact(value, now=NOW) for _, value in records]
    rejected = [c for c in contacts if isinstance(c, Rejected)]
    assert rejected == []
    assert (
        len({orjson.loads(value)["data"]["contact"]["id"] for _, value in records}) == plan.events
    )
    per_citizen = Counter(key for key, _ in records)
    assert max(per_citizen.values()) >= 3  # several contacts for some citizens
    touchpoints = {orjson.loads(value)["data"]["touchpoint"]["id"] for _, value in records}
    assert touchpoints == {t[0] for t in TOUCHPOINTS}
    consents = {
        tuple(orjson.loads(value)["data"]["citizen"]["consent"].values()) for _, value in records
    }
    assert len(consents) >= 4


def test_the_same_seed_makes_the_same_events() -> None:
    """Runs on different days compare like with like."""
    assert contact_events(Plan(events=50), NOW) == contact_events(Plan(events=50), NOW)


def test_consumer_performance_output_is_read_by_column_name() -> None:
    """The Java tool's rate is the denominator of c/b; reading the wrong column would skew it."""
    output = (
        "some log line\n"
        "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
        "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
        "2026-11-23 06:48:18:001, 2026-11-23 06:48:21:101, 101.4500, 32.7258, 200000, "
        "64516.1290, 2113, 987, 102.7862, 202634.2452\n"
    )
    result = parse_consumer_performance(output)
    assert result.records == 200_000
    assert result.fetch_records_per_second == pytest.approx(202_634.2452)
    assert result.records_per_second == pytest.approx(64_516.129)
    assert result.rebalance_ms == pytest.approx(2113)
    assert result.fetch_ms == pytest.approx(987)


def test_consumer_performance_without_a_result_line_is_an_error() -> None:
    """A tool that printed only warnings must not pass for a rate of zero."""
    with pytest.raises(ToolRunError, match="no result line"):
        parse_consumer_performance("WARN something\n")
