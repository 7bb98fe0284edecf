"""Every topic a worker reads or writes exists, as documented, before its consumer joins.

A worker's consumer subscribes to its input topics when it starts. A topic
that does not exist yet is left out of the subscription ("Ignoring missing
topic") until the client's next metadata refresh, five minutes later, so a
first deployment (or a new ``topic_suffix``) decided nothing for five
minutes; and a topic created meanwhile by the first record written to it
(the broker's auto-creation) got the broker's default partitions, one.

``palaute worker`` therefore creates, before faust starts, every topic it
will touch: the public topics of :mod:`schemas.topics` with ``[streams]
partitions`` and their documented configs, the internal topics its agents
read (``<app id>-...``) and the changelogs of its tables, as faust would
declare them. Topics that exist are left as they are (a warning names one
with fewer partitions than documented: growing it would move keys between
partitions). When the worker may not create a topic (no ACL for it), it
stops with the list of what is missing and the commands that create it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, for_code

from connectors.kafka_client import client_options
from schemas import topics
from streams.runtime import kafka_plain

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from faust.types import AppT

    from schemas.config import KafkaConfig, Settings

log = logging.getLogger(__name__)

#: Segments close, and compaction may drop superseded values, after an hour on
#: topics holding contact details or comments (docs/privacy.md): with Kafka's
#: defaults a segment stays open for 7 days and the details with it.
PROMPT_COMPACTION: Final = {"segment.ms": "3600000", "max.compaction.lag.ms": "3600000"}
_PROMPTLY_COMPACTED: Final = frozenset({topics.VAULT, topics.COMMENTS})
#: Table changelogs that hold contact details (the scheduler's, while a survey is open).
_PROMPTLY_COMPACTED_TABLES: Final = frozenset({"survey-lifecycle"})

#: How long the worker tries to reach the broker and see its topics ready.
SETUP_TIMEOUT_SECONDS: Final = 120.0
_REQUEST_TIMEOUT_MS: Final = 30_000
_POLL_SECONDS: Final = 0.2
#: Another worker created it meanwhile: as good as created here.
_TOPIC_ALREADY_EXISTS: Final = 36


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """One topic as the worker needs it: name, partitions, replicas and configs."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str] = field(default_factory=dict)
    role: str = "public"

    def create_command(self) -> str:
        """Give the ``kafka-topics.sh`` line that creates the topic, for an operator."""
        configs = "".join(f" --config {key}={value}" for key, value in sorted(self.configs.items()))
        return (
            f"kafka-topics.sh --bootstrap-server <broker> --create --if-not-exists "
            f"--topic {self.name} --partitions {self.partitions} "
            f"--replication-factor {self.replication}{configs}"
        )


class TopicSetupError(RuntimeError):
    """The worker cannot start: topics it needs are missing and it may not create them."""


def public_topics(settings: Settings) -> list[TopicPlan]:
    """Plan the topics of schemas.topics with the run's suffix, partitions and replicas."""
    streams = settings.streams
    plans = []
    for spec in topics.TOPICS:
        configs = spec.configs()
        if spec.name in _PROMPTLY_COMPACTED:
            configs.update(PROMPT_COMPACTION)
        plans.append(
            TopicPlan(
                spec.name + streams.topic_suffix,
                spec.partitions or streams.partitions,
                streams.replication_factor,
                configs,
            )
        )
    return plans


def _faust_configs(topic: Any) -> dict[str, str]:
    """Give the configs faust would create a topic with (its aiokafka driver's rule)."""
    flags = sorted(
        flag
        for flag, wanted in (("compact", topic.compacting), ("delete", topic.deleting))
        if wanted
    )
    configs = {"cleanup.policy": ",".join(flags)} if flags else {}
    if topic.retention:
        configs["retention.ms"] = str(int(float(topic.retention) * 1000))
    configs.update({key: str(value) for key, value in (topic.config or {}).items()})
    return configs


def app_topics(app: AppT) -> list[TopicPlan]:
    """Plan the internal topics the app's stages read and the changelogs of their state.

    Read from the app as faust will declare them (and from the stages on the
    plain-aiokafka runtime), so that a stage that adds a topic or a table
    needs nothing here.
    """
    conf = app.conf
    plans: dict[str, TopicPlan] = {}

    def add(topic: Any, role: str, *, prompt: bool = False) -> None:
        configs = _faust_configs(topic)
        if prompt:
            configs.update(PROMPT_COMPACTION)
        for name in topic.topics:
            plans.setdefault(
                name,
                TopicPlan(
                    name,
                    topic.partitions or conf.topic_partitions,
                    topic.replicas or conf.topic_replication_factor,
                    configs,
                    role,
                ),
            )

    for agent in app.agents.values():
        channel = agent.channel
        if getattr(channel, "internal", False):
            add(channel, "internal")
    for table in app.tables.values():
        add(table.changelog_topic, "changelog", prompt=table.name in _PROMPTLY_COMPACTED_TABLES)
    for declared in kafka_plain.declared_topics(app):  # stages on the plain-aiokafka runtime
        plans.setdefault(
            declared.name,
            TopicPlan(
                declared.name,
                conf.topic_partitions,
                conf.topic_replication_factor,
                dict(declared.configs),
                declared.role,
            ),
        )
    if not conf.topic_disable_leader:
        # faust's leader election: one partition, named as faust's LeaderAssignor names it.
        name = f"{conf.id}-__assignor-__leader"
        plans.setdefault(name, TopicPlan(name, 1, conf.topic_replication_factor, {}, "leader"))
    return list(plans.values())


def worker_topics(app: AppT, settings: Settings) -> list[TopicPlan]:
    """Plan every topic a worker touches: public ones first, then the app's own."""
    plans = {plan.name: plan for plan in public_topics(settings)}
    for plan in app_topics(app):
        plans.setdefault(plan.name, plan)
    return list(plans.values())


@dataclass(slots=True)
class SetupReport:
    """What :func:`ensure_topics` found and did."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    #: Topics that exist with fewer partitions than planned: (name, found, planned).
    fewer_partitions: list[tuple[str, int, int]] = field(default_factory=list)


def _partitions(described: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    return {
        entry["topic"]: len(entry["partitions"])
        for entry in described
        if entry.get("error_code") == 0
    }


def _ready(described: Iterable[Mapping[str, Any]], names: set[str]) -> bool:
    """Tell whether every named topic is known to the broker and each partition has a leader."""
    seen = set()
    for entry in described:
        if entry["topic"] not in names:
            continue
        if entry["error_code"] != 0 or not entry["partitions"]:
            return False
        if any(part["error_code"] != 0 or part["leader"] < 0 for part in entry["partitions"]):
            return False
        seen.add(entry["topic"])
    return seen == names


async def _start(admin: AIOKafkaAdminClient, deadline: float) -> None:
    """Connect, trying again while the broker is not up yet (it may start after the worker)."""
    while True:
        try:
            await admin.start()
        except KafkaConnectionError:
            if time.monotonic() >= deadline:
                raise
            log.info("Kafka does not answer yet; trying again")
            await asyncio.sleep(1.0)
        else:
            return


def _missing_message(plans: list[TopicPlan], errors: Mapping[str, str]) -> str:
    lines = [
        (
            f"the worker cannot start: {len(plans)} topic(s) it needs do not exist and it "
            "may not create them. Create them (or grant the worker's principal CREATE on "
            "them), then start the worker again:"
        ),
    ]
    lines += [f"  {plan.name} ({plan.role}): {errors[plan.name]}" for plan in plans]
    lines.append("")
    lines += [plan.create_command() for plan in plans]
    return "\n".join(lines)


async def ensure_topics(
    kafka: KafkaConfig,
    plans: list[TopicPlan],
    *,
    timeout: float = SETUP_TIMEOUT_SECONDS,  # noqa: ASYNC109 - a deadline for several requests
) -> SetupReport:
    """Create the planned topics that do not exist and wait until every one has its leaders.

    Raises :class:`TopicSetupError` naming what is missing when the broker
    refuses to create a topic, and ``TimeoutError`` when it cannot be reached.
    """
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(
        **client_options(kafka, client_id_suffix="-topic-setup"),
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
    )
    await _start(admin, deadline)
    try:
        # Every topic at once: a metadata request that names a missing topic
        # may make the broker auto-create it with its default partitions.
        found = _partitions(await admin.describe_topics(None))
        report = SetupReport()
        missing = [plan for plan in plans if plan.name not in found]
        for plan in plans:
            if plan.name in found:
                report.existing.append(plan.name)
                if found[plan.name] < plan.partitions:
                    report.fewer_partitions.append((plan.name, found[plan.name], plan.partitions))
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=plan.name,
                        num_partitions=plan.partitions,
                        replication_factor=plan.replication,
                        topic_configs=dict(plan.configs),
                    )
                    for plan in missing
                ]
            )
            errors = {
                entry[0]: for_code(entry[1]).__name__
                for entry in response.topic_errors
                if entry[1] not in {0, _TOPIC_ALREADY_EXISTS}
            }
            refused = [plan for plan in missing if plan.name in errors]
            if refused:
                raise TopicSetupError(_missing_message(refused, errors))
            report.created = [plan.name for plan in missing]
        names = {plan.name for plan in plans}
        while not _ready(await admin.describe_topics(None), names):
            if time.monotonic() >= deadline:
                raise TimeoutError("the worker's topics have no leader yet")
            await asyncio.sleep(_POLL_SECONDS)
        return report
    finally:
        await admin.close()


def describe(report: SetupReport) -> list[str]:
    """Say what was created, and warn of topics with fewer partitions than documented."""
    lines = []
    if report.created:
        lines.append(f"created {len(report.created)} topic(s): {', '.join(report.created)}")
    lines += [
        f"warning: topic {name} has {found} partition(s), [streams] partitions is {planned}: "
        f"at most {found} worker(s) share its records. Adding partitions moves keys "
        "between them; see docs/deployment.md (Scaling workers)."
        for name, found, planned in report.fewer_partitions
    ]
    return lines
