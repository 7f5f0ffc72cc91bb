"""Kit: the HTTP client's aiohttp transport, against a real server on loopback.

Callers only ever see httpx: its requests, responses and exceptions. These tests pin what
they rely on: parameters, JSON bodies and headers go out as httpx built them, connections are
reused, and each failure is the httpx exception the callers catch (a refused connection is a
ConnectError, which the aggregator retries on another instance).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from apps.kit.http import new_http_client


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []
    released = asyncio.Event()  # set at the end: a hung handler then returns, and cleanup is quick

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        body = await request.read()
        return web.json_response({"method": request.method, "query": dict(request.query),
                                  "body": body.decode(), "headers": dict(request.headers)})

    async def zipped(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(b'{"zipped": true}'),
                            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def hang(request: web.Request) -> web.Response:
        await released.wait()  # never answers while the test runs
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/zipped", zipped)
    app.router.add_get("/hang", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    released.set()
    await runner.cleanup()


async def test_a_get_and_a_post_go_out_as_httpx_built_them(server):
    url, _ = server
    client = new_http_client()
    try:
        got = await client.get(f"{url}/echo", params={"city": "São Paulo & co"},
                               headers={"X-Request-ID": "abc123"})
        posted = await client.post(f"{url}/echo", json={"rally": 1, "hit": 2})
    finally:
        await client.aclose()
    assert got.status_code == 200
    assert got.json()["query"] == {"city": "São Paulo & co"}
    assert got.json()["headers"]["User-Agent"] == "canaduck"
    assert got.json()["headers"]["X-Request-ID"] == "abc123"
    assert got.headers["content-type"].startswith("application/json")
    assert posted.json()["method"] == "POST"
    assert json.loads(posted.json()["body"]) == {"rally": 1, "hit": 2}
    assert posted.json()["headers"]["Content-Type"] == "application/json"


async def test_connections_are_kept_alive_and_reused(server):
    url, seen = server
    client = new_http_client()
    try:
        for _ in range(5):
            assert (await client.get(f"{url}/echo")).status_code == 200
    finally:
        await client.aclose()
    assert len({request.transport for request in seen}) == 1


async def test_a_compressed_body_is_decoded_once(server):
    url, _ = server
    client = new_http_client()
    try:
        response = await client.get(f"{url}/zipped")
    finally:
        await client.aclose()
    assert response.json() == {"zipped": True}


async def test_a_refused_connection_is_an_httpx_connect_error():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = new_http_client()
    try:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
    finally:
        await client.aclose()


async def test_a_silent_server_is_an_httpx_read_timeout(server):
    url, _ = server
    client = new_http_client()
    try:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{url}/hang", timeout=0.2)
    finally:
        await client.aclose()


async def test_a_mock_transport_still_replaces_the_network():
    client = new_http_client(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    try:
        assert (await client.get("http://nowhere.test/")).status_code == 204
    finally:
        await client.aclose()
