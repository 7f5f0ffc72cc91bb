"""The relay: validate an envelope, find its recipient, publish it on the recipient's inbox.

Reading and publishing run as two tasks joined by a bounded queue, so that envelopes arriving
while a publish is in flight are relayed together in one pipelined round trip. Recipients are
resolved through a short-lived cache invalidated by directory events, not one HGETALL per
envelope. The original bytes are forwarded as they came: nothing is re-serialised.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from redis.asyncio import Redis
from redis.exceptions import RedisError

from apps.kit.broker import BrokerClient, Subscription, parse_or_count
from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.dircache import DirectoryCache
from apps.kit.envelope import Envelope
from apps.kit.pubsub import publish, publish_on
from apps.kit.tasks import cancel_and_wait

log = logging.getLogger("canaduck.relay")

UNDELIVERABLE = "undeliverable"


class Relay:
    """Relays envelopes from the broker channel, and single messages posted over HTTP."""

    def __init__(
        self, redis: Redis, broker: BrokerClient, cache: DirectoryCache, *, batch: int = 128,
        queue: int = 10_000, clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._redis = redis
        self._broker = broker
        self._cache = cache
        self._batch = batch
        self._clock = clock
        self._queue: asyncio.Queue[tuple[Envelope, bytes]] = asyncio.Queue(queue)
        #: relayed, undeliverable, expired, malformed, errors
        self.counts: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Subscription] = []
        self._failing = False

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def cache_hits(self) -> int:
        return self._cache.hits

    @property
    def cache_misses(self) -> int:
        return self._cache.misses

    async def start(self) -> None:
        """Subscribe to the broker channel (and to directory events) and start relaying."""
        self._subscriptions.append(self._cache.watch(self._broker))
        channel = self._broker.listen([self._broker.keys.broker], self.on_message, name="relay")
        self._subscriptions.append(channel)
        self._tasks.append(asyncio.create_task(self._relay_loop(), name="relay"))
        await channel.subscribed.wait()

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            await subscription.stop()
        for task in self._tasks:
            await cancel_and_wait(task)

    async def on_message(self, channel: str, data: bytes) -> None:
        """One message of the broker channel: queue it if it is a valid envelope."""
        envelope = parse_or_count(channel, data, self.counts)
        if envelope is not None:
            await self._queue.put((envelope, data))

    async def relay_now(self, envelope: Envelope) -> int | None:
        """Relay one envelope at once (POST /messages): receivers, or None if unknown recipient."""
        if not await self._cache.lookup(envelope.to):
            return None
        receivers = await publish(self._redis, self._broker.keys.inbox(envelope.to), envelope.to_json())
        if receivers:
            self.counts["relayed"] += 1
        else:
            await self._bounce([(envelope, "nobody subscribed")])
        return receivers

    async def _relay_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._relay(batch)
                if self._failing:
                    self._failing = False
                    log.info("relaying again")
            except (RedisError, OSError) as exc:
                self.counts["errors"] += len(batch)
                if not self._failing:  # once per outage, not once per envelope
                    self._failing = True
                    log.warning("relay failed (%s); dropping envelopes until Redis is back", exc)

    async def _relay(self, batch: list[tuple[Envelope, bytes]]) -> None:
        now = self._clock.wall()  # envelopes carry the sender's wall-clock deadline
        live: list[tuple[Envelope, bytes]] = []
        bounced: list[tuple[Envelope, str]] = []
        for envelope, raw in batch:
            if envelope.expired(now):
                self.counts["expired"] += 1
            elif not await self._cache.lookup(envelope.to):
                bounced.append((envelope, "unknown recipient"))
            else:
                live.append((envelope, raw))
        if live:
            inbox = self._broker.keys.inbox
            if len(live) == 1:
                envelope, raw = live[0]
                results = [await publish(self._redis, inbox(envelope.to), raw)]
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for envelope, raw in live:
                        publish_on(pipe, inbox(envelope.to), raw)
                    results = await pipe.execute()
            for (envelope, _), receivers in zip(live, results, strict=True):
                if receivers:
                    self.counts["relayed"] += 1
                else:
                    bounced.append((envelope, "nobody subscribed"))
        if bounced:
            await self._bounce(bounced)

    async def _bounce(self, bounced: list[tuple[Envelope, str]]) -> None:
        """Tell each sender its envelope could not be delivered (never bounce a bounce)."""
        self.counts["undeliverable"] += len(bounced)
        notices = [
            self._broker.envelope(envelope.sender, UNDELIVERABLE, {
                "reason": reason, "id": envelope.id, "to": envelope.to, "kind": envelope.kind,
                "body": envelope.body,
            }, request_id=envelope.request_id)
            for envelope, reason in bounced if envelope.kind != UNDELIVERABLE
        ]
        if notices:
            async with self._redis.pipeline(transaction=False) as pipe:
                for notice in notices:
                    publish_on(pipe, self._broker.keys.inbox(notice.to), notice.to_json())
                await pipe.execute()
