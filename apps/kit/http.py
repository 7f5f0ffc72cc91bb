"""The HTTP client services use to call each other, and how they find each other's URL."""

from __future__ import annotations

import itertools

import httpx

from apps.kit.directory import Directory


def new_http_client(timeout: float = 5.0, max_connections: int = 100) -> httpx.AsyncClient:
    """A pooled async client; callers pass a tighter per-call timeout where they have one."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        headers={"user-agent": "canaduck"},
    )


class NoInstance(LookupError):
    """No live instance of a service is in the directory."""


class Peers:
    """Finds a URL for a service: a fixed override if configured, else the directory.

    Successive calls rotate over the live instances, so callers spread their load.
    """

    def __init__(self, directory: Directory, overrides: dict[str, str] | None = None) -> None:
        self._directory = directory
        self._overrides = {k: v for k, v in (overrides or {}).items() if v}
        self._turn = itertools.count()

    async def url(self, service: str) -> str:
        """The base URL of one live instance of `service` (NoInstance if none)."""
        if service in self._overrides:
            return self._overrides[service]
        entries = [e for e in await self._directory.lookup(service) if e.url]
        if not entries:
            raise NoInstance(service)
        return entries[next(self._turn) % len(entries)].url.rstrip("/")
