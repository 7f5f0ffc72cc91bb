"""Broker client: publish envelopes and events, and listen on channels that survive Redis drops."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.kit.envelope import Envelope, MalformedEnvelope
from apps.kit.logs import request_id_var, serving
from apps.kit.names import Keys
from apps.kit.pubsub import open_pubsub, publish
from apps.kit.tasks import cancel_and_wait

log = logging.getLogger("canaduck.broker")

RawHandler = Callable[[str, bytes], Awaitable[None]]
EnvelopeHandler = Callable[[Envelope], Awaitable[None]]


class BrokerClient:
    """What a service uses to talk over Redis pub/sub.

    `send` hands an envelope to the broker (which relays it to the recipient's inbox);
    `deliver` publishes straight to an inbox (what the broker itself does); `listen` keeps a
    subscription alive across Redis restarts.
    """

    def __init__(self, redis: Redis, keys: Keys, service: str, instance: str = "") -> None:
        self._redis = redis
        self.keys = keys
        self.service = service
        self.instance = instance
        #: received, malformed, handler_errors, reconnects: read by /metrics and tests.
        self.counts: Counter[str] = Counter()

    def envelope(
        self, to: str, kind: str, body: Any = None, *, within: float | None = None,
        request_id: str | None = None,
    ) -> Envelope:
        """A new envelope from this service; `within` seconds sets its deadline.

        It carries `request_id`, by default the id of the request being served (if any).
        """
        now = time.time()
        return Envelope(
            sender=self.service, to=to, kind=kind, body=body, sent_at=now,
            deadline=None if within is None else now + within,
            request_id=request_id or request_id_var.get() or None,
        )

    async def send(self, envelope: Envelope) -> int:
        """Hand `envelope` to the broker; returns how many brokers heard it (0: none running)."""
        return await publish(self._redis, self.keys.broker, envelope.to_json())

    async def deliver(self, envelope: Envelope) -> int:
        """Publish `envelope` on its recipient's inbox; returns how many instances heard it."""
        return await publish(self._redis, self.keys.inbox(envelope.to), envelope.to_json())

    async def event(self, kind: str, **fields: Any) -> None:
        """Publish a lifecycle or rally event on the events channel (fire and forget)."""
        payload = {"kind": kind, "service": self.service, "instance": self.instance,
                   "at": time.time(), **fields}
        await publish(self._redis, self.keys.events, json.dumps(payload, separators=(",", ":")))

    def listen(self, channels: list[str], handler: RawHandler, *, name: str = "") -> Subscription:
        """Start a subscription task calling `handler(channel, data)` for each message."""
        return Subscription(self._redis, channels, handler, self.counts, name=name or ",".join(channels))

    def listen_envelopes(self, channels: list[str], handler: EnvelopeHandler) -> Subscription:
        """Like `listen`, but each message is validated as an envelope first.

        Malformed messages are logged and counted, never passed on and never fatal. The
        handler runs as part of the envelope's request: its logs, HTTP calls and envelopes
        carry the envelope's `request_id`.
        """

        async def on_message(channel: str, data: bytes) -> None:
            envelope = parse_or_count(channel, data, self.counts)
            if envelope is not None:
                with serving(envelope.request_id):
                    await handler(envelope)

        return self.listen(channels, on_message)


def parse_or_count(channel: str, data: bytes, counts: Counter[str]) -> Envelope | None:
    """The envelope in `data`; None for a malformed one, which is counted and logged."""
    try:
        return Envelope.parse(data)
    except MalformedEnvelope as exc:
        counts["malformed"] += 1
        log.warning("malformed envelope on %s: %s", channel, exc)
        return None


class Subscription:
    """A pub/sub subscription run as a task, resubscribing with backoff after a Redis drop."""

    def __init__(
        self, redis: Redis, channels: list[str], handler: RawHandler, counts: Counter[str],
        *, name: str,
    ) -> None:
        self._redis = redis
        self._channels = channels
        self._handler = handler
        self._counts = counts
        self.subscribed = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"subscription:{name}")

    async def _run(self) -> None:
        delay = 0.05
        while True:
            pubsub = open_pubsub(self._redis, ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._channels)
                self.subscribed.set()
                delay = 0.05
                async for message in pubsub.listen():
                    await self._dispatch(message)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.subscribed.clear()
                self._counts["reconnects"] += 1
                log.warning("subscription to %s lost (%s); retrying in %.2f s",
                            ",".join(self._channels), exc, delay)
            finally:
                await _close_quietly(pubsub)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        self._counts["received"] += 1
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        data = message["data"]
        try:
            await self._handler(channel, data if isinstance(data, bytes) else str(data).encode())
        except Exception:
            # One bad message or handler bug must not end the subscription.
            self._counts["handler_errors"] += 1
            log.exception("handler failed for a message on %s", channel)

    async def stop(self) -> None:
        """Cancel the task and wait for it to finish."""
        await cancel_and_wait(self._task)


async def _close_quietly(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception:  # the link may already be gone; nothing to release then
        log.debug("pubsub close failed", exc_info=True)
