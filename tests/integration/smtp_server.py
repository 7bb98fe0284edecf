"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives.

Runs in the test's own event loop on a free port chosen by the kernel, so
parallel test sessions never collide. Use the ``smtp_sink`` fixture (import it
into a test module or a conftest) or ``running_smtp_sink()`` directly::

    async with running_smtp_sink() as sink:
        ...send to 127.0.0.1:sink.port...
        message = sink.received[0].message()

Pass ``tls_context`` (the server's certificate) for STARTTLS, or with
``implicit_tls=True`` for TLS from the first byte (port 465 style), and
``credentials=(user, password)`` to require AUTH (over TLS only).

``recipient_replies`` makes the server answer RCPT for one address with any
reply (``"550 5.1.1 Mailbox unavailable"``, ``"451 4.3.0 Try again later"``);
``data_reply`` does the same for the end of DATA; ``drop_after_data`` closes
the connection after the message arrived, before any reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any, cast

import pytest
from aiosmtpd.smtp import SMTP

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from email.message import EmailMessage
    from pathlib import Path

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One delivered message: the envelope and the exact bytes of DATA."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    over_tls: bool = False
    authenticated_as: str | None = None

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
        login = getattr(session.auth_data, "login", None)
        self._sink.received.append(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
                over_tls=server.transport.get_extra_info("ssl_object") is not None,
                authenticated_as=login.decode() if session.authenticated and login else None,
            )
        )
        if self._sink.drop_after_data:
            server.transport.abort()
            return "421 closing"
        return self._sink.data_reply or "250 Message accepted for delivery"


@dataclass(frozen=True)
class LoopbackCertificate:
    """A throw-away self-signed certificate for 127.0.0.1, made with the openssl tool."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> LoopbackCertificate:
        """Write a one-day certificate and key into ``directory``."""
        cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cls(cert=cert, key=key)

    def server_context(self) -> ssl.SSLContext:
        """Return the context the server presents its certificate with."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Return a client trust store holding only this certificate (verification on)."""
        return ssl.create_default_context(cafile=str(self.cert))


@contextlib.asynccontextmanager
async def running_smtp_sink(
    *,
    tls_context: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    credentials: tuple[str, str] | None = None,
) -> AsyncIterator[SmtpSink]:
    """Start a server on a free loopback port for the duration of the block."""
    sink = SmtpSink()
    loop = asyncio.get_running_loop()

    def check_login(mechanism: str, login: bytes, password: bytes) -> bool:
        del mechanism
        return credentials is not None and (login, password) == (
            credentials[0].encode(),
            credentials[1].encode(),
        )

    def protocol() -> SMTP:
        sink.connections += 1
        return SMTP(
            _Handler(sink),
            hostname="sink.palaute.test",
            tls_context=None if implicit_tls else tls_context,
            require_starttls=tls_context is not None and not implicit_tls,
            # aiosmtpd counts only STARTTLS as TLS; with implicit TLS the whole
            # connection is encrypted, so AUTH is offered but not enforced.
            auth_required=credentials is not None and not implicit_tls,
            auth_require_tls=not implicit_tls,
            auth_callback=check_login,
            loop=loop,
        )

    server = await loop.create_server(protocol, HOST, 0, ssl=tls_context if implicit_tls else None)
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
