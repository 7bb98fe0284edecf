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
from streams.stages.responses import ForwardSurveys

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
    shared.forward(
        app, "surveys", "palaute.surveys.v1", ForwardSurveys(), topics={"x": "t"}, deadletter="dlq"
    )
    shared.read(app, "surveys", "palaute.surveys.v1", _second, guard)
    shared.read(app, "vault", "palaute.vault.v1", _other, guard)
    assert sorted(app.agents) == ["surveys-reader", "vault-reader"]
    readers = shared._READERS[app]
    assert readers["palaute.surveys.v1"].handlers == [(_first, guard), (_second, guard)]
    assert [type(p) for p in readers["palaute.surveys.v1"].fanout.parts] == [ForwardSurveys]
    assert readers["palaute.surveys.v1"].fanout.topics == {"deadletter": "dlq", "x": "t"}
    assert readers["palaute.vault.v1"].handlers == [(_other, guard)]
    # Another app (a second worker in one process, as the tests run) has readers of its own.
    other = faust.App("shared-readers-test-2", broker="kafka://127.0.0.1:1")
    shared.read(other, "surveys", "palaute.surveys.v1", _second, guard)
    assert shared._READERS[other]["palaute.surveys.v1"].handlers == [(_second, guard)]
    assert shared._READERS[other]["palaute.surveys.v1"].fanout.parts == []


def _labels(reader: shared.Reader) -> list[str]:
    return [part.label for part in reader.fanout.parts] + [
        guard.stage.value for _handler, guard in reader.handlers
    ]


def test_the_worker_reads_each_shared_topic_with_one_agent() -> None:
    """A stage reading a topic another stage reads is a part of its reader, not an agent."""
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
    shared_readers = shared._READERS[app]
    # The intake's opt-outs, the answers join and the scheduler, each under its own label.
    assert sorted(_labels(shared_readers[names.responses])) == [
        "intake",
        "responses",
        "scheduler",
    ]
    assert sorted(_labels(shared_readers[names.surveys])) == ["metrics", "responses", "scheduler"]
