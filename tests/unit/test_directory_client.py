import asyncio
import json
import logging

import pytest

from apps.kit.directory import Directory, Entry, check_entry
from apps.kit.names import Keys

KEYS = Keys()
CALC = "canaduck:directory:calc"


def entry(service: str = "calc", instance: str = "calc-1", url: str = "http://127.0.0.1:5101") -> Entry:
    return Entry(service=service, instance=instance, url=url, channel=f"canaduck:inbox:{service}")


async def ttl_ms(redis, key: str, field: str) -> int:
    (value,) = await redis.hpttl(key, field)
    return value


async def test_register_writes_the_services_own_hash_and_names_it_in_the_index(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry())
    assert [e.url for e in await directory.lookup("calc")] == ["http://127.0.0.1:5101"]
    assert json.loads(await redis.hget(CALC, "calc-1"))["service"] == "calc"
    assert await redis.smembers("canaduck:services") == {b"calc"}
    assert await directory.services() == ["calc"]


async def test_lookup_only_returns_that_service(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry("calc", "a"))
    await directory.register(entry("calculator", "b"))
    assert [e.instance for e in await directory.lookup("calc")] == ["a"]
    assert await directory.lookup("nobody") == []


async def test_every_write_carries_a_ttl(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry())
    assert 9_000 < await ttl_ms(redis, CALC, "calc-1") <= 10_000


async def test_heartbeat_keeps_a_ttl_after_a_plain_hset_cleared_it(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry())
    await redis.hset(CALC, "calc-1", entry().to_json())  # what a naive writer would do
    assert await ttl_ms(redis, CALC, "calc-1") == -1
    await directory.heartbeat(entry())
    assert await ttl_ms(redis, CALC, "calc-1") > 0


async def test_expired_entries_are_not_returned(redis):
    directory = Directory(redis, KEYS, ttl=0.2)
    await directory.register(entry("calc", "gone"))
    await asyncio.sleep(0.35)
    assert await directory.lookup("calc") == []
    assert await directory.list() == []


async def test_deregister_removes_only_that_instance_and_keeps_the_name_indexed(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry("calc", "a"))
    await directory.register(entry("calc", "b"))
    assert await directory.deregister("calc", "a") is True
    assert await directory.deregister("calc", "a") is False
    assert [e.instance for e in await directory.lookup("calc")] == ["b"]
    assert await directory.services() == ["calc"]


async def test_static_entries_have_no_ttl_and_list_says_so(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register_static(entry("weather", "static"))
    await directory.register(entry("calc", "a"))
    listing = {item.entry.service: item.ttl for item in await directory.list()}
    assert listing["weather"] is None
    assert 9 < listing["calc"] <= 10


async def test_list_reads_every_indexed_service_or_only_those_asked_for(redis):
    directory = Directory(redis, KEYS, ttl=10)
    for service, instance in (("mult", "mult-b"), ("calc", "calc-2"), ("mult", "mult-a"), ("calc", "calc-1")):
        await directory.register(entry(service, instance))
    assert [i.entry.name for i in await directory.list()] == [
        "calc/calc-1", "calc/calc-2", "mult/mult-a", "mult/mult-b"]
    assert [i.entry.name for i in await directory.list(["mult"])] == ["mult/mult-a", "mult/mult-b"]
    assert await directory.list(["nobody"]) == []


async def test_a_hash_missing_from_the_index_is_not_listed_but_is_looked_up(redis):
    # The index is how "every service" is found without SCAN; a lookup names its service.
    directory = Directory(redis, KEYS, ttl=10)
    await redis.hset("canaduck:directory:ghost", "g1", entry("ghost", "g1").to_json())
    assert await directory.list() == []
    assert [e.instance for e in await directory.lookup("ghost")] == ["g1"]


async def test_bogus_names_in_the_index_list_nothing(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry())
    await redis.sadd("canaduck:services", "nobody", "Bad Name", "calc:x", "*")
    assert await directory.services() == ["calc", "nobody"]
    assert [i.entry.name for i in await directory.list()] == ["calc/calc-1"]


async def test_a_corrupted_field_is_skipped_not_fatal(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await redis.hset(CALC, "broken", "{not json")
    await directory.register(entry("calc", "ok"))
    assert [e.instance for e in await directory.lookup("calc")] == ["ok"]
    assert [i.entry.instance for i in await directory.list()] == ["ok"]


async def test_an_entry_that_names_another_service_or_instance_is_skipped_and_logged_once(redis, caplog):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry("calc", "ok"))
    # What calc's own Redis user can still write: its hash, with entries that lie.
    await redis.hset(CALC, mapping={"liar": entry("users", "liar", "http://evil:1").to_json(),
                                    "other": entry("calc", "someone-else").to_json()})
    await redis.sadd("canaduck:services", "users")
    with caplog.at_level(logging.WARNING, logger="canaduck.directory"):
        for _ in range(3):
            assert [e.instance for e in await directory.lookup("calc")] == ["ok"]
            assert await directory.lookup("users") == []
            assert [i.entry.name for i in await directory.list()] == ["calc/ok"]
    skipped = [r.getMessage() for r in caplog.records]
    assert sorted(skipped) == ["directory entry calc/liar skipped: entry is not this field's (users/liar)",
                               "directory entry calc/other skipped: entry is not this field's "
                               "(calc/someone-else)"]


@pytest.mark.parametrize(("service", "field", "raw", "expected"), [
    ("calc", "calc-1", entry().to_json(), None),
    ("calc", b"calc-1", entry().to_json().encode(), None),
    ("mult", "calc-1", entry().to_json(), "entry is not this field's (calc/calc-1)"),
    ("calc", "calc-2", entry().to_json(), "entry is not this field's (calc/calc-1)"),
    ("calc", "x", '{"service": "calc"}', "not a JSON entry"),
    ("calc", "x", "[1, 2]", "not a JSON entry"),
    ("calc", "x", b"\xff\xfe", "not a JSON entry"),
    ("calc", "x" * 129, entry(instance="x" * 129).to_json(), "bad service or instance name"),
    ("Calc", "x", entry("Calc", "x").to_json(), "bad service or instance name"),
])
def test_check_entry(service, field, raw, expected):
    checked = check_entry(service, field, raw)
    assert (checked if isinstance(checked, str) else None) == expected


async def test_prune_takes_out_names_whose_hash_is_gone(redis):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry("calc", "a"))
    await directory.register_static(entry("weather", "static"))
    await directory.register(entry("mult", "m"))
    await directory.deregister("mult", "m")  # its last instance: the hash is gone
    await redis.sadd("canaduck:services", "bogus", "Bad Name")
    assert await directory.prune() == ["Bad Name", "bogus", "mult"]
    assert await redis.smembers("canaduck:services") == {b"calc", b"weather"}
    assert await directory.prune() == []


async def test_prune_puts_back_a_service_that_registers_meanwhile(redis, monkeypatch):
    directory = Directory(redis, KEYS, ttl=10)
    await redis.sadd("canaduck:services", "calc", "bogus")
    srem = redis.srem

    async def register_then_srem(key, *names):
        # calc's first instance registers after the prune found no hash, before its SREM lands:
        # HSET, then SADD (a no-op: the name is there), then the SREM takes the name out.
        await Directory(redis, KEYS, ttl=10).register(entry())
        return await srem(key, *names)

    monkeypatch.setattr(redis, "srem", register_then_srem)
    assert await directory.prune() == ["bogus"]
    assert await directory.services() == ["calc"]
