"""The intake's citizen history: opt-outs through the internal topic, and when a batch stores it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from aiokafka.errors import KafkaTimeoutError

from engine.policy import CitizenHistory
from streams.intake import OPT_OUT_RECORD, RECORD_HEADER, _Batch, is_opt_out, with_opt_out

if TYPE_CHECKING:
    from faust.types import EventT


def test_only_records_marked_as_opt_outs_are_read_as_opt_outs() -> None:
    """A contact on the same internal topic must never be taken for an opt-out."""
    assert is_opt_out([(RECORD_HEADER, OPT_OUT_RECORD)])
    assert is_opt_out({RECORD_HEADER: OPT_OUT_RECORD})
    assert not is_opt_out([("content-type", b"application/json")])
    assert not is_opt_out([(RECORD_HEADER, b"contact")])
    assert not is_opt_out(None)


def test_an_opt_out_is_recorded_once_in_a_new_or_existing_history() -> None:
    """The next contact of the citizen is skipped; a repeated opt-out changes nothing."""
    fresh = with_opt_out(CitizenHistory())
    assert fresh is not None
    assert fresh.opted_out
    updated = with_opt_out(CitizenHistory().with_sent("s-1"))
    assert updated is not None
    assert updated == CitizenHistory().with_sent("s-1").with_opt_out()
    assert with_opt_out(updated) is None


def _sent(*, fails: bool = False) -> asyncio.Future[Any]:
    sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if fails:
        sent.set_exception(KafkaTimeoutError())
    else:
        sent.set_result(None)
    return sent


async def test_a_batch_stores_a_history_only_when_it_and_all_before_it_reached_the_broker() -> None:
    """A history stored ahead of its decision would make the replayed contact a duplicate."""
    batch = _Batch()
    events = [cast("EventT[bytes]", object()) for _ in range(6)]
    histories = [CitizenHistory().with_sent(f"s-{n}") for n in range(6)]
    batch.decided("a", events[0], histories[0], [_sent(), None])
    batch.decided("b", events[1], histories[1], [_sent(fails=True)])
    batch.decided("a", events[2], histories[2], [_sent(fails=True), _sent()])
    batch.decided("b", events[3], histories[3], [_sent()])
    batch.decided("c", events[4], histories[4], [])
    batch.decided("a", events[5], histories[5], [_sent()])
    assert batch.latest == {"a": histories[5], "b": histories[3], "c": histories[4]}
    outcomes = await asyncio.gather(*batch.sent, return_exceptions=True)
    assert len(outcomes) == 6
    # a: its second decision failed, so neither it nor the third is stored; b: nothing.
    assert batch.to_store(outcomes) == {
        "a": (events[0], histories[0]),
        "c": (events[4], histories[4]),
    }
    assert batch.failed_keys(outcomes) == {"a", "b"}


async def test_a_refused_publication_without_a_history_change_still_marks_its_citizen_failed() -> (
    None
):
    """A decision whose records the broker refused is decided again, not dropped with its offset."""
    batch = _Batch()
    events = [cast("EventT[bytes]", object()) for _ in range(2)]
    batch.decided("a", events[0], None, [_sent(fails=True)])
    batch.decided("b", events[1], None, [_sent()])
    outcomes = await asyncio.gather(*batch.sent, return_exceptions=True)
    assert batch.failed_keys(outcomes) == {"a"}
    assert batch.to_store(outcomes) == {}
    assert batch.latest == {}
