"""Who a request comes from: its peer, or the client a trusted proxy says it forwards.

Behind Caddy every peer is Caddy; the client is the address Caddy writes in X-Forwarded-For.
That header is believed only when the peer is a trusted proxy (TRUSTED_PROXIES): anyone else
could write any address in it. Caddy itself, trusting no proxy (proxy/Caddyfile sets none),
replaces whatever X-Forwarded-For a client sends with the client's own address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: An IPv6 client is counted by the /64 it is in: one subscriber usually holds a whole one.
IPV6_SUBSCRIBER_PREFIX = 64


def parse_address(value: str | None) -> IPAddress | None:
    """`value` as an IP address (an IPv4-mapped IPv6 one as IPv4); None if it is not one."""
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress | None, trusted: Sequence[IPNetwork]) -> bool:
    """True if `address` is in one of the `trusted` networks."""
    return address is not None and any(address in network for network in trusted)


def client_address(peer: str | None, forwarded_for: Iterable[str],
                   trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The address of the client behind a request.

    The peer, unless it is a trusted proxy: then X-Forwarded-For (every such header, in
    order) is read from the right, each proxy having appended the address it got the request
    from, and the first address that is not a trusted proxy is the client. An entry that is
    not an address ends the walk at the hop before it. None if the peer is not an address.
    """
    client = parse_address(peer)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    while is_trusted(client, trusted) and hops:
        hop = parse_address(hops.pop())
        if hop is None:
            break
        client = hop
    return client


def limit_key(address: IPAddress) -> str:
    """What a per-address limit counts: one IPv4 address, or an IPv6 address's /64."""
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return str(ipaddress.IPv6Network((address, IPV6_SUBSCRIBER_PREFIX), strict=False))
