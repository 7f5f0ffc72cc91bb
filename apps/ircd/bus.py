"""Pub/sub between replicas: one connection, subscribed only to what local clients need.

A replica listens on its own channel (private messages, notices for its clients) and on the
fan-out channel of every IRC channel that has a local member. `follow` returns once Redis has
confirmed the subscription, so nothing published after a JOIN's reply can be missed. After a
dropped link every current channel is subscribed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.kit.pubsub import Subscriber, open_pubsub
from apps.kit.tasks import cancel_and_wait

log = logging.getLogger("canaduck.ircd.bus")

Handler = Callable[[str, bytes], Awaitable[None]]


class Bus:
    """Dynamic subscriptions with reference counts, delivered to one handler."""

    def __init__(self, redis: Redis, handler: Handler, counts: Counter[str], *,
                 confirm_timeout: float = 2.0) -> None:
        self._redis = redis
        self._handler = handler
        self._channels: Counter[str] = Counter()
        self._confirmed: dict[str, asyncio.Event] = {}  # subscriptions awaiting Redis's answer
        self._pubsub: Subscriber | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._confirm_timeout = confirm_timeout
        #: received, handler_errors, reconnects: the replica's counts (/metrics, /stats)
        self.counts = counts

    async def start(self, *channels: str) -> None:
        """Subscribe to `channels` (kept for the bus's life) and start listening."""
        for channel in channels:
            self._channels[channel] += 1
        self._task = asyncio.create_task(self._run(), name="ircd-bus")
        await asyncio.wait_for(self._ready.wait(), self._confirm_timeout * 5)

    async def stop(self) -> None:
        if self._task:
            await cancel_and_wait(self._task)

    async def follow(self, channel: str) -> None:
        """Count one more local interest in `channel`; subscribe on the first one."""
        self._channels[channel] += 1
        if self._pubsub is None:
            return
        if self._channels[channel] > 1:
            # Another follower's subscription may still be unconfirmed: this one waits for it
            # too, or what is published meanwhile could be missed after its JOIN's reply.
            pending = self._confirmed.get(channel)
            if pending is not None:
                with contextlib.suppress(TimeoutError):  # the first follower logs it
                    await asyncio.wait_for(pending.wait(), self._confirm_timeout)
            return
        event = self._confirmed[channel] = asyncio.Event()
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(event.wait(), self._confirm_timeout)
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
            # The reader resubscribes everything when the link comes back.
            log.warning("subscribe to %s not confirmed (%s)", channel, exc)
        finally:
            # Kept only while awaited: every client follows its nick's channel, and an Event
            # kept for each (with its waiters' deque) was 0.9 KiB of every connection.
            if self._confirmed.get(channel) is event:
                del self._confirmed[channel]

    async def unfollow(self, channel: str) -> None:
        """Count one less local interest; unsubscribe when none is left."""
        if self._channels[channel] <= 0:
            return
        self._channels[channel] -= 1
        if self._channels[channel] == 0:
            del self._channels[channel]
            self._confirmed.pop(channel, None)
            if self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(channel)
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                    log.warning("unsubscribe from %s failed (%s)", channel, exc)

    async def _run(self) -> None:
        delay = 0.05
        while True:
            pubsub = open_pubsub(self._redis)
            try:
                await pubsub.subscribe(*self._channels)
                self._pubsub = pubsub
                delay = 0.05
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        await self._dispatch(message)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._pubsub = None
                self._ready.clear()
                self.counts["reconnects"] += 1
                log.warning("pub/sub link lost (%s); resubscribing in %.2f s", exc, delay)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    log.debug("pubsub close failed", exc_info=True)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "subscribe":
            self._ready.set()
            event = self._confirmed.get(channel)
            if event:
                event.set()
            return
        if kind != "message":
            return
        self.counts["received"] += 1
        data = message["data"]
        try:
            await self._handler(channel, data if isinstance(data, bytes) else str(data).encode())
        except Exception:
            self.counts["handler_errors"] += 1
            log.exception("bus handler failed on %s", channel)
