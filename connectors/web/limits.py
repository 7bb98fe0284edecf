"""Per-client rate limits for the public endpoints, with bounded memory.

The ingress limits a handful of known source systems; the public pages and
webhooks are reached from any address, so the bucket table must not grow
with every address ever seen. Buckets live in an LRU table: past
``max_clients`` the least recently seen client is forgotten, which only ever
gives that client a full bucket again.

**Who the client is.** Behind an ingress controller or load balancer every
request comes from the proxy's address, and keyed on that, all citizens
would share one bucket. The proxy names the client in ``X-Forwarded-For``;
anyone can write that header, though, so it is believed only from the
proxies configured in ``[web] trusted_proxies``, and only as far as the
chain goes through them: the client is the rightmost address of the chain
that is not a trusted proxy (each proxy appends the address it saw, so
entries to the left of an untrusted one may be invented).
:func:`forwarded_for` puts that address in ``request.remote`` for every
handler, so the limits, fingerprints and logs all see the same client.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    Network = ipaddress.IPv4Network | ipaddress.IPv6Network
    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Longest ``X-Forwarded-For`` entry taken as a client; longer ones are not addresses.
_MAX_ENTRY_LENGTH: Final = 64
#: Most entries read from the right of the chain; a longer one is cut there.
_MAX_HOPS: Final = 32


def _address(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Read one chain entry: a bare address, ``[v6]`` or ``[v6]:port``, or ``v4:port``."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; IPv4 networks must match them.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str | None:
    """Name the client of a request: the TCP peer, or whom trusted proxies say they served.

    ``forwarded_for`` holds the ``X-Forwarded-For`` header values in order.
    The chain is read from the right while each address is a trusted proxy;
    the first that is not is the client. An entry that is no address ends
    the walk at the proxy that wrote it (it vouches for nothing readable).
    When every entry is trusted, the leftmost is the client.
    """
    if peer is None or not trusted:
        return peer
    address = _address(peer)
    if address is None or not any(address in network for network in trusted):
        return peer
    chain = [entry for value in forwarded_for for entry in value.split(",") if entry.strip()]
    client = peer
    for entry in reversed(chain[-_MAX_HOPS:]):
        address = _address(entry) if len(entry) <= _MAX_ENTRY_LENGTH else None
        if address is None:
            return client
        client = str(address)
        if not any(address in network for network in trusted):
            return client
    return client


def forwarded_for(trusted: Sequence[Network]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Make a middleware that sets ``request.remote`` to the client behind trusted proxies.

    Without trusted proxies it passes every request on unchanged: the TCP
    peer is the client, and ``X-Forwarded-For`` is ignored.
    """
    networks = tuple(trusted)

    @web.middleware
    async def real_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        if networks:
            client = client_address(
                request.remote, request.headers.getall("X-Forwarded-For", ()), networks
            )
            if client is not None and client != request.remote:
                request = request.clone(remote=client)
        return await handler(request)

    return real_client


class ClientRateLimiter:
    """A token bucket per client: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate, burst and max_clients must be positive")
        self._rate = rate
        self._burst = float(burst)
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> float | None:
        """Spend a token of ``client``; None when allowed, else seconds until one is free."""
        now = self._clock()
        tokens, last = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self._rate
