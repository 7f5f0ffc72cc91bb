"""A short-lived cache of directory lookups, for code that resolves a service per message.

Reading a service's directory hash for every message would cost a Redis round trip each time.
Entries are kept for a short TTL and dropped at once when a `registered` or `deregistered`
event names the service, so a restarted or moved instance is seen within milliseconds.
"""

from __future__ import annotations

import json

from apps.kit.broker import BrokerClient, Subscription
from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.directory import Directory, Entry

#: Events after which a service's entries may have changed.
CHANGING_EVENTS = frozenset({"registered", "deregistered"})


class DirectoryCache:
    """`lookup(service)` through a per-service cache with a TTL, invalidated by events."""

    def __init__(self, directory: Directory, ttl: float, clock: Clock = SYSTEM_CLOCK,
                 max_services: int = 1024) -> None:
        self._directory = directory
        self._ttl = ttl
        # Names come from messages (a public POST /messages among them): bound the memory.
        self._max_services = max_services
        self._clock = clock
        self._cache: dict[str, tuple[float, list[Entry]]] = {}
        self.hits = 0
        self.misses = 0

    async def lookup(self, service: str) -> list[Entry]:
        """Live instances of `service`, oldest first, at most `ttl` seconds old."""
        cached = self._cache.get(service)
        now = self._clock.now()
        if cached is not None and cached[0] > now:
            self.hits += 1
            return cached[1]
        self.misses += 1
        entries = await self._directory.lookup(service)
        if service not in self._cache and len(self._cache) >= self._max_services:
            self._make_room(now)
        self._cache[service] = (now + self._ttl, entries)
        return entries

    def _make_room(self, now: float) -> None:
        for name in [name for name, (until, _) in self._cache.items() if until <= now]:
            del self._cache[name]
        if len(self._cache) >= self._max_services:
            del self._cache[next(iter(self._cache))]  # the oldest lookup

    def invalidate(self, service: str | None = None) -> None:
        """Forget one service's entries, or everything."""
        if service is None:
            self._cache.clear()
        else:
            self._cache.pop(service, None)

    def on_event(self, data: bytes) -> None:
        """Feed one message of the events channel; unrelated or malformed ones are ignored."""
        try:
            event = json.loads(data)
            if event.get("kind") in CHANGING_EVENTS:
                self.invalidate(str(event["service"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return

    def watch(self, broker: BrokerClient) -> Subscription:
        """Subscribe to the events channel and invalidate on every change it announces."""

        async def handler(channel: str, data: bytes) -> None:
            self.on_event(data)

        return broker.listen([broker.keys.events], handler, name="directory-cache")
