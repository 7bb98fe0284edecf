"""The demo's simulated traffic: what it sends must be what the engine reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engine.replies import OptOutRequest, Score, parse_reply
from palaute.demo import citizens
from palaute.demo.frontoffice import (
    BY_ID,
    CASE_TYPES,
    DEGRADED,
    TEAMS,
    FrontOffice,
    broken_records,
)
from palaute.demo.run import Ports, Tally, _record, _write_config
from schemas.base import Scale
from schemas.config import load_settings
from schemas.deadletter import DeadLetter
from schemas.decoding import Rejected, decode_contact

if TYPE_CHECKING:
    from pathlib import Path


def test_every_sms_reply_a_citizen_sends_reads_as_the_score_meant() -> None:
    """A reply the engine cannot read would silently lower the demo's answer rate."""
    rng = random.Random(5)  # noqa: S311 - reproducible simulated citizens, not secrets
    replies = [citizens.sms_reply(rng, 4.2, 1.0) for _ in range(3000)]
    sent = [reply for reply in replies if reply is not None]
    assert 0.55 < len(sent) / len(replies) < 0.75
    for reply in sent:
        parsed = parse_reply(reply.body, Scale.CSAT_5)
        if reply.score is not None:
            assert parsed == Score(reply.score), reply.body
        elif reply.body == "LOPETA":
            assert isinstance(parsed, OptOutRequest)
        else:
            assert not isinstance(parsed, Score), reply.body


def test_scores_centre_on_the_touchpoint_level_and_fall_when_degraded() -> None:
    """The detector must see a usual level near 4.2 and a drop to about 3."""
    rng = random.Random(9)  # noqa: S311 - reproducible simulated scores, not secrets
    usual = [citizens.score(rng, BY_ID[DEGRADED].mean) for _ in range(20_000)]
    degraded = [citizens.score(rng, citizens.DEGRADED_LEVEL) for _ in range(20_000)]
    assert 4.05 < sum(usual) / len(usual) < 4.3
    assert 2.75 < sum(degraded) / len(degraded) < 3.1
    assert set(usual) == {1, 2, 3, 4, 5}


def test_the_front_office_sends_valid_contacts_except_its_three_broken_records() -> None:
    """Every generated contact passes the intake's validation; the broken ones do not."""
    office = FrontOffice()
    now = datetime.now(UTC).replace(microsecond=0)
    seen = set()
    for _ in range(500):
        contact = office.next(now)
        decoded = decode_contact(contact.value, now=now)
        assert not isinstance(decoded, Rejected), decoded.reason
        seen.add(decoded.data.touchpoint.id)
        assert decoded.data.contact.context.team in TEAMS
        assert decoded.data.contact.context.case_type in CASE_TYPES
    assert len(seen) == len(BY_ID)
    for _, value in broken_records():
        assert isinstance(decode_contact(value, now=now), Rejected)


def test_the_generated_configuration_loads_with_every_touchpoint(tmp_path: Path) -> None:
    """A configuration error would stop the worker and web service at once."""
    ports = Ports("127.0.0.1:9092", 8080, "http://127.0.0.1:1234", 2525)
    settings = load_settings(_write_config(tmp_path, ports, ".demo-test"))
    assert set(settings.touchpoints) == set(BY_ID)
    assert settings.touchpoints["social-work-visit"].sensitive
    assert settings.alerts.csat_targets == {DEGRADED: 0.65}
    assert settings.policy.quiet_hours_start == settings.policy.quiet_hours_end
    assert settings.web.ops_token_sha256
    # The demo's contacts name these, so its breakdowns show every team by name.
    assert settings.breakdowns.teams == list(TEAMS)
    assert settings.breakdowns.case_types == list(CASE_TYPES)


def test_the_demo_counts_a_record_dead_lettered_twice_once() -> None:
    """A stage repeating a record after a restart writes its dead letter again: one record."""

    def letter(offset: int) -> list[tuple[str, bytes]]:
        return DeadLetter(
            stage="intake",
            source_topic="palaute.contacts.v1",
            source_partition=2,
            source_offset=offset,
            reason_code="invalid-json",
            reason="not JSON",
            failed_at=datetime(2026, 12, 7, tzinfo=UTC),
        ).to_headers()

    tally = Tally()
    for offset in (7, 7, 8):
        assert _record(tally, "palaute.deadletter.v1", b"{", letter(offset)) is None
    assert len(tally.dead_lettered) == 2
    assert set(tally.dead_lettered.values()) == {("intake", "invalid-json")}
