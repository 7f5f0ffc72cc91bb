"""Getting one part (a weather report, the joke of the moment): cache first, then upstream.

    fresh copy in the cache          -> HIT
    else ask the upstream            -> MISS   (one call per key at a time: single-flight)
    upstream down, a copy is left    -> STALE  (stale-if-error)
    upstream down, nothing left      -> no answer, and the reason
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from apps.aggregator.cache import Entry, ResponseCache
from apps.aggregator.singleflight import SingleFlight
from apps.aggregator.upstreams import Answer, UpstreamDown


class CacheStatus(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a response: the answer (None if none could be had), how, and why not."""

    answer: Answer | None
    status: CacheStatus
    error: str | None = None
    age: float | None = None  # seconds since the upstream gave this answer (cached copies)


@dataclass(frozen=True, slots=True)
class Source:
    """Where one kind of part comes from: its cache key, freshness and upstream call."""

    name: str
    key: str
    fresh_for: float
    call: Callable[[], Awaitable[Answer]]


class PartGetter:
    """Turns a Source (and what the cache already holds for it) into a Part."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache
        self.flights: SingleFlight[Answer] = SingleFlight()
        self.counts: Counter[str] = Counter()

    def hits(self, cached: list[Entry | None]) -> list[Part] | None:
        """The parts if every entry is fresh (all HIT), else None."""
        now = self.cache.now()
        if not all(entry is not None and entry.fresh(now) for entry in cached):
            return None
        self.counts["hit"] += len(cached)
        return [Part(Answer(200, e.body), CacheStatus.HIT, age=e.age(now)) for e in cached if e]

    def fresh(self, cached: Entry | None) -> Part | None:
        """A HIT part if `cached` is fresh, else None (the upstream must be asked)."""
        now = self.cache.now()
        if cached is None or not cached.fresh(now):
            return None
        self.counts["hit"] += 1
        return Part(Answer(200, cached.body), CacheStatus.HIT, age=cached.age(now))

    async def get(self, source: Source, cached: Entry | None) -> Part:
        """The part for `source`; `cached` is what a read of `source.key` just found."""
        hit = self.fresh(cached)
        if hit is not None:
            return hit
        now = self.cache.now()
        try:
            answer = await self.flights.run(source.key, lambda: self._refresh(source))
        except UpstreamDown as down:
            self.counts[f"down:{source.name}"] += 1
            if cached is not None:
                self.counts["stale"] += 1
                return Part(Answer(200, cached.body), CacheStatus.STALE, down.reason, cached.age(now))
            return Part(None, CacheStatus.MISS, down.reason)
        self.counts["miss"] += 1
        return Part(answer, CacheStatus.MISS)

    async def _refresh(self, source: Source) -> Answer:
        # A flight may have landed between our read and this one's start: look again before
        # calling, so N concurrent misses make one upstream call. (In memory when entries are
        # kept there, as every landed flight's answer is; else in Redis.)
        again = await self.cache.reread(source.key)
        if again is not None and again.fresh(self.cache.now()):
            return Answer(200, again.body)
        self.counts[f"call:{source.name}"] += 1
        answer = await source.call()
        if answer.ok:
            await self.cache.store(source.key, answer.body, source.fresh_for)
        return answer
