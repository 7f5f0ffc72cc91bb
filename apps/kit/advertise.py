"""Which address an instance advertises when it listens on every interface.

In a container (or with `--scale`) the service's name is not an instance's address: each
instance must put its own in the directory. The address it reaches Redis from is one every
peer on that network can reach, found with no configuration and no Docker socket: connect a
UDP socket towards Redis (nothing is sent) and read the local end.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit


async def own_address(redis_url: str) -> str:
    """This host's address on the network that leads to Redis; loopback if none is found."""
    parts = urlsplit(redis_url)
    host = parts.hostname
    if parts.scheme not in ("redis", "rediss") or not host:  # a unix socket: same host
        return "127.0.0.1"
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, parts.port or 6379, type=socket.SOCK_DGRAM), timeout=5)
    except (OSError, TimeoutError):
        return "127.0.0.1"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.connect(address)
            except OSError:
                continue
            return str(probe.getsockname()[0])
    return "127.0.0.1"
