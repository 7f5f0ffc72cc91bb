"""The gateway's shared state in Redis: what the scripts keep atomic."""

from __future__ import annotations

import fakeredis

from apps.chat.records import Status, User
from apps.ircd.store import Counts, Store


async def test_a_status_change_racing_a_departure_brings_no_member_back():
    redis = fakeredis.FakeAsyncRedis()
    store = Store(redis)
    for uid in ("u1", "u2"):
        await store.join("#r", "#r", uid, key="", banned=False, invex=False, now=0)
    # The member leaves while its status is being changed, between any two Redis commands the
    # change might take (here: just before a write of the members hash).
    left = []
    hset = redis.hset

    async def leaving_first(*args, **kwargs):
        left.append(await store.leave("#r", "u2"))
        return await hset(*args, **kwargs)

    redis.hset = leaving_first  # type: ignore[method-assign]
    await store.set_status("#r", "u2", Status("o"))
    redis.hset = hset  # type: ignore[method-assign]
    members = await store.members("#r")
    assert ("u2" in members) != any(left), (members, left)
    await redis.aclose()


async def test_an_address_is_counted_across_replicas_and_its_hash_goes_with_its_last_connection():
    redis = fakeredis.FakeAsyncRedis()
    store = Store(redis)
    assert await store.connect_ip("192.0.2.1", "ircd-1", 1, unregistered=True) == 1
    assert await store.connect_ip("192.0.2.1", "ircd-2", 1) == 2
    assert await store.connect_ip("192.0.2.1", "ircd-1", 1) == 3
    assert await redis.hgetall(store.keys.network("unregistered")) == {b"ircd-1": b"1"}
    assert await store.connect_ip("192.0.2.1", "ircd-1", -1) == 2
    assert await store.connect_ip("192.0.2.1", "ircd-1", -1, unregistered=True) == 1
    assert await redis.hgetall(store.keys.address("192.0.2.1")) == {b"ircd-2": b"1"}
    assert await store.connect_ip("192.0.2.1", "ircd-2", -1) == 0
    assert not await redis.exists(store.keys.address("192.0.2.1"))
    # A replica's stale negative count (its connections ended twice) counts as none.
    await redis.hset(store.keys.address("192.0.2.2"), "ircd-9", -3)
    assert await store.connect_ip("192.0.2.2", "ircd-1", 1) == 1
    await redis.aclose()


async def test_a_registration_writes_its_user_and_reads_the_counts_after_it():
    redis = fakeredis.FakeAsyncRedis()
    store = Store(redis)
    await store.connect_ip("192.0.2.1", "ircd-1", 1, unregistered=True)
    await store.connect_ip("192.0.2.1", "ircd-1", 1, unregistered=True)
    await redis.sadd(store.keys.monitor("alice"), "ircd-2 w1")
    await redis.hset(store.keys.user_devices("u1"), "stale", "ircd-9")  # a former user's, gone
    alice = User(uid="u1", nick="Alice", username="~a", host="h", realname="A", account="Alice",
                 instance="ircd-1", signon=5)
    registered = await store.register_user(alice, "d1", "alice")

    assert registered.watchers == {"w1": "ircd-2"}
    assert registered.counts == Counts(users=1, most=1, invisible=0, opers=0, unregistered=1, channels=0)
    assert await store.user("u1") == alice
    assert await redis.hgetall(store.keys.user_devices("u1")) == {b"d1": b"ircd-1"}
    assert await store.replica_uids("ircd-1") == ["u1"]
    assert await redis.smembers(store.keys.account_connections("alice")) == {b"u1"}
    assert await store.counts() == registered.counts

    await redis.set(store.keys.network("most"), 7)  # the peak stays when fewer are here
    bob = User(uid="u2", nick="bob", instance="ircd-1", signon=6)
    assert (await store.register_user(bob, "", "bob")).counts.most == 7
    assert await redis.hgetall(store.keys.user_devices("u2")) == {b"u2": b"ircd-1"}
    await redis.aclose()


async def test_users_read_whole_records_in_one_script_and_leave_out_the_gone_ones() -> None:
    redis = fakeredis.FakeAsyncRedis()
    store = Store(redis)
    alice = User(uid="u1", nick="alice", username="~a", host="h", realname="Alice A", account="alice",
                 away="out", modes="i", instance="ircd-1", signon=5, secure=True)
    await redis.hset(store.keys.user("u1"), mapping=alice.to_redis())  # type: ignore[arg-type]
    assert await store.users(["u1", "gone"]) == {"u1": alice}
    assert await store.users([]) == {}
    await redis.aclose()
