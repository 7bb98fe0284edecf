"""The app's stop and flush: no offset may be committed ahead of the work it stands for."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from schemas.config import load_settings
from streams.app import create_app
from streams.runtime.overrides.app import PalauteApp
from streams.runtime.overrides.consumer import StopSafeConsumer
from streams.runtime.overrides.producer import DrainingProducerBuffer

ROOT = Path(__file__).resolve().parents[2]


class _SlowChannel:
    """A channel whose hand-over to the Kafka client takes longer than faust's flush waits."""

    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish_message(self, fut: Any, *, wait: bool) -> None:
        await asyncio.sleep(0.25)
        self.published.append(fut.number)
        assert not wait


async def test_a_flush_returns_only_once_every_buffered_message_is_handed_over() -> None:
    """Table changelog records wait in this buffer; a commit after flush must find it empty."""
    buffer = DrainingProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    channel = _SlowChannel()
    await buffer.start()
    try:
        for number in range(3):
            buffer.put(SimpleNamespace(number=number, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
        await buffer.flush()
        assert channel.published == [0, 1, 2]
        assert buffer.size == 0
        assert buffer.in_flight == 0
    finally:
        await buffer.stop()


def test_the_worker_uses_the_draining_buffer_and_the_stop_safe_consumer() -> None:
    """The guarantees hold only if the app's transports are the ones built here."""
    app = create_app(load_settings(ROOT / "examples" / "palaute.toml"))
    assert isinstance(app, PalauteApp)
    assert isinstance(app.producer.buffer, DrainingProducerBuffer)
    assert app.transport.Consumer is StopSafeConsumer


async def test_nothing_is_committed_once_the_app_began_to_stop() -> None:
    """Faust acks skipped and half-done records while stopping; committing them loses them."""
    # An unbound call with a stand-in: building a real consumer starts its thread.
    consumer: Any = SimpleNamespace(app=SimpleNamespace(commits_frozen=True))
    assert await StopSafeConsumer.commit(consumer) is False


def _consumer_with(acked: list[int], committed: int | None, log_start: int | None) -> Any:
    """Build a consumer with only the state ``_new_offset`` reads (a real one starts a thread)."""
    consumer: Any = object.__new__(StopSafeConsumer)
    tp = ("palaute.contacts.v1", 0)
    consumer._acked = {tp: list(acked)}
    consumer._acked_index = {tp: set(acked)}
    consumer._committed_offset = {tp: committed}
    consumer._gap = {tp: None}
    consumer._log_starts = {} if log_start is None else {tp: log_start}
    return consumer, tp


def test_a_partition_never_committed_is_committed_from_its_log_start_only() -> None:
    """Records dropped at the head of a never-committed partition must not be committed past."""
    consumer, tp = _consumer_with([5, 6, 7], committed=None, log_start=0)
    assert consumer._new_offset(tp) is None
    consumer, tp = _consumer_with([0, 1, 2], committed=None, log_start=0)
    assert consumer._new_offset(tp) == 3
    consumer, tp = _consumer_with([5, 6, 7], committed=None, log_start=5)
    assert consumer._new_offset(tp) == 8  # the log begins at 5: nothing is missing


def test_without_a_known_start_faust_would_commit_past_the_missing_head() -> None:
    """Why the log start is kept: faust alone commits from the first acked record."""
    consumer, tp = _consumer_with([5, 6, 7], committed=None, log_start=None)
    assert consumer._new_offset(tp) == 8
