"""Who the client is behind proxies: ``X-Forwarded-For`` believed from trusted proxies only."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from connectors.web.limits import client_address
from schemas.config import WebConfig

TRUSTED = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "chain", "client"),
    [
        # No trusted peer: the header, whatever it says, is ignored.
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        # The controller tells whom it served.
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        # Two trusted hops: the rightmost untrusted address is the client ...
        ("10.1.2.3", ["198.51.100.1, 10.9.9.9"], "198.51.100.1"),
        # ... and whatever the client wrote to its left does not count.
        ("10.1.2.3", ["192.0.2.66, 198.51.100.1"], "198.51.100.1"),
        # Repeated headers are one chain, in order.
        ("10.1.2.3", ["192.0.2.66", "198.51.100.1, 10.0.0.7"], "198.51.100.1"),
        # A chain of trusted addresses only: its leftmost is the client.
        ("10.1.2.3", ["10.4.4.4, 10.5.5.5"], "10.4.4.4"),
        # No header from a trusted peer: the peer.
        ("10.1.2.3", [], "10.1.2.3"),
        # Garbage where an address should be: the proxy that wrote it, not the garbage.
        ("10.1.2.3", ["not-an-address"], "10.1.2.3"),
        ("10.1.2.3", ["unknown, 10.9.9.9"], "10.9.9.9"),
        # Ports and brackets as some proxies write them.
        ("10.1.2.3", ["198.51.100.1:5555"], "198.51.100.1"),
        ("fd00::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        # A dual-stack listener's view of an IPv4 proxy, and of an IPv4 client.
        ("::ffff:10.1.2.3", ["::ffff:198.51.100.1"], "198.51.100.1"),
    ],
)
def test_the_client_is_the_rightmost_address_no_trusted_proxy_holds(
    peer: str, chain: list[str], client: str
) -> None:
    """A spoofed header must never move a client into someone else's bucket, or a fresh one."""
    assert client_address(peer, chain, TRUSTED) == client


def test_without_trusted_proxies_the_header_means_nothing() -> None:
    """The default: the TCP peer is the client, as before."""
    assert client_address("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"


def test_trusted_proxies_are_networks_from_toml_or_one_environment_variable() -> None:
    """Operators write CIDRs in the file, or a comma-separated PALAUTE_WEB__TRUSTED_PROXIES."""
    from_file = WebConfig.model_validate({"trusted_proxies": ["10.0.0.0/8", "fd00::/8"]})
    from_env = WebConfig.model_validate({"trusted_proxies": "10.0.0.0/8, fd00::/8"})
    assert from_file.trusted_proxies == from_env.trusted_proxies == list(TRUSTED)
    assert WebConfig().trusted_proxies == []
    with pytest.raises(ValueError, match="network"):
        WebConfig.model_validate({"trusted_proxies": ["10.0.0.1/8"]})
