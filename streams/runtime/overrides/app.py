"""The app and transport overrides: idempotent producer, stop-safe consumer, no Monitor sensor.

Tripwire: tests/unit/test_library_tripwires.py (``PalauteApp``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.diagnostics import note_agent_crash
from streams.runtime.overrides.consumer import StopSafeConsumer
from streams.runtime.overrides.producer import IdempotentProducer

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mode import ServiceT


class IdempotentTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with :class:`IdempotentProducer` and :class:`StopSafeConsumer`."""

    Consumer = StopSafeConsumer
    Producer = IdempotentProducer


class PalauteApp(faust.App):
    """A faust app whose transports produce idempotently, whatever the broker URL's scheme."""

    #: Set when the app begins to stop: :class:`StopSafeConsumer` commits no more.
    commits_frozen: bool = False

    async def on_start(self) -> None:
        """Commit again: an app object started anew (in tests) is not stopping."""
        self.commits_frozen = False
        await super().on_start()

    async def _stop_consumer(self) -> None:
        # Commit what the agents finished while records still flow normally,
        # then no more: see StopSafeConsumer.
        consumer = self._consumer
        if consumer is not None and not self.commits_frozen:
            with contextlib.suppress(ConsumerNotStarted):
                if consumer.assignment():
                    await consumer.commit()
        self.commits_frozen = True
        await super()._stop_consumer()

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        """Start without faust's Monitor sensor, which nothing here reads.

        The Monitor keeps faust's own statistics (for its web views, which the
        worker does not serve): it runs on every record read, every event an
        agent takes and every record sent, several per record end to end. The
        worker's figures are its Prometheus metrics (connectors/telemetry.py).
        """
        dependencies = super().on_init_dependencies()
        with contextlib.suppress(KeyError):
            self.sensors.remove(self.monitor)
        return dependencies

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """Count the crash for /healthz (streams.diagnostics), then do what faust does."""
        note_agent_crash(agent.name)
        await super()._on_agent_error(agent, exc)

    def _new_transport(self) -> IdempotentTransport:
        return IdempotentTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> IdempotentTransport:
        return IdempotentTransport(self.conf.broker_producer, self)
