"""The response cache in Redis: one string per item, JSON, readable with redis-cli.

    GET canaduck:cache:weather:rodez
    {"stored_at": 1747224000.1, "fresh_until": 1747224600.1, "body": {"city": "Rodez", ...}}

An entry is fresh until `fresh_until` (then it is refreshed on the next request) and lives in
Redis for the stale lifetime (TTL, 24 h by default): a stale copy is what answers when the
upstream fails. Redis failing or slow never fails a request: the read counts as a miss, the
write is skipped, and the cache is bypassed for `retry_after` seconds before trying again.

In front of Redis, each instance keeps the fresh entries it has seen for at most `local_for`
seconds (a micro-cache): a hot key then costs no round trip at all, and instances disagree
for at most that long after a refresh. Only fresh entries are kept there; stale copies are
always read from Redis. With that copy on, a new entry is written to Redis in the background
(`store`): the answer that brought it does not wait for the `SET`, while this instance's next
readers find it in memory at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.redisconn import get_many

log = logging.getLogger("canaduck.cache")


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached upstream body and when it was stored / stops being fresh (unix seconds)."""

    body: dict[str, Any]
    stored_at: float
    fresh_until: float

    def fresh(self, now: float) -> bool:
        return now < self.fresh_until

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def to_json(self) -> str:
        return json.dumps({"stored_at": round(self.stored_at, 3),
                           "fresh_until": round(self.fresh_until, 3), "body": self.body},
                          ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Entry | None:
        """The entry, or None for anything unreadable (hand-edited, truncated, other shape)."""
        try:
            data = json.loads(raw)
            body = data["body"]
            if not isinstance(body, dict):
                return None
            return cls(body=body, stored_at=float(data["stored_at"]),
                       fresh_until=float(data["fresh_until"]))
        except (ValueError, KeyError, TypeError):
            return None


class ResponseCache:
    """Reads and writes entries; a circuit breaker keeps a sick Redis off the request path."""

    def __init__(self, redis: Redis, *, stale_ttl: float, timeout: float, retry_after: float,
                 local_for: float = 0.0, local_size: int = 10_000,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._redis = redis
        self._local_for = local_for
        self._local_size = local_size
        self._local: dict[str, tuple[float, Entry]] = {}  # key -> (kept until, entry)
        self._stale_ttl_ms = max(1, round(stale_ttl * 1000))
        self._timeout = timeout
        self._retry_after = retry_after
        self.clock = clock
        self._bypass_until = 0.0
        self._writes: set[asyncio.Task[None]] = set()
        self.errors = 0

    def now(self) -> float:
        """The time entries are dated with: wall time, since other instances read them."""
        return self.clock.wall()

    @property
    def available(self) -> bool:
        """False while the cache is bypassed after a Redis failure."""
        return self.now() >= self._bypass_until

    async def read(self, *keys: str) -> list[Entry | None]:
        """The entries under `keys`, None for each missing or unreadable one (all None if down)."""
        found = [self._recall(key) for key in keys]
        missing = [key for key, entry in zip(keys, found, strict=True) if entry is None]
        if not missing:
            return found
        if not self.available:
            return found
        try:
            async with asyncio.timeout(self._timeout):
                raws = await get_many(self._redis, missing)
        except (RedisError, OSError, TimeoutError) as exc:
            self._trip(exc)
            return found
        read = {key: None if raw is None else Entry.from_json(raw) for key, raw in zip(missing, raws,
                                                                                      strict=True)}
        for key, entry in read.items():
            if entry is not None:
                self._remember(key, entry)
        return [entry if entry is not None else read.get(key) for key, entry in zip(keys, found, strict=True)]

    async def reread(self, key: str) -> Entry | None:
        """The entry under `key` as of now: from memory if entries are kept there, else Redis."""
        if self._local_for > 0:
            return self._recall(key)
        (entry,) = await self.read(key)
        return entry

    def _recall(self, key: str) -> Entry | None:
        kept = self._local.get(key)
        if kept is None:
            return None
        if self.now() < kept[0]:
            return kept[1]
        del self._local[key]
        return None

    def _remember(self, key: str, entry: Entry) -> None:
        now = self.now()
        until = min(entry.fresh_until, now + self._local_for)
        if self._local_for <= 0 or now >= until:
            return
        if len(self._local) >= self._local_size:
            self._local.pop(next(iter(self._local)))  # the oldest: a bound, not an LRU
        self._local[key] = (until, entry)

    async def write(self, key: str, body: dict[str, Any], fresh_for: float) -> None:
        """Store `body` as fresh for `fresh_for` seconds, kept for the stale lifetime."""
        await self._put(key, self._new_entry(key, body, fresh_for))

    async def store(self, key: str, body: dict[str, Any], fresh_for: float) -> None:
        """`write`, but when entries are kept in memory, the Redis write goes on in the
        background: the caller answers one round trip sooner. `settle` waits for it."""
        entry = self._new_entry(key, body, fresh_for)
        if self._local_for <= 0:  # readers look in Redis: it must be there first
            await self._put(key, entry)
            return
        task = asyncio.create_task(self._put(key, entry), name=f"cache write {key}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def settle(self) -> None:
        """Wait for the background writes under way (at stop; tests that read Redis)."""
        while self._writes:
            await asyncio.wait(set(self._writes))

    def _new_entry(self, key: str, body: dict[str, Any], fresh_for: float) -> Entry:
        now = self.now()
        entry = Entry(body=body, stored_at=now, fresh_until=now + fresh_for)
        self._remember(key, entry)  # also while Redis is down: it spares the upstreams
        return entry

    async def _put(self, key: str, entry: Entry) -> None:
        if not self.available:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.set(key, entry.to_json(), px=self._stale_ttl_ms)
        except (RedisError, OSError, TimeoutError) as exc:
            self._trip(exc)

    def _trip(self, exc: BaseException) -> None:
        self.errors += 1
        if self.available:  # say it once per outage, not once per request
            log.warning("cache unavailable (%s); answering from the upstreams for %g s",
                        type(exc).__name__, self._retry_after)
        # On the injected clock, as the entries' freshness: tests move it by hand. A step of
        # the wall clock only lengthens or shortens one bypass.
        self._bypass_until = self.now() + self._retry_after
