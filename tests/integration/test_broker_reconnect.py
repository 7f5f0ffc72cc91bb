"""The broker client's subscription survives a Redis restart."""

import asyncio

from apps.kit.broker import BrokerClient
from apps.kit.names import Keys
from apps.kit.redisconn import connect
from scripts.devkit import wait_until_async

KEYS = Keys()


async def test_resubscribes_by_itself_after_redis_restarts(redis_server, admin) -> None:
    client = connect(redis_server.url("calc"), client_name="test")
    broker = BrokerClient(client, KEYS, "calc")
    heard: list[bytes] = []

    async def on_message(channel: str, data: bytes) -> None:
        heard.append(data)

    subscription = broker.listen([KEYS.inbox("calc")], on_message)
    try:
        await asyncio.wait_for(subscription.subscribed.wait(), 5)
        await asyncio.to_thread(redis_server.restart, 0.5)
        await wait_until_async(
            lambda: subscription.subscribed.is_set() and broker.counts["reconnects"] >= 1, timeout=15)

        def heard_after_publishing() -> bool:
            # Publish until heard: resubscription is asynchronous after the restart.
            if not heard:
                redis_server.admin().publish(KEYS.inbox("calc"), "after the restart")
            return bool(heard)

        await wait_until_async(heard_after_publishing, timeout=15, interval=0.1)
        assert heard[0] == b"after the restart"
    finally:
        await subscription.stop()
        await client.aclose()
