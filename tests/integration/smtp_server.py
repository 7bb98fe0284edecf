"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives.

Runs in the test's own event loop on a free port chosen by the kernel, so
parallel test sessions never collide. Use the ``smtp_sink`` fixture (import it
into a test module or a conftest) or ``running_smtp_sink()`` directly::

    async with running_smtp_sink() as sink:
        ...send to 127.0.0.1:sink.port...
        message = sink.received[0].message()

``recipient_replies`` makes the server answer RCPT for one address with any
reply (``"550 5.1.1 Mailbox unavailable"``, ``"451 4.3.0 Try again later"``);
``data_reply`` does the same for the end of DATA; ``drop_after_data`` closes
the connection after the message arrived, before any reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any, cast

import pytest
from aiosmtpd.smtp import SMTP

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from email.message import EmailMessage

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One delivered message: the envelope and the exact bytes of DATA."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        """Parse the bytes the way a mail client would (modern email policy)."""
        return cast("EmailMessage", message_from_bytes(self.data, policy=policy.default))


@dataclass
class SmtpSink:
    """What the server received, and how it should answer."""

    host: str = HOST
    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    recipient_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    drop_after_data: bool = False
    connections: int = 0


class _Handler:
    """aiosmtpd hooks: refuse recipients on request, keep every accepted message."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        del server, session, rcpt_options
        reply = self._sink.recipient_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd's hook name
        del session
        self._sink.received.append(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
            )
        )
        if self._sink.drop_after_data:
            server.transport.abort()
            return "421 closing"
        return self._sink.data_reply or "250 Message accepted for delivery"


@contextlib.asynccontextmanager
async def running_smtp_sink() -> AsyncIterator[SmtpSink]:
    """Start a server on a free loopback port for the duration of the block."""
    sink = SmtpSink()
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        sink.connections += 1
        return SMTP(_Handler(sink), hostname="sink.palaute.test", loop=loop)

    server = await loop.create_server(protocol, HOST, 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    """Yield a fresh SMTP server per test; its ``received`` list is what was delivered."""
    async with running_smtp_sink() as sink:
        yield sink
