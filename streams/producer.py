"""The worker's one way to produce a raw record: straight to faust's producer.

Every stage produces through :class:`DirectProducer`, so the headers a record
carries are put in the form the client wants in one place.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from streams.runtime.deadletters import Header, kafka_headers

if TYPE_CHECKING:
    from collections.abc import Mapping

    import faust

log = logging.getLogger(__name__)


def _report_failed_send(sent: asyncio.Future[Any]) -> None:
    if sent.cancelled() or sent.exception() is None:
        return
    # The same as faust's own report of a failed send; never the record's content.
    log.warning("a record could not be produced: %r", type(sent.exception()).__name__)


class DirectProducer:
    """Hand records straight to the worker's producer, as ``Topic.send`` does in the end.

    ``Topic.send`` wraps each record in faust's message objects, sensors and
    callbacks before it calls this same producer: about 50 µs of CPU per
    record, which in the intake (a forward and one to four publications per
    contact) is as much as validating and deciding. The guarantees are
    those of ``Topic.send``: the record is in the producer's batch when the
    call returns, and faust flushes the producer before it commits offsets.
    """

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def send(
        self,
        topic: faust.TopicT,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header] | tuple[Header, ...] | Mapping[str, bytes] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any] | None:
        """Batch the record; the returned future (if any) completes once the broker has it."""
        return await self.send_to(topic.get_topic_name(), key, value, headers, partition)

    async def send_to(
        self,
        name: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header] | tuple[Header, ...] | Mapping[str, bytes] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any] | None:
        """Batch a record for the topic of this name; see :meth:`send`."""
        # faust's signature says bytes, but a None value is a valid Kafka header
        # and aiokafka's record builder writes it as such.
        listed = cast("list[tuple[str, bytes]]", kafka_headers(headers))
        sent = await self._app.producer.send(name, key, value, partition, None, listed)
        if isinstance(sent, asyncio.Future):
            sent.add_done_callback(_report_failed_send)
            return sent
        return None

    async def produce(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[Header]
    ) -> None:
        """Batch a record (the containment's producer interface)."""
        await self.send_to(topic, key, value, headers)
