"""The round-robin TCP proxy that puts two IRC gateways behind one port for irctest."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import pytest

from scripts.devkit import free_port
from scripts.devkit.rrproxy import RoundRobinProxy, ThreadedProxy


async def _backend(name: bytes) -> asyncio.Server:
    """Says its name, then echoes everything until EOF, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name + b"\n")
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def proxied() -> AsyncIterator[RoundRobinProxy]:
    backends = [await _backend(b"A"), await _backend(b"B")]
    proxy = await RoundRobinProxy(("127.0.0.1", free_port()),
                                  [("127.0.0.1", _port(b)) for b in backends]).start()
    yield proxy
    await proxy.stop()
    for backend in backends:
        backend.close()


async def _connect(proxy: RoundRobinProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*proxy.listen)


async def test_connections_alternate_between_backends(proxied: RoundRobinProxy) -> None:
    names = []
    for _ in range(4):
        reader, writer = await _connect(proxied)
        names.append(await reader.readline())
        writer.close()
    assert names == [b"A\n", b"B\n", b"A\n", b"B\n"]


async def test_bytes_pass_untouched_both_ways_and_a_half_close_is_passed_on(proxied: RoundRobinProxy) -> None:
    payload = os.urandom(1 << 20) + b"\xff\xfe not utf-8 \r\n"
    reader, writer = await _connect(proxied)
    await reader.readline()
    writer.write(payload)
    await writer.drain()
    writer.write_eof()  # the backend sees EOF, echoes what is left and closes
    echoed = await asyncio.wait_for(reader.read(), 10)
    assert echoed == payload
    writer.close()


async def test_a_backend_that_refuses_closes_the_client_connection() -> None:
    proxy = await RoundRobinProxy(("127.0.0.1", free_port()), [("127.0.0.1", free_port())]).start()
    try:
        reader, writer = await _connect(proxy)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await proxy.stop()


async def test_stop_cuts_open_connections(proxied: RoundRobinProxy) -> None:
    reader, writer = await _connect(proxied)
    assert await reader.readline() == b"A\n"
    await proxied.stop()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


def test_threaded_proxy_serves_a_blocking_caller() -> None:
    """The irctest controller runs it in a thread beside its blocking sockets."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        proxy = ThreadedProxy(("127.0.0.1", free_port()), [listener.getsockname()]).start()
        try:
            with socket.create_connection(proxy.proxy.listen, timeout=5) as client:
                backend, _ = listener.accept()
                with backend:
                    client.sendall(b"PING x\r\n")
                    assert backend.recv(100) == b"PING x\r\n"
                    backend.sendall(b"PONG x\r\n")
                    assert client.recv(100) == b"PONG x\r\n"
        finally:
            proxy.stop()
