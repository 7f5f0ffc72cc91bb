"""The replica's pub/sub subscriptions: a follow returns once Redis has confirmed the
subscription, whichever follower asked first."""

from __future__ import annotations

import asyncio
from collections import Counter

from apps.ircd.bus import Bus


class PubSub:
    """A subscriber that sends SUBSCRIBE and leaves the confirmation to the test."""

    def __init__(self) -> None:
        self.subscribed: list[str] = []

    async def subscribe(self, channel: str) -> None:
        self.subscribed.append(channel)


async def handler(channel: str, data: bytes) -> None:
    return None


async def test_a_second_follower_waits_for_the_first_ones_unconfirmed_subscription():
    bus = Bus(None, handler, Counter(), confirm_timeout=2.0)  # type: ignore[arg-type]
    pubsub = bus._pubsub = PubSub()  # type: ignore[assignment]
    first = asyncio.ensure_future(bus.follow("chan"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(bus.follow("chan"))
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()  # neither may answer its JOIN yet
    await bus._dispatch({"type": "subscribe", "channel": b"chan"})
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert pubsub.subscribed == ["chan"]  # one SUBSCRIBE for both


async def test_a_follower_of_a_confirmed_subscription_does_not_wait():
    bus = Bus(None, handler, Counter(), confirm_timeout=2.0)  # type: ignore[arg-type]
    bus._pubsub = PubSub()  # type: ignore[assignment]
    first = asyncio.ensure_future(bus.follow("chan"))
    await asyncio.sleep(0)
    await bus._dispatch({"type": "subscribe", "channel": b"chan"})
    await first
    await asyncio.wait_for(bus.follow("chan"), 0.01)
