"""The scheduler's own records on its internal topic: ticks that name their run, and echoes."""

from __future__ import annotations

import pytest

from streams.stages.dispatch_records import ECHO_HEADER, is_echo, tick_run, tick_value


def test_a_tick_names_the_run_that_wrote_it() -> None:
    assert tick_run(tick_value("a1b2")) == "a1b2"
    assert tick_run(tick_value("a1b2")) != tick_run(tick_value("c3d4"))


@pytest.mark.parametrize(
    "value",
    [b'{"type":"SchedulerTick"}', b'{"type":"SchedulerTick","run":7}', b'{"type":"SchedulerTick"x'],
)
def test_a_tick_of_an_earlier_version_or_damaged_belongs_to_no_run(value: bytes) -> None:
    assert tick_run(value) == ""


@pytest.mark.parametrize("value", [None, b"", b'{"type":"SurveySent"}', b"SchedulerTick"])
def test_anything_else_is_not_a_tick(value: bytes | None) -> None:
    assert tick_run(value) is None


def test_an_echo_is_known_by_its_header_in_either_shape() -> None:
    assert is_echo([(ECHO_HEADER, b"1")])
    assert is_echo({ECHO_HEADER: b"1"})
    assert not is_echo([("palaute.dlq.reason", b"x")])
    assert not is_echo(None)
    assert not is_echo([])
