"""An SMTP server that keeps what it receives, for the demo's simulated citizens.

The demo's worker mails surveys to real addresses on a reserved domain; this
aiosmtpd server on 127.0.0.1 accepts them all and hands each message to a
callback, so a simulated citizen can open it as a mail client would.
"""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import SMTP

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import EmailMessage

HOST = "127.0.0.1"


class _Handler:
    def __init__(self, deliver: Callable[[EmailMessage], None]) -> None:
        self._deliver = deliver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd's hook name
        del server, session
        data = bytes(envelope.original_content or envelope.content)
        self._deliver(message_from_bytes(data, policy=policy.default))
        return "250 Message accepted for delivery"


class MailSink:
    """Accept every message on a free loopback port; ``await start()``, ``await stop()``."""

    def __init__(self, deliver: Callable[[EmailMessage], None]) -> None:
        self._deliver = deliver
        self._server: asyncio.Server | None = None
        self.received = 0
        self.port = 0

    def _count_and_deliver(self, message: EmailMessage) -> None:
        self.received += 1
        self._deliver(message)

    async def start(self) -> int:
        """Listen and return the port."""
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            return SMTP(_Handler(self._count_and_deliver), hostname="sink.palaute.demo", loop=loop)

        self._server = await loop.create_server(protocol, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
