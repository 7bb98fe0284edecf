"""The plain-aiokafka runtime inside the worker: started and stopped with the faust app.

:func:`run_stage` adds a stage to the app's one :class:`PlainRuntime`, a
service of the faust app (same process, same event loop), which starts
after faust's own tables are recovered and stops with the app. Each stage
reads its input in a consumer group of its own, ``<app id>-<stage name>``;
all of them produce through one idempotent producer. The clients are built
from :func:`connectors.kafka_client.client_options`, as every other client
of Palaute, and take the group timeouts of faust's settings (``broker_*``,
which the environment may set), so they behave in a group as faust's
consumer does.

**Moving a stage off faust.** Its group is new, so it has no committed
offsets. On assignment a partition with no committed offset in the stage's
group starts from the offset the faust group (the app id) committed for it,
if any (:func:`seed_from_group`), and from the log's start otherwise. The
stage's state keeps faust's changelog topic and record format
(:mod:`streams.runtime.kafka_plain.store`).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from mode import Service

from connectors.kafka_client import client_options
from streams.runtime.kafka_plain.runner import StageRunner
from streams.runtime.kafka_plain.store import ChangelogStore, changelog_topic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    import faust
    from aiokafka.structs import TopicPartition
    from faust.types import AppT

    from schemas.config import KafkaConfig, Settings
    from streams.runtime.model import Stage

log = logging.getLogger(__name__)

#: The largest produce batch per partition (below the broker's 1 MiB message limit).
PRODUCER_MAX_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class DeclaredTopic:
    """A topic the stages need besides the public ones: an internal input or a changelog."""

    name: str
    role: str
    configs: Mapping[str, str]


class PlainRuntime(Service):
    """The worker's stages on plain aiokafka: their consumers and their one producer."""

    def __init__(self, app: faust.App, kafka: KafkaConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._app = app
        self._kafka = kafka
        self.runners: list[StageRunner] = []
        self.declared: list[DeclaredTopic] = []
        self._producer: AIOKafkaProducer | None = None

    def producer(self) -> AIOKafkaProducer:
        """Give the runtime's producer (started with the runtime)."""
        assert self._producer is not None, "the plain runtime is not started"  # noqa: S101
        return self._producer

    def consumer(self, *, group_id: str | None, client_id_suffix: str) -> AIOKafkaConsumer:
        """Make a consumer that commits only explicitly, with faust's group timeouts."""
        conf = self._app.conf
        return AIOKafkaConsumer(
            **client_options(self._kafka, client_id_suffix=client_id_suffix),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(conf.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000),
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000),
            max_poll_interval_ms=int((conf.broker_max_poll_interval or 300.0) * 1000),
            request_timeout_ms=int(conf.broker_request_timeout * 1000),
        )

    async def on_start(self) -> None:
        """Start the producer, then every stage."""
        self._producer = AIOKafkaProducer(
            **client_options(self._kafka, client_id_suffix="-stages"),
            enable_idempotence=True,
            acks="all",
            # Each stage sends a whole batch before it waits, so a batch fills without a linger.
            linger_ms=0,
            max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        )
        await self._producer.start()
        for runner in self.runners:
            await runner.start()

    async def on_stop(self) -> None:
        """Stop every stage (the batch in hand first), then flush and stop the producer."""
        for runner in self.runners:
            await runner.stop()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


_RUNTIMES: weakref.WeakKeyDictionary[faust.App, PlainRuntime] = weakref.WeakKeyDictionary()


def runtime_of(app: faust.App, kafka: KafkaConfig) -> PlainRuntime:
    """Give the app's plain runtime, adding it as a service of the app the first time."""
    runtime = _RUNTIMES.get(app)
    if runtime is None:
        runtime = _RUNTIMES[app] = PlainRuntime(app, kafka, loop=app.loop, beacon=app.beacon)
        # faust's service() is typed for classes; an instance is started just the same.
        app.service(cast("Any", runtime))
    return runtime


def _registered(app: AppT) -> PlainRuntime | None:
    try:
        return _RUNTIMES.get(cast("faust.App", app))
    except TypeError:  # not an app (a test's stand-in, which cannot be weakly referred to)
        return None


def declared_topics(app: AppT) -> list[DeclaredTopic]:
    """List the internal inputs and changelogs of the app's plain stages, for the topic setup."""
    runtime = _registered(app)
    return [] if runtime is None else list(runtime.declared)


def stage_inputs(app: AppT) -> dict[str, frozenset[str]]:
    """Map each of the app's stages on plain aiokafka to the topic it reads.

    They report progress and lag as faust's agents do, under these names.
    """
    runtime = _registered(app)
    runners = [] if runtime is None else runtime.runners
    return {runner.stage.name: frozenset({runner.source}) for runner in runners}


def owned_partitions(app: AppT) -> list[tuple[str, int]]:
    """List the input partitions the app's plain stages own (their lag is theirs to publish)."""
    runtime = _registered(app)
    runners = [] if runtime is None else runtime.runners
    return [(tp.topic, tp.partition) for runner in runners for tp in runner.owned()]


def seed_from_group(
    kafka: KafkaConfig, group: str
) -> Callable[[AIOKafkaConsumer, set[TopicPartition]], Any]:
    """Start partitions the stage's group never committed where ``group`` left them."""

    async def seed(consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        fresh = [tp for tp in sorted(assigned) if await consumer.committed(tp) is None]
        if not fresh:
            return
        admin = AIOKafkaAdminClient(**client_options(kafka, client_id_suffix="-offsets"))
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(group, partitions=fresh)
        finally:
            await admin.close()
        for tp in fresh:
            meta = committed.get(tp)
            if meta is not None and meta.offset >= 0:
                consumer.seek(tp, meta.offset)
                log.info("%s[%d]: starting at %d, where %s left it", *tp, meta.offset, group)

    return seed


def run_stage(
    app: faust.App,
    settings: Settings,
    stage: Stage,
    source: str,
    *,
    topics: Mapping[str, str],
    table: str | None = None,
    internal_source: bool = False,
    batch: int = 500,
    observe: Callable[[Any], None] = lambda _observation: None,
    perform: Callable[[Sequence[Any]], Awaitable[None]] | None = None,
) -> StageRunner:
    """Run ``stage`` on ``source`` in the checkpoint order, in a group of its own.

    ``table`` names its state (a changelog topic ``<app id>-<table>-changelog``);
    ``internal_source`` says the worker creates its input topic; ``perform``
    carries out the effects the stage asks for (see :mod:`streams.runtime.checkpoint`).
    """
    runtime = runtime_of(app, settings.kafka)
    app_id = app.conf.id
    store = None
    if table is not None:
        store = ChangelogStore(changelog_topic(app_id, table))
        compacted = {"cleanup.policy": "compact"}
        runtime.declared.append(DeclaredTopic(store.topic, "changelog", compacted))
    if internal_source:
        runtime.declared.append(DeclaredTopic(source, "internal", {}))

    def consumer(*, group_id: str | None) -> AIOKafkaConsumer:
        suffix = f"-{stage.name}" if group_id is not None else f"-{stage.name}-recovery"
        return runtime.consumer(group_id=group_id, client_id_suffix=suffix)

    runner = StageRunner(
        stage,
        source,
        topics=topics,
        group_id=f"{app_id}-{stage.name}",
        consumer=consumer,
        producer=runtime.producer,
        store=store,
        batch=batch,
        observe=observe,
        seed=seed_from_group(settings.kafka, app_id),
        perform=perform,
    )
    runtime.runners.append(runner)
    return runner
