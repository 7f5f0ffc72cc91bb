"""The directory service on fakeredis: its HTTP view of the services' hashes, the static entries
of exercise 2.1, and the pruning of the index of service names."""

from __future__ import annotations

import json

from apps.directory.app import create_app
from apps.directory.settings import DirectorySettings
from apps.kit.directory import Directory, Entry
from apps.kit.names import Keys
from scripts.devkit import wait_until_async

KEYS = Keys()


def settings(**overrides: object) -> DirectorySettings:
    return DirectorySettings(instance_id="directory-1", port=5101, dns_port=0, stats_interval=0,
                             **overrides)  # type: ignore[arg-type]


def entry(service: str, instance: str, url: str = "http://127.0.0.1:5200") -> Entry:
    return Entry(service=service, instance=instance, url=url, channel=KEYS.inbox(service))


async def test_the_view_lists_every_service_and_one_service_from_its_own_hash(redis, started):
    directory = Directory(redis, KEYS, ttl=10)
    async with started(create_app(settings(), redis=redis)) as client:
        for service, instance in (("calc", "calc-2"), ("calc", "calc-1"), ("users", "users-1")):
            await directory.register(entry(service, instance))
        # calc's user can still write lies into its own hash: they are never shown as users.
        await redis.hset(KEYS.directory("calc"), "evil",
                         entry("users", "evil", "http://203.0.113.9:80").to_json())
        everything = await (await client.get("/directory")).get_json()
        assert {name: [i["instance"] for i in items] for name, items in everything["services"].items()} == {
            "calc": ["calc-1", "calc-2"], "directory": ["directory-1"], "users": ["users-1"]}
        assert everything["instances"] == 4
        users = await (await client.get("/directory/users")).get_json()
        assert [(i["instance"], i["url"]) for i in users["instances"]] == [("users-1", "http://127.0.0.1:5200")]
        assert 9 < users["instances"][0]["ttl"] <= 10
        assert (await client.get("/directory/nobody")).status_code == 404


async def test_static_entries_go_to_each_services_own_hash_without_ttl(redis, started):
    static = json.dumps([{"service": "weather", "url": "http://10.0.0.7:5000"},
                         {"service": "jokes", "url": "http://10.0.0.8:5000", "instance": "j"}])
    async with started(create_app(settings(directory_static=static), redis=redis)):
        assert await redis.hpttl(KEYS.directory("weather"), "static") == [-1]
        assert json.loads(await redis.hget(KEYS.directory("jokes"), "j"))["url"] == "http://10.0.0.8:5000"
        assert await redis.smembers(KEYS.services) == {b"directory", b"jokes", b"weather"}


async def test_names_whose_hash_is_gone_are_pruned_from_the_index(redis, started):
    directory = Directory(redis, KEYS, ttl=10)
    await directory.register(entry("calc", "calc-1"))
    await redis.sadd(KEYS.services, "gone", "bogus")
    async with started(create_app(settings(directory_prune_interval=0.05), redis=redis)):

        async def pruned() -> bool:
            return await redis.smembers(KEYS.services) == {b"calc", b"directory"}

        await wait_until_async(pruned, timeout=3)
