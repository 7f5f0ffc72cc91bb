"""The directory lookup cache the broker and the players resolve services through."""

from __future__ import annotations

import json

from apps.kit.dircache import DirectoryCache
from apps.kit.directory import Directory, Entry
from apps.kit.names import Keys
from scripts.devkit.clock import ManualClock

KEYS = Keys()


def entry(service: str, instance: str = "1") -> Entry:
    return Entry(service, instance, f"http://{service}.test", f"canaduck:inbox:{service}")


async def test_lookups_are_reused_for_the_ttl_then_read_again(redis):
    directory, clock = Directory(redis, KEYS, ttl=10), ManualClock()
    cache = DirectoryCache(directory, ttl=2.0, clock=clock)
    await directory.register(entry("pong"))
    assert [e.instance for e in await cache.lookup("pong")] == ["1"]
    await directory.register(entry("pong", "2"))
    assert len(await cache.lookup("pong")) == 1 and cache.hits == 1
    clock.jump(2.5)
    assert len(await cache.lookup("pong")) == 2 and cache.misses == 2


async def test_a_registered_event_drops_that_service_at_once(redis):
    directory = Directory(redis, KEYS, ttl=10)
    cache = DirectoryCache(directory, ttl=60.0)
    assert await cache.lookup("pong") == []  # unknown for now, and remembered as such
    await directory.register(entry("pong"))
    cache.on_event(json.dumps({"kind": "registered", "service": "pong"}).encode())
    assert len(await cache.lookup("pong")) == 1
    cache.on_event(b"not json")  # ignored, not fatal
    cache.on_event(json.dumps({"kind": "miss", "service": "pong"}).encode())
    assert len(await cache.lookup("pong")) == 1 and cache.hits == 1  # still cached


async def test_many_distinct_names_do_not_grow_the_cache_without_bound(redis):
    cache = DirectoryCache(Directory(redis, KEYS, ttl=10), ttl=60.0, max_services=8)
    for n in range(100):
        await cache.lookup(f"nobody-{n}")
    assert len(cache._cache) == 8
    assert "nobody-99" in cache._cache and "nobody-0" not in cache._cache
