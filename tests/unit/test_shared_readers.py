"""Each topic that several stages read has one reader for all of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import faust

from connectors import telemetry
from schemas.config import load_settings
from schemas.topics import TopicNames
from streams import shared
from streams.app import create_app
from streams.containment import Containment
from streams.producer import DirectProducer

if TYPE_CHECKING:
    from faust.types import EventT


ROOT = Path(__file__).resolve().parents[2]


async def _first(event: EventT[bytes]) -> None: ...


async def _second(event: EventT[bytes]) -> None: ...


async def _other(event: EventT[bytes]) -> None: ...


def test_stages_reading_one_topic_share_one_agent_and_keep_their_order() -> None:
    """Each agent on a topic costs faust's hand-over per record; one must do for all."""
    app = faust.App("shared-readers-test", broker="kafka://127.0.0.1:1")
    guard = Containment(DirectProducer(app), "dlq", telemetry.Stage.METRICS)
    shared.read(app, "surveys", "palaute.surveys.v1", _first, guard)
    shared.read(app, "surveys", "palaute.surveys.v1", _second, guard)
    shared.read(app, "vault", "palaute.vault.v1", _other, guard)
    assert sorted(app.agents) == ["surveys-reader", "vault-reader"]
    assert shared._READERS[app] == {
        "palaute.surveys.v1": [(_first, guard), (_second, guard)],
        "palaute.vault.v1": [(_other, guard)],
    }
    # Another app (a second worker in one process, as the tests run) has readers of its own.
    other = faust.App("shared-readers-test-2", broker="kafka://127.0.0.1:1")
    shared.read(other, "surveys", "palaute.surveys.v1", _second, guard)
    assert shared._READERS[other] == {"palaute.surveys.v1": [(_second, guard)]}


def test_the_worker_reads_each_shared_topic_with_one_agent() -> None:
    """A stage reading a topic another stage reads is a handler on its reader, not an agent."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    names = TopicNames.with_suffix("")
    app = create_app(settings)
    readers: dict[str, list[str]] = {}
    for name, agent in app.agents.items():
        for topic in agent.channel.topics:
            readers.setdefault(topic, []).append(name)
    assert readers[names.surveys] == ["surveys-reader"]
    assert readers[names.responses] == ["responses-reader"]
    assert {topic: agents for topic, agents in readers.items() if len(agents) > 1} == {}
    handlers = shared._READERS[app]
    # The intake's opt-outs, the answers join and the scheduler, in registration order.
    assert [h.__module__ for h, _guard in handlers[names.responses]] == [
        "streams.intake",
        "streams.responses",
        "streams.dispatch",
    ]
    # Each handler is contained under its own stage's name.
    assert [guard.stage for _h, guard in handlers[names.responses]] == [
        telemetry.Stage.INTAKE,
        telemetry.Stage.RESPONSES,
        telemetry.Stage.SCHEDULER,
    ]
