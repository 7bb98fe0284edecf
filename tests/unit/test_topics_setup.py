"""The topics a worker creates at start: every one it touches, as documented."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from schemas import topics
from schemas.config import load_settings
from streams.app import create_app
from streams.topics_setup import PROMPT_COMPACTION, public_topics, worker_topics

if TYPE_CHECKING:
    from schemas.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _settings(suffix: str) -> Settings:
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    streams = settings.streams.model_copy(update={"topic_suffix": suffix, "partitions": 6})
    return settings.model_copy(update={"streams": streams})


def test_public_topics_carry_the_suffix_partitions_and_documented_configs() -> None:
    """A topic made with other settings than the docs say breaks retention or erasure."""
    plans = {plan.name: plan for plan in public_topics(_settings("-t1"))}
    assert set(plans) == {spec.name + "-t1" for spec in topics.TOPICS}
    assert {plan.partitions for plan in plans.values()} == {1, 6}
    # The catalogue's versions are in the order of one partition.
    assert [name for name, plan in plans.items() if plan.partitions == 1] == [
        topics.CATALOGUE + "-t1"
    ]
    assert plans[topics.CATALOGUE + "-t1"].configs == {"cleanup.policy": "compact"}
    assert plans[topics.SURVEYS + "-t1"].configs == {"retention.ms": str(35 * 86_400_000)}
    vault = plans[topics.VAULT + "-t1"].configs
    assert vault == {"cleanup.policy": "compact", **PROMPT_COMPACTION}
    comments = plans[topics.COMMENTS + "-t1"].configs
    assert comments["cleanup.policy"] == "compact,delete"
    assert comments["segment.ms"] == PROMPT_COMPACTION["segment.ms"]


def test_a_worker_plans_its_internal_topics_and_changelogs_under_its_app_id() -> None:
    """A topic the worker reads that is missing at start costs five minutes of nothing."""
    settings = _settings("-t2")
    app = create_app(settings)
    plans = {plan.name: plan for plan in worker_topics(app, settings)}
    app_id = settings.streams.app_id + "-t2"
    read = {name for agent in app.agents.values() for name in agent.channel.topics}
    assert read <= set(plans), sorted(read - set(plans))
    changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    assert changelogs <= set(plans)
    assert all(plans[name].configs["cleanup.policy"] == "compact" for name in changelogs)
    lifecycle = plans[f"{app_id}-survey-lifecycle-changelog"].configs
    assert lifecycle["segment.ms"] == PROMPT_COMPACTION["segment.ms"]
    assert plans[f"{app_id}-contacts-by-citizen"].partitions == 6
    assert plans[f"{app_id}-__assignor-__leader"].partitions == 1


def test_the_command_for_a_missing_topic_creates_it_as_planned() -> None:
    """An operator without the worker's rights copies this line; it must be exact."""
    settings = load_settings(ROOT / "examples" / "palaute.toml")
    (vault,) = [plan for plan in public_topics(settings) if plan.name == topics.VAULT]
    command = vault.create_command()
    assert command.startswith("kafka-topics.sh --bootstrap-server <broker> --create ")
    assert f"--topic {topics.VAULT} --partitions {settings.streams.partitions} " in command
    assert "--config cleanup.policy=compact" in command
    assert "--config segment.ms=3600000" in command
