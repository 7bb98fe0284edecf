"""Every place Palaute reaches into faust's or aiokafka's private state, and why.

faust-streaming 0.15 and aiokafka 0.14 leave some guarantees to chance (a
commit past a record never handed over, a flush that gives up, a recovery
that drops fetched records); each override here closes one such gap, and a
fault test found each. Nothing in a library fails when an upgrade renames
a private attribute or changes a method we replaced, so :data:`OVERRIDES`
lists, for each override, the library methods it replaces (with a digest
of their source at the pinned version) and the private names it touches.
``tests/unit/test_library_tripwires.py`` checks all of it against the
installed libraries: an upgrade fails there at once, naming the override
and the fault test that proves it is still needed, instead of silently in
production.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The library versions the overrides were written and proven against.
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}

_PRODUCER_BUFFER = "faust.transport.producer:ProducerBuffer"
_FAUST_PRODUCER = "faust.transport.drivers.aiokafka:Producer"
_FAUST_CONSUMER = "faust.transport.consumer:Consumer"
_AIOKAFKA_CONSUMER = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"
_RECOVERY = "faust.tables.recovery:Recovery"
_APP = "faust.app.base:App"
_KAFKA_PRODUCER = "aiokafka.producer.producer:AIOKafkaProducer"
_ACCUMULATOR = "aiokafka.producer.message_accumulator:MessageAccumulator"
_BATCH = "aiokafka.producer.message_accumulator:MessageBatch"
_KAFKA_CONSUMER = "aiokafka.consumer.consumer:AIOKafkaConsumer"
_FETCHER = "aiokafka.consumer.fetcher:Fetcher"


@dataclass(frozen=True, slots=True)
class Override:
    """One override: what it replaces and touches, and the test that shows why it exists."""

    name: str
    proven_by: str
    #: (library class as ``module:Class``, method, first 16 hex digits of its source's SHA-256)
    replaces: tuple[tuple[str, str, str], ...] = ()
    #: (library class as ``module:Class``, private attribute it reads or writes)
    touches: tuple[tuple[str, str], ...] = ()


OVERRIDES: tuple[Override, ...] = (
    Override(
        "streams.runtime.overrides.producer.DrainingProducerBuffer",
        "tests/faults/test_fault_kills.py (metrics kills: changelog writes before the commit)",
        replaces=(
            (_PRODUCER_BUFFER, "put", "bf26dfbc01d91088"),
            (_PRODUCER_BUFFER, "_send_pending", "4a9d5f932b56bc68"),
            (_PRODUCER_BUFFER, "flush", "26fbebb124ad9c98"),
        ),
        touches=((_PRODUCER_BUFFER, "pending"), (_PRODUCER_BUFFER, "message_sent")),
    ),
    Override(
        "streams.runtime.overrides.producer.IdempotentProducer",
        "tests/faults/test_fault_kills.py (intake kills: no duplicate on a lost acknowledgement)",
        replaces=(
            (_FAUST_PRODUCER, "__init__", "5c53a4b47aa1372b"),
            (_FAUST_PRODUCER, "_settings_extra", "a4c7bc41b6382223"),
            (_FAUST_PRODUCER, "flush", "36d0cb3615f65b01"),
        ),
        touches=(
            (_FAUST_PRODUCER, "_producer"),
            (_KAFKA_PRODUCER, "_message_accumulator"),
            (_ACCUMULATOR, "_batches"),
            (_ACCUMULATOR, "_waiter_future"),
            (_BATCH, "_builder"),
        ),
    ),
    Override(
        "streams.runtime.overrides.consumer.StopSafeConsumer",
        "tests/faults/test_fault_rebalance.py and tests/faults/test_fault_kills.py",
        replaces=(
            (_FAUST_CONSUMER, "commit", "a354437baaa08bf8"),
            (_FAUST_CONSUMER, "_wait_next_records", "6218e1969a636b3f"),
            (_FAUST_CONSUMER, "getmany", "4b168d84882a70d6"),
            (_FAUST_CONSUMER, "perform_seek", "0e8c130ff4b0afd8"),
            (_FAUST_CONSUMER, "_new_offset", "1d2c7ea89a7ad4f1"),
        ),
        touches=(
            (_FAUST_CONSUMER, "_acked"),
            (_FAUST_CONSUMER, "_committed_offset"),
            (_FAUST_CONSUMER, "_gap"),
            ("faust.transport.drivers.aiokafka:Consumer", "_thread"),
        ),
    ),
    Override(
        "streams.runtime.overrides.recovery.OrderedRecovery",
        "tests/faults/test_fault_rebalance.py (a partition stopped short after a rebalance)",
        replaces=(
            (_RECOVERY, "on_recovery_completed", "6ef567acf072e46d"),
            (_RECOVERY, "_resume_streams", "d986a6710c1aca98"),
            (_RECOVERY, "_seek_offsets", "19598ca63d94d250"),
        ),
        touches=(
            (_RECOVERY, "_set_recovery_ended"),
            (_RECOVERY, "_is_changelog_tp"),
            (_RECOVERY, "_wait"),
            (_APP, "_fetcher"),
        ),
    ),
    Override(
        "streams.runtime.overrides.recovery.PalauteTableManager",
        "tests/faults/test_fault_rebalance.py (through OrderedRecovery)",
        replaces=(("faust.tables.manager:TableManager", "recovery", "f0bf5de78b4c3d23"),),
        touches=(("faust.tables.manager:TableManager", "_recovery"),),
    ),
    Override(
        "streams.runtime.overrides.app.PalauteApp",
        "tests/faults/test_fault_kills.py (a stop commits nothing it did not finish)",
        replaces=(
            (_APP, "_stop_consumer", "55854a5de12c3f52"),
            (_APP, "on_init_dependencies", "7621a70a9b01f93f"),
            (_APP, "_on_agent_error", "bdd12f286de64429"),
            (_APP, "_new_transport", "42db531312dd776f"),
            (_APP, "_new_producer_transport", "eb3b4aa6a8961275"),
        ),
        touches=((_APP, "_consumer"),),
    ),
    Override(
        "streams.runtime.overrides.events.at_event",
        "tests/faults/test_fault_kills.py (table writes of a batch in the right partition)",
        touches=(("faust.streams:", "_current_event"),),
    ),
    Override(
        "streams.runtime.overrides.refetch",
        "tests/faults/test_fault_rebalance.py (records fetched and never handed to an agent)",
        touches=(
            (_FETCHER, "_records"),
            (_FAUST_CONSUMER, "_read_offset"),
            (_FAUST_CONSUMER, "_unacked_messages"),
        ),
    ),
    Override(
        "streams.diagnostics",
        "tests/unit/test_worker_health.py (what /healthz reads of the consumer)",
        touches=(
            (_AIOKAFKA_CONSUMER, "_ensure_consumer"),
            (_KAFKA_CONSUMER, "_subscription"),
            (_FAUST_CONSUMER, "_active_partitions"),
            (_FAUST_CONSUMER, "_paused_partitions"),
            (_FAUST_CONSUMER, "_buffered_partitions"),
        ),
    ),
)
