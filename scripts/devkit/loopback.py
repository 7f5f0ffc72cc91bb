"""Many connections from a chosen loopback source address, cheaply.

The load generators bind each client to a source address in 127.0.0.0/8 (each (source,
destination) pair has about 28,000 ephemeral ports; ircroam.PER_SOURCE says how many a source). asyncio's
`create_connection(local_addr=(source, 0))` binds before it connects, and bind() must then
find a port of that address in no use at all, TIME_WAIT included: measured here, 3.3 ms a
connection with 15,000 of the address's ports in TIME_WAIT, against 39 us with none. In a
reconnect storm that was half of a generator's time (the clients' given-up attempts leave
TIME_WAIT behind them), and the generator lagged seconds behind the servers it measured.
IP_BIND_ADDRESS_NO_PORT leaves the port to connect(), which picks it by the whole
(source, destination) pair and may take a TIME_WAIT one back on loopback
(net.ipv4.tcp_tw_reuse): 30 us a connection in the same state.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
from collections.abc import Callable
from typing import TypeVar

P = TypeVar("P", bound=asyncio.BaseProtocol)

#: Linux's value where the socket module does not name it.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


async def connect_from(
        factory: Callable[[], P], source: str, port: int, *, host: str = "127.0.0.1",
        ssl: ssl_module.SSLContext | None = None) -> tuple[asyncio.Transport, P]:
    """`loop.create_connection(factory, host, port, ssl=ssl)` from address `source`, its port
    chosen when connecting."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        transport, protocol = await loop.create_connection(
            factory, sock=sock, ssl=ssl, server_hostname=host if ssl is not None else None)
    except BaseException:
        sock.close()
        raise
    return transport, protocol  # type: ignore[return-value]
