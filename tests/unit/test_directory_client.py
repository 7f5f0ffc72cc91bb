import asyncio
import json

from apps.kit.directory import Directory, Entry

KEY = "canaduck:directory"


def entry(service: str = "calc", instance: str = "calc-1", url: str = "http://127.0.0.1:5101") -> Entry:
    return Entry(service=service, instance=instance, url=url, channel=f"canaduck:inbox:{service}")


async def ttl_ms(redis, field: str) -> int:
    (value,) = await redis.hpttl(KEY, field)
    return value


async def test_register_then_lookup_returns_the_entry(redis):
    directory = Directory(redis, KEY, ttl=10)
    await directory.register(entry())
    found = await directory.lookup("calc")
    assert [e.url for e in found] == ["http://127.0.0.1:5101"]
    assert json.loads(await redis.hget(KEY, "calc/calc-1"))["service"] == "calc"


async def test_lookup_only_returns_that_service(redis):
    directory = Directory(redis, KEY, ttl=10)
    await directory.register(entry("calc", "a"))
    await directory.register(entry("calculator", "b"))
    assert [e.instance for e in await directory.lookup("calc")] == ["a"]


async def test_every_write_carries_a_ttl(redis):
    directory = Directory(redis, KEY, ttl=10)
    await directory.register(entry())
    assert 9_000 < await ttl_ms(redis, "calc/calc-1") <= 10_000


async def test_heartbeat_keeps_a_ttl_after_a_plain_hset_cleared_it(redis):
    directory = Directory(redis, KEY, ttl=10)
    await directory.register(entry())
    await redis.hset(KEY, "calc/calc-1", entry().to_json())  # what a naive writer would do
    assert await ttl_ms(redis, "calc/calc-1") == -1
    await directory.heartbeat(entry())
    assert await ttl_ms(redis, "calc/calc-1") > 0


async def test_expired_entries_are_not_returned(redis):
    directory = Directory(redis, KEY, ttl=0.2)
    await directory.register(entry("calc", "gone"))
    await asyncio.sleep(0.35)
    assert await directory.lookup("calc") == []
    assert await directory.list() == []


async def test_deregister_removes_only_that_instance(redis):
    directory = Directory(redis, KEY, ttl=10)
    await directory.register(entry("calc", "a"))
    await directory.register(entry("calc", "b"))
    assert await directory.deregister("calc", "a") is True
    assert await directory.deregister("calc", "a") is False
    assert [e.instance for e in await directory.lookup("calc")] == ["b"]


async def test_static_entries_have_no_ttl_and_list_says_so(redis):
    directory = Directory(redis, KEY, ttl=10)
    await directory.register_static(entry("weather", "static"))
    await directory.register(entry("calc", "a"))
    listing = {item.entry.service: item.ttl for item in await directory.list()}
    assert listing["weather"] is None
    assert 9 < listing["calc"] <= 10


async def test_a_corrupted_field_is_skipped_not_fatal(redis):
    directory = Directory(redis, KEY, ttl=10)
    await redis.hset(KEY, "calc/broken", "{not json")
    await directory.register(entry("calc", "ok"))
    assert [e.instance for e in await directory.lookup("calc")] == ["ok"]
    assert [i.entry.instance for i in await directory.list()] == ["ok"]
