"""The kit's pub/sub seam on one server (fakeredis): plain PUBLISH/SUBSCRIBE, exact counts;
what changes on a cluster is tested against a real one (tests/integration/test_cluster.py)."""

from __future__ import annotations

import asyncio

from redis.crc import key_slot

from apps.kit.pubsub import is_cluster, open_pubsub, publish, publish_command, publish_on, same_slot


async def test_one_server_uses_plain_pub_sub_and_counts_receivers(redis):
    assert not is_cluster(redis) and publish_command(redis) == "PUBLISH"
    pubsub = open_pubsub(redis, ignore_subscribe_messages=True)
    await pubsub.subscribe("canaduck:inbox:calc")
    assert await publish(redis, "canaduck:inbox:calc", "hi") == 1
    assert await publish(redis, "canaduck:inbox:nobody", "hi") == 0
    async with redis.pipeline(transaction=False) as pipe:
        publish_on(pipe, "canaduck:inbox:calc", "again")
        assert await pipe.execute() == [1]
    heard = []
    for _ in range(100):
        message = await pubsub.get_message(timeout=0.05)
        if message:
            heard.append(message["data"])
        if len(heard) == 2:
            break
        await asyncio.sleep(0)
    assert heard == [b"hi", b"again"]
    await pubsub.aclose()


def test_channels_are_split_by_the_hash_slot_of_a_key():
    here, elsewhere = same_slot("canaduck:chat:{#room}:log",
                                ["canaduck:chat:{#room}:live", "canaduck:irc:fan:{#room}",
                                 "canaduck:chat:{bob}:live"])
    assert here == ["canaduck:chat:{#room}:live", "canaduck:irc:fan:{#room}"]
    assert elsewhere == ["canaduck:chat:{bob}:live"]
    assert key_slot(b"canaduck:chat:{bob}:live") != key_slot(b"canaduck:chat:{#room}:log")
