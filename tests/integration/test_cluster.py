"""The kit on a Valkey Cluster: sharded pub/sub with exact receiver counts, reads across slots,
the directory's hashes and index in different slots, and a subscription that follows a
failover. (Other integration tests marked `cluster` run the services themselves on it.)"""

from __future__ import annotations

import asyncio

import pytest

from apps.kit.broker import BrokerClient
from apps.kit.directory import Directory, Entry
from apps.kit.names import Keys
from apps.kit.pubsub import open_pubsub, publish
from apps.kit.redisconn import connect, get_many
from scripts.devkit import ValkeyCluster, wait_until_async
from scripts.devkit.redis_cluster import wait_for_failover

KEYS = Keys()


@pytest.fixture
def cluster(valkey_cluster: ValkeyCluster) -> ValkeyCluster:
    valkey_cluster.flushall()
    return valkey_cluster


def as_user(cluster: ValkeyCluster, user: str):
    return connect(cluster.url(user), client_name=f"test-{user}", cluster=True)


def slot_owner(cluster: ValkeyCluster, name: str) -> int:
    admin = cluster.admin()
    try:
        node = admin.get_node_from_key(name)
        return int(node.port)
    finally:
        admin.close()


async def test_sharded_channels_on_every_node_are_heard_and_counted_exactly(cluster):
    client = as_user(cluster, "broker")
    # Inboxes of several services: their slots fall on different nodes.
    inboxes = [KEYS.inbox(name) for name in ("calc", "mult", "ping", "pong", "jokes", "weather")]
    assert len({slot_owner(cluster, inbox) for inbox in inboxes}) > 1
    pubsub = open_pubsub(client, ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(*inboxes)
        for inbox in inboxes:
            assert await publish(client, inbox, inbox) == 1  # the count is the owner's: exact
        assert await publish(client, KEYS.inbox("nobody"), "x") == 0
        heard = set()
        while len(heard) < len(inboxes):
            message = await asyncio.wait_for(pubsub.get_message(timeout=None), 5)
            assert message is not None and message["type"] == "message"
            heard.add(message["data"].decode())
        assert heard == set(inboxes)
        await pubsub.unsubscribe(inboxes[0])

        async def left() -> bool:
            return await publish(client, inboxes[0], "late") == 0

        await wait_until_async(left, timeout=5)
        assert await publish(client, inboxes[1], "still") == 1
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_reads_of_several_keys_across_slots(cluster):
    client = as_user(cluster, "aggregator")
    keys = [f"canaduck:cache:weather:{city}" for city in ("paris", "lyon", "oslo", "lima", "rome")]
    try:
        for key in keys[:3]:
            await client.set(key, key)
        assert await get_many(client, keys) == [b"canaduck:cache:weather:paris",
                                                b"canaduck:cache:weather:lyon",
                                                b"canaduck:cache:weather:oslo", None, None]
    finally:
        await client.aclose()


async def test_the_directory_spread_over_slots_each_hash_written_by_its_own_service(cluster):
    services = ("calc", "mult", "users", "jokes")
    assert len({slot_owner(cluster, KEYS.directory(name)) for name in (*services, "web")}) > 1
    clients = {user: as_user(cluster, user) for user in (*services, "web", "directory")}
    try:
        for name in services:  # each registers with its own login: HSET + HPEXPIRE, then SADD
            await Directory(clients[name], KEYS, ttl=10).register(
                Entry(name, f"{name}-1", f"http://127.0.0.1:{5000 + len(name)}", KEYS.inbox(name)))
        await Directory(clients["directory"], KEYS, ttl=10).register_static(
            Entry("weather", "static", "http://10.0.0.7:5000", KEYS.inbox("weather")))
        reader = Directory(clients["web"], KEYS, ttl=10)
        listed = await reader.list()
        assert [(item.entry.name, item.ttl is None) for item in listed] == [
            ("calc/calc-1", False), ("jokes/jokes-1", False), ("mult/mult-1", False),
            ("users/users-1", False), ("weather/static", True)]
        assert [e.instance for e in await reader.lookup("users")] == ["users-1"]
        await Directory(clients["calc"], KEYS, ttl=10).deregister("calc", "calc-1")
        assert await Directory(clients["directory"], KEYS, ttl=10).prune() == ["calc"]
        assert await reader.services() == ["jokes", "mult", "users", "weather"]
    finally:
        for client in clients.values():
            await client.aclose()


async def test_a_subscription_follows_a_failover_of_its_primary(cluster) -> None:
    client = as_user(cluster, "calc")
    broker = BrokerClient(client, KEYS, "calc")
    heard: list[bytes] = []

    async def on_message(channel: str, data: bytes) -> None:
        heard.append(data)

    inbox = KEYS.inbox("calc")
    owner = slot_owner(cluster, inbox)
    subscription = broker.listen([inbox], on_message)
    try:
        await asyncio.wait_for(subscription.subscribed.wait(), 5)
        cluster.kill(owner)
        await asyncio.to_thread(wait_for_failover, cluster, owner)
        publisher = as_user(cluster, "broker")

        async def heard_after_publishing() -> bool:
            if not heard:
                try:
                    await publish(publisher, inbox, "after the failover")
                except Exception:  # the client may still be learning the new slot map
                    return False
            return bool(heard)

        await wait_until_async(heard_after_publishing, timeout=20, interval=0.2)
        assert heard[0] == b"after the failover"
        assert broker.counts["reconnects"] >= 1
        await publisher.aclose()
    finally:
        await subscription.stop()
        await client.aclose()
        # The old primary comes back as a replica of the new one: the cluster is whole again.
        await asyncio.to_thread(cluster.revive, owner)
        await asyncio.to_thread(_wait_whole, cluster)


def _wait_whole(cluster: ValkeyCluster) -> None:
    from scripts.devkit import wait_until

    wait_until(cluster.ok, timeout=30, interval=0.2)
