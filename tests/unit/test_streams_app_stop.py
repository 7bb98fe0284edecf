"""The app's stop and flush: no offset may be committed ahead of the work it stands for."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from schemas.config import load_settings
from streams.app import DrainingProducerBuffer, PalauteApp, StopSafeConsumer, create_app

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
