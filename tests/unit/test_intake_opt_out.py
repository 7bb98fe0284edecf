"""The intake's citizen history: opt-outs through the internal topic are read as such."""

from __future__ import annotations

from engine.policy import CitizenHistory
from streams.stages.intake import OPT_OUT_RECORD, RECORD_HEADER, is_opt_out, with_opt_out


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
