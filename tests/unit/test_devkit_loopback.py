"""Connections from a chosen loopback source address, the port left to connect()."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from scripts.devkit.loopback import IP_BIND_ADDRESS_NO_PORT, connect_from


async def test_a_connection_comes_from_the_source_asked_its_port_chosen_by_connect() -> None:
    accepted: list[tuple[str, int]] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await connect_from(asyncio.Protocol, "127.0.0.7", port)
    sock = transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT) == 1
    assert transport.get_extra_info("sockname")[0] == "127.0.0.7"
    for _ in range(50):
        if accepted:
            break
        await asyncio.sleep(0.01)
    assert accepted[0] == transport.get_extra_info("sockname")
    transport.close()
    server.close()
    await server.wait_closed()


async def test_a_refused_connection_leaves_no_socket_open():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ConnectionRefusedError):
        await connect_from(asyncio.Protocol, "127.0.0.1", port)
    assert len(os.listdir("/proc/self/fd")) == before
