"""The gateway's shared state in Redis: what the scripts keep atomic."""

from __future__ import annotations

import fakeredis

from apps.chat.records import Status
from apps.ircd.store import Store


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
