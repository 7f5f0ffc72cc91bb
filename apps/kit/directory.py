"""The service directory: one Redis hash, one field per live instance, each field with a TTL.

Field ``<service>/<instance>``, value a JSON entry. Every write sets the field's TTL in the
same transaction, because a plain HSET clears it; a killed instance therefore vanishes when
its TTL runs out, with no sweeper. Static entries (exercise 2.1) are written without a TTL.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Entry:
    """One instance of a service, as other services find it."""

    service: str
    instance: str
    url: str
    channel: str
    started_at: float = field(default_factory=time.time)
    version: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def field(self) -> str:
        return f"{self.service}/{self.instance}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Entry:
        data = json.loads(raw)
        return cls(
            service=str(data["service"]),
            instance=str(data["instance"]),
            url=str(data.get("url", "")),
            channel=str(data.get("channel", "")),
            started_at=float(data.get("started_at", 0.0)),
            version=str(data.get("version", "")),
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True, slots=True)
class Listing:
    """An entry with the seconds its field has left (None: a static entry, no TTL)."""

    entry: Entry
    ttl: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.entry), "ttl": self.ttl}


class Directory:
    """Reads and writes the directory hash."""

    def __init__(self, redis: Redis, key: str, ttl: float) -> None:
        self._redis = redis
        self.key = key
        self.ttl_ms = max(1, round(ttl * 1000))

    async def register(self, entry: Entry) -> None:
        """Write `entry` and (re)arm its TTL atomically. A heartbeat is the same call."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, entry.field, entry.to_json())
            pipe.execute_command("HPEXPIRE", self.key, self.ttl_ms, "FIELDS", 1, entry.field)
            await pipe.execute()

    heartbeat = register

    async def register_static(self, entry: Entry) -> None:
        """Write an entry that never expires (exercise 2.1: addresses known in advance)."""
        await self._redis.hset(self.key, entry.field, entry.to_json())

    async def deregister(self, service: str, instance: str) -> bool:
        """Remove one instance; True if it was there."""
        return bool(await self._redis.hdel(self.key, f"{service}/{instance}"))

    async def lookup(self, service: str) -> list[Entry]:
        """Live instances of `service`, oldest first. Expired fields are gone server-side."""
        raw = await self._redis.hgetall(self.key)
        prefix = f"{service}/".encode()
        entries = [_parse(value) for name, value in raw.items() if _as_bytes(name).startswith(prefix)]
        return sorted((e for e in entries if e is not None), key=lambda e: e.started_at)

    async def list(self) -> list[Listing]:
        """Every live entry with its remaining TTL, sorted by service then instance."""
        raw = await self._redis.hgetall(self.key)
        if not raw:
            return []
        names = list(raw)
        ttls = await self._redis.execute_command("HPTTL", self.key, "FIELDS", len(names), *names)
        listings = []
        for name, ttl_ms in zip(names, ttls, strict=True):
            entry = _parse(raw[name])
            if entry is None or ttl_ms == -2:  # unreadable, or expired between the two calls
                continue
            listings.append(Listing(entry, None if ttl_ms < 0 else ttl_ms / 1000))
        return sorted(listings, key=lambda item: (item.entry.service, item.entry.instance))


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _parse(raw: str | bytes) -> Entry | None:
    # A hand-written or corrupted field must not break every lookup.
    try:
        return Entry.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None
