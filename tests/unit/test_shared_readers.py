"""The surveys topic has one reader for every stage that reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust

from streams import shared

if TYPE_CHECKING:
    from faust.types import EventT


async def _first(event: EventT[bytes]) -> None: ...


async def _second(event: EventT[bytes]) -> None: ...


async def _other(event: EventT[bytes]) -> None: ...


def test_stages_reading_one_topic_share_one_agent_and_keep_their_order() -> None:
    """Each agent on a topic costs faust's hand-over per record; one must do for all."""
    app = faust.App("shared-readers-test", broker="kafka://127.0.0.1:1")
    shared.read(app, "surveys", "palaute.surveys.v1", _first)
    shared.read(app, "surveys", "palaute.surveys.v1", _second)
    shared.read(app, "vault", "palaute.vault.v1", _other)
    assert sorted(app.agents) == ["surveys-reader", "vault-reader"]
    assert shared._READERS[app] == {
        "palaute.surveys.v1": [_first, _second],
        "palaute.vault.v1": [_other],
    }
    # Another app (a second worker in one process, as the tests run) has readers of its own.
    other = faust.App("shared-readers-test-2", broker="kafka://127.0.0.1:1")
    shared.read(other, "surveys", "palaute.surveys.v1", _second)
    assert shared._READERS[other] == {"palaute.surveys.v1": [_second]}
