"""The kit's subscriber over a plain TCP link (apps/kit/linksub.py) against the real server: what
`open_pubsub` gives the services on one server, as redis-py's PubSub behaves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

import redis
from apps.kit.linksub import LinkSubscriber
from apps.kit.pubsub import Subscriber, open_pubsub
from apps.kit.redisconn import connect
from scripts.devkit import RedisServer


async def next_message(subscriber: Subscriber, timeout: float = 5.0) -> dict[str, Any]:
    message = await asyncio.wait_for(subscriber.get_message(timeout=None), timeout)
    assert message is not None
    return message


@pytest.fixture
async def client(redis_server: RedisServer, admin: redis.Redis) -> Any:
    client = connect(redis_server.url("ircd"), client_name="ircd/linksub", pool_size=4)
    yield client
    await client.aclose()


async def test_a_plain_tcp_client_gets_the_link_subscriber_and_its_messages_in_order(client: Redis):
    subscriber = open_pubsub(client)
    assert isinstance(subscriber, LinkSubscriber)
    try:
        await subscriber.subscribe("canaduck:chat:{#a}:live", "canaduck:chat:{#b}:live")
        confirmed = {(await next_message(subscriber))["channel"] for _ in range(2)}
        assert confirmed == {b"canaduck:chat:{#a}:live", b"canaduck:chat:{#b}:live"}
        assert subscriber.subscribed
        async with client.pipeline(transaction=False) as pipe:
            for n in range(2000):
                pipe.publish("canaduck:chat:{#a}:live" if n % 2 else "canaduck:chat:{#b}:live", str(n))
            heard = await pipe.execute()
        assert heard == [1] * 2000
        got = [await next_message(subscriber) for _ in range(2000)]
        assert [m["data"] for m in got] == [str(n).encode() for n in range(2000)]
        assert {m["type"] for m in got} == {"message"}
        assert await subscriber.get_message(timeout=0) is None
        assert await subscriber.get_message(timeout=0.05) is None
    finally:
        await subscriber.aclose()


async def test_unsubscribing_stops_a_channels_messages_and_says_so(client: Redis):
    subscriber = open_pubsub(client, ignore_subscribe_messages=True)
    try:
        await subscriber.subscribe("canaduck:chat:{#a}:live", "canaduck:chat:{#b}:live")
        await subscriber.unsubscribe("canaduck:chat:{#a}:live")
        assert subscriber.subscribed
        await asyncio.sleep(0.05)
        assert await client.publish("canaduck:chat:{#a}:live", "gone") == 0
        assert await client.publish("canaduck:chat:{#b}:live", "here") == 1
        assert (await next_message(subscriber))["data"] == b"here"  # confirmations were skipped
        await subscriber.unsubscribe()
        assert not subscriber.subscribed
    finally:
        await subscriber.aclose()


async def test_decoded_responses_give_text(redis_server: RedisServer, admin: redis.Redis):
    client = Redis.from_url(redis_server.url("ircd"), decode_responses=True)
    subscriber = open_pubsub(client, ignore_subscribe_messages=True)
    try:
        await subscriber.subscribe("canaduck:chat:{#a}:live")
        await asyncio.sleep(0.05)
        await client.publish("canaduck:chat:{#a}:live", "héllo")
        message = await next_message(subscriber)
        assert (message["channel"], message["data"]) == ("canaduck:chat:{#a}:live", "héllo")
    finally:
        await subscriber.aclose()
        await client.aclose()


async def test_a_refused_login_fails_the_subscribe_as_redis_py_does(redis_server: RedisServer,
                                                                    admin: redis.Redis):
    client = Redis.from_url(redis_server.url("ircd", "not-the-password"))
    subscriber = open_pubsub(client)
    try:
        with pytest.raises(AuthenticationError):
            await subscriber.subscribe("canaduck:chat:{#a}:live")
    finally:
        await subscriber.aclose()
        await client.aclose()


async def test_a_channel_the_user_may_not_hear_is_refused_and_the_link_closed(client: Redis):
    # The ircd's ACL user may not subscribe to the broker's channels: Valkey answers with an
    # error and the link, told so, is given up as redis-py's would be.
    subscriber = open_pubsub(client)
    try:
        await subscriber.subscribe("canaduck:broker")
        with pytest.raises(RedisConnectionError, match="NOPERM"):
            await next_message(subscriber)
    finally:
        await subscriber.aclose()


async def test_the_link_killed_by_the_server_ends_in_a_connection_error(client: Redis, admin: redis.Redis):
    subscriber = open_pubsub(client)
    try:
        await subscriber.subscribe("canaduck:chat:{#a}:live")
        await next_message(subscriber)
        assert admin.client_kill_filter(_type="pubsub") >= 1
        with pytest.raises(RedisConnectionError):
            await next_message(subscriber)
        with pytest.raises(RedisConnectionError):  # and every read after it
            await subscriber.get_message(timeout=0)
    finally:
        await subscriber.aclose()


async def test_the_link_is_named_after_the_client(client: Redis, admin: redis.Redis):
    subscriber = open_pubsub(client)
    try:
        await subscriber.subscribe("canaduck:chat:{#a}:live")
        await next_message(subscriber)
        names = [c["name"] for c in admin.client_list(_type="pubsub")]
        assert names == ["ircd/linksub"]
    finally:
        await subscriber.aclose()
