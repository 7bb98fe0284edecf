"""The faust application: broker, local store, producer guarantees and topic names.

:func:`create_app` turns :class:`~schemas.config.Settings` into a configured
:class:`faust.App` with every stage's agents registered. The worker command
runs it; tests build it with a topic suffix so each run has its own topics.

These choices keep the guarantees of DESIGN.md:

* ``processing_guarantee="at_least_once"``, never ``exactly_once`` (its
  transactions crash and duplicate on rebalance): every stage is idempotent
  instead, and faust flushes the producer before it commits the consumer's
  offsets, so an offset is committed only after the work it stands for.
* no offset commit once a stop has begun (:class:`StopSafeConsumer`):
  faust acks records it skips or cancels while stopping; and no commit past
  a record that was never acked (faust's own check is one record short).
* no commit across records faust fetched and never handed to an agent: a
  batch it cut short is fetched again from its first record not handed
  over, and a partition never committed starts at its log's start
  (:class:`StopSafeConsumer`).
* a guard that reads a stream partition again from its committed offset
  when records were fetched and never processed (:mod:`streams.runtime.overrides.refetch`).
* a producer whose ``flush`` drains faust's own send buffer for real:
  faust's gives up after 0.1 s without a message sent, and table changelog
  records go through it, so an offset could be committed before the table
  write it stands for was on the broker (see :class:`DrainingProducerBuffer`).
* agents' queues emptied before the stream partitions resume after a
  rebalance, not after (:class:`OrderedRecovery`): records fetched during
  faust's seek were cleared from the queues while the consumer took them as
  read, so a partition stopped short of its end until the next restart.
* an idempotent producer (``enable_idempotence=True``, ``acks=all``). faust
  0.15 asks aiokafka for one only inside transactions, and has no setting for
  it, so :class:`IdempotentProducer` adds it to the producer's settings and
  :class:`PalauteApp` uses a transport built on that producer.

Every class that overrides faust's or aiokafka's private state lives in
:mod:`streams.runtime.overrides`, each behind a tripwire test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust

from connectors.kafka_client import client_options
from schemas.topics import TopicNames
from streams import alerting, catalogue, dispatch, intake, metrics, responses, web
from streams.runtime.overrides import refetch
from streams.runtime.overrides.app import PalauteApp
from streams.runtime.overrides.recovery import PalauteTableManager

if TYPE_CHECKING:
    import ssl

    from schemas.config import KafkaConfig, Settings

#: How long the producer waits for more records before it sends a batch, and how
#: large a batch per partition may grow (below the broker's 1 MiB message limit).
PRODUCER_LINGER_SECONDS = 0.005
PRODUCER_MAX_BATCH_BYTES = 512 * 1024

#: The web server's port when none is configured (it is then turned off).
_UNUSED_WEB_PORT = 6066


def broker_credentials(kafka: KafkaConfig) -> faust.types.auth.CredentialsT | None:
    """Map the ``[kafka]`` security settings onto faust's credentials (None: plaintext).

    Derived from :func:`connectors.kafka_client.client_options`, the one mapping
    every other client of Palaute uses, so the workers reach a TLS or SASL
    cluster exactly as the web service and the tools do.
    """
    options = client_options(kafka)
    context: ssl.SSLContext | None = options.get("ssl_context")
    if "sasl_mechanism" not in options:
        return faust.SSLCredentials(context) if context is not None else None
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=context,
        mechanism=options["sasl_mechanism"],
    )


def create_app(
    settings: Settings,
    *,
    app_id: str | None = None,
    topic_names: TopicNames | None = None,
) -> faust.App:
    """Build the faust app of a worker from its settings, with every stage registered.

    ``app_id`` (the consumer group, and the prefix of internal and changelog
    topics) and ``topic_names`` default to ``[streams]`` with its
    ``topic_suffix`` applied.
    """
    streams = settings.streams
    suffix = streams.topic_suffix
    names = topic_names or TopicNames.with_suffix(suffix)
    app = PalauteApp(
        app_id or streams.app_id + suffix,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers],
        broker_client_id=settings.kafka.client_id,
        broker_credentials=broker_credentials(settings.kafka),
        # faust 0.15 names its RocksDB store "rocksdb://" whichever driver it uses;
        # the tables pick the rocksdict driver (python-rocksdb is unmaintained).
        store="rocksdb://",
        datadir=str(streams.data_dir),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # Fewer, larger produce requests: a few ms of latency for far less per-record cost.
        producer_linger=PRODUCER_LINGER_SECONDS,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
        topic_partitions=streams.partitions,
        topic_replication_factor=streams.replication_factor,
        web_enabled=streams.web_port is not None,
        web_host=streams.web_host,
        web_port=streams.web_port or _UNUSED_WEB_PORT,
        autodiscover=False,
        TableManager=PalauteTableManager,
    )
    web.register(app, settings)
    catalogue.register(app, settings, names)
    intake.register(app, settings, names)
    responses.register(app, settings, names)
    metrics.register(app, settings, names)
    alerting.register(app, settings, names)
    dispatch.register(app, settings, names)
    refetch.register(app)
    return app
