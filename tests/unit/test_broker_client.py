import asyncio
import json

from apps.kit.broker import BrokerClient
from apps.kit.envelope import Envelope
from apps.kit.names import Keys
from scripts.devkit import wait_until_async

KEYS = Keys()


async def test_send_goes_to_the_broker_channel_and_deliver_to_the_inbox(redis) -> None:
    ping = BrokerClient(redis, KEYS, "ping")
    heard: list[Envelope] = []

    async def on_envelope(envelope: Envelope) -> None:
        heard.append(envelope)

    subscription = ping.listen_envelopes([KEYS.broker, KEYS.inbox("pong")], on_envelope)
    await subscription.subscribed.wait()
    shot = ping.envelope("pong", "shot", {"hit": 1}, within=0.5)
    assert await ping.send(shot) == 1
    assert await ping.deliver(shot) == 1
    await wait_until_async(lambda: len(heard) == 2)
    assert heard == [shot, shot]
    assert shot.deadline is not None and 0.49 < shot.deadline - shot.sent_at <= 0.5
    await subscription.stop()


async def test_malformed_messages_are_counted_and_the_subscription_goes_on(redis) -> None:
    client = BrokerClient(redis, KEYS, "pong")
    heard: list[Envelope] = []

    async def on_envelope(envelope: Envelope) -> None:
        heard.append(envelope)

    subscription = client.listen_envelopes([KEYS.inbox("pong")], on_envelope)
    await subscription.subscribed.wait()
    for garbage in ("{oops", json.dumps({"to": "pong"}), "42"):
        await redis.publish(KEYS.inbox("pong"), garbage)
    good = client.envelope("pong", "shot")
    await client.deliver(good)
    await wait_until_async(lambda: heard)
    assert heard == [good]
    assert client.counts["malformed"] == 3
    await subscription.stop()


async def test_a_failing_handler_is_counted_not_fatal(redis):
    client = BrokerClient(redis, KEYS, "pong")
    calls = []

    async def flaky(channel: str, data: bytes) -> None:
        calls.append(data)
        if data == b"boom":
            raise RuntimeError("handler bug")

    subscription = client.listen([KEYS.events], flaky)
    await subscription.subscribed.wait()
    await redis.publish(KEYS.events, "boom")
    await redis.publish(KEYS.events, "fine")
    await wait_until_async(lambda: len(calls) == 2)
    assert client.counts["handler_errors"] == 1
    await subscription.stop()


async def test_events_carry_who_and_when(redis):
    client = BrokerClient(redis, KEYS, "calc", "calc-1")
    pubsub = redis.pubsub()
    await pubsub.subscribe(KEYS.events)
    await client.event("registered", url="http://x")
    async with asyncio.timeout(2):
        while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)) is None:
            pass
    event = json.loads(message["data"])
    assert event["kind"] == "registered" and event["service"] == "calc"
    assert event["instance"] == "calc-1" and event["url"] == "http://x"
    await pubsub.aclose()
