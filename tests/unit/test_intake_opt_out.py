"""The intake's citizen history: opt-outs through the internal topic are read as such."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.policy import CitizenHistory
from schemas.config import Settings
from schemas.samples import SAMPLES
from streams.runtime.model import Produce, Record
from streams.stages.intake import (
    OPT_OUT_RECORD,
    RECORD_HEADER,
    DecideContacts,
    ForwardOptOuts,
    is_opt_in,
    is_opt_out,
    with_opt_out,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


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


def _answer(kind: str) -> bytes:
    return SAMPLES[kind](NOW).model_dump_json().encode()


def _forwarded(kind: str) -> Produce:
    record = Record("palaute.responses.v1", 0, 0, b"s", _answer(kind))
    (produce,) = ForwardOptOuts().handle(record, NOW).produce
    return produce


def test_a_stop_and_a_resume_are_forwarded_to_the_citizen_each_marked_as_what_it_is() -> None:
    """ALOITA is an event as LOPETA is: both reach the citizen's history, told apart."""
    stop, resume = _forwarded("opt-out"), _forwarded("opt-in")
    assert stop.key == resume.key == SAMPLES["opt-in"](NOW).citizen_key.encode()  # type: ignore[attr-defined]
    assert is_opt_out(stop.headers)
    assert not is_opt_in(stop.headers)
    assert is_opt_in(resume.headers)
    assert not is_opt_out(resume.headers)
    rating = Record("palaute.responses.v1", 0, 0, b"s", _answer("rating-received"))
    assert ForwardOptOuts().handle(rating, NOW).produce == ()


def test_a_resume_after_a_stop_lets_the_next_contact_be_surveyed() -> None:
    """Without it, a citizen who once replied LOPETA could never be asked again."""
    settings = Settings.model_validate(
        {
            "secrets": {"pseudonymisation_key": "p" * 40, "link_signing_key": "l" * 40},
            "policy": {"episode_window": "0s", "frequency_cap": 10},
        }
    )
    stage = DecideContacts(settings)
    key = b"a" * 40
    stored: dict[str, str] = {}

    def feed(produce: Produce) -> None:
        record = Record("by-citizen", 0, 0, key, produce.value, tuple(produce.headers or ()))
        output = stage.handle(_View(stored), record, NOW)
        stored.update(
            {name: value for name, value in output.state.items() if isinstance(value, str)}
        )

    feed(_forwarded("opt-out"))
    assert CitizenHistory.from_json(stored[key.decode()]).opted_out
    feed(_forwarded("opt-in"))
    assert not CitizenHistory.from_json(stored[key.decode()]).opted_out
    before = dict(stored)
    feed(_forwarded("opt-in"))  # a repeated resume changes nothing
    assert stored == before


class _View:
    """The citizen-history table, as the stage sees it."""

    def __init__(self, stored: dict[str, str]) -> None:
        self._stored = stored

    def get(self, key: str) -> str | None:
        """Give the stored history, or None."""
        return self._stored.get(key)
