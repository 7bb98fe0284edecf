"""Each topic that several stages read has one reader for all of them."""

from __future__ import annotations

from pathlib import Path

import faust

from schemas.config import load_settings
from schemas.topics import TopicNames
from streams import shared
from streams.app import create_app
from streams.stages.responses import ForwardSurveys

ROOT = Path(__file__).resolve().parents[2]


def test_stages_reading_one_topic_share_one_agent_and_keep_their_order() -> None:
    """Each agent on a topic costs faust's hand-over per record; one must do for all."""
    app = faust.App("shared-readers-test", broker="kafka://127.0.0.1:1")
    first, second = ForwardSurveys(), ForwardSurveys()
    shared.forward(app, "surveys", "palaute.surveys.v1", first, topics={"x": "t"}, deadletter="d")
    shared.forward(app, "surveys", "palaute.surveys.v1", second, topics={"y": "u"}, deadletter="d")
    shared.forward(app, "vault", "palaute.vault.v1", first, topics={}, deadletter="d")
    assert sorted(app.agents) == ["surveys-reader", "vault-reader"]
    readers = shared._READERS[app]
    assert readers["palaute.surveys.v1"].parts == [first, second]
    assert readers["palaute.surveys.v1"].topics == {"deadletter": "d", "x": "t", "y": "u"}
    assert readers["palaute.vault.v1"].parts == [first]
    # Another app (a second worker in one process, as the tests run) has readers of its own.
    other = faust.App("shared-readers-test-2", broker="kafka://127.0.0.1:1")
    shared.forward(other, "surveys", "palaute.surveys.v1", second, topics={}, deadletter="d")
    assert shared._READERS[other]["palaute.surveys.v1"].parts == [second]


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
    assert sorted([part.label for part in shared_readers[names.responses].parts]) == [
        "intake",
        "responses",
        "scheduler",
    ]
    assert sorted([part.label for part in shared_readers[names.surveys].parts]) == [
        "metrics",
        "responses",
        "scheduler",
    ]
