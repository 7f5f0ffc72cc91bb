"""The HTTP client services use to call each other, and how they find each other's URL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Collection

import httpx
from redis.exceptions import RedisError

from apps.kit.aiohttp_transport import AiohttpTransport
from apps.kit.dircache import DirectoryCache
from apps.kit.logs import REQUEST_ID_HEADER, request_id_var


def new_http_client(timeout: float = 5.0, max_connections: int = 100,
                    transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A pooled async client; callers pass a tighter per-call timeout where they have one.

    `transport` replaces the network (tests pass an httpx.MockTransport); by default httpx
    runs on aiohttp (apps/kit/aiohttp_transport.py), whose pool keeps every connection alive:
    a keep-alive pool smaller than the concurrency would make each burst reconnect. Every call
    made while serving a request carries that request's `X-Request-ID`, so the service called
    logs under the same id.
    """
    return httpx.AsyncClient(
        transport=transport or AiohttpTransport(max_connections),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        headers={"user-agent": "canaduck"},
        event_hooks={"request": [forward_request_id]},
    )


async def forward_request_id(request: httpx.Request) -> None:
    """Put the current request id on an outgoing request (unless the caller set one)."""
    request_id = request_id_var.get()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


class NoInstance(LookupError):
    """No live instance of a service is in the directory."""


class Peers:
    """Finds a URL for a service: a fixed override if configured, else the directory.

    Successive calls rotate over the live instances, so callers spread their load. Lookups go
    through `lookups` (its TTL spares the directory on a busy path). When the directory cannot
    be read (Redis down or slower than `lookup_timeout`), the instances seen last are used: a
    caller keeps reaching its peers while Redis is away.
    """

    def __init__(self, lookups: DirectoryCache, overrides: dict[str, str] | None = None, *,
                 lookup_timeout: float | None = None) -> None:
        self._lookups = lookups
        self._overrides = {k: v for k, v in (overrides or {}).items() if v}
        self._turn = itertools.count()
        self._lookup_timeout = lookup_timeout
        self._last_seen: dict[str, list[str]] = {}

    async def url(self, service: str, avoid: Collection[str] = ()) -> str:
        """The base URL of one live instance of `service` (NoInstance if none).

        `avoid` lists URLs that just failed: another instance is chosen while there is one
        (concurrent callers share the rotation, so the next turn alone could land on it again).
        """
        if service in self._overrides:
            return self._overrides[service]
        urls = await self._urls(service)
        if not urls:
            raise NoInstance(service)
        untried = [url for url in urls if url not in avoid] or urls
        return untried[next(self._turn) % len(untried)]

    async def _urls(self, service: str) -> list[str]:
        try:
            async with asyncio.timeout(self._lookup_timeout):
                entries = await self._lookups.lookup(service)
        except (RedisError, OSError, TimeoutError):
            return self._last_seen.get(service, [])  # possibly none
        urls = [e.url.rstrip("/") for e in entries if e.url]
        self._last_seen[service] = urls
        return urls
