"""httpx's interface on aiohttp's connection pool and HTTP/1.1 parser.

Services call each other through an `httpx.AsyncClient` (its API, its exceptions, its
MockTransport in tests); underneath, this transport hands each request to an aiohttp
session. httpx's own stack (httpcore, anyio, h11) costs about three times as much CPU per
call as aiohttp's C parser and lean pool: on a cache miss, that call was the aggregator's
largest cost (docs/aggregator.md has the figures).

aiohttp's errors become the httpx exceptions callers already handle: a refused connection
is `httpx.ConnectError` (safe to retry elsewhere: nothing was sent), a timeout
`httpx.ConnectTimeout` or `httpx.ReadTimeout`, anything else on the wire a
`httpx.NetworkError` or `httpx.RemoteProtocolError`. Bodies are read whole (services answer
small JSON); content encodings are left for httpx to decode, as with its own transport.
"""

from __future__ import annotations

import aiohttp
import httpx
from yarl import URL


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (opened on first use, in the running loop) behind httpx."""

    def __init__(self, max_connections: int = 100, keepalive: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive)
        # httpx sets every header and keeps the cookies: aiohttp adds none and stores none.
        self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                              skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        limits = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(sock_connect=limits.get("connect"), sock_read=limits.get("read"))
        try:
            async with session.request(
                request.method, URL(str(request.url), encoded=True), headers=request.headers.multi_items(),
                data=request.content or None, allow_redirects=False, auto_decompress=False,
                timeout=timeout,
            ) as response:
                content = await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc), request=request) from exc
        return httpx.Response(response.status, headers=response.raw_headers, content=content,
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
