"""An instance's counters on `canaduck:stats`: what its /metrics shows, published every second.

The dashboard shows per-replica figures (the /mult split, the broker's relays per second, the
aggregator's cache hits) without scraping every instance: each one publishes
`{"service", "instance", "at", "metrics"}` on the stats channel every STATS_INTERVAL seconds,
and whoever wants the figures subscribes. Counters are totals since the instance started; a
reader turns two of them into a rate. Nothing is stored: pub/sub, fire and forget.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.pubsub import publish
from apps.kit.tasks import Background

log = logging.getLogger("canaduck.stats")

Snapshot = Callable[[], dict[str, Any]]


class StatsReporter:
    """Publishes `snapshot()` on `channel` every `interval` seconds (0: never)."""

    def __init__(self, redis: Redis, channel: str, service: str, instance: str, interval: float,
                 snapshot: Snapshot, clock: Clock = SYSTEM_CLOCK) -> None:
        self._redis = redis
        self.channel = channel
        self._service = service
        self._instance = instance
        self._interval = interval
        self._snapshot = snapshot
        self._clock = clock
        self._task = Background("stats")
        self._failing = False

    def payload(self) -> str:
        """The JSON published: who, when, and the counters."""
        return json.dumps({"service": self._service, "instance": self._instance,
                           "at": round(self._clock.wall(), 3), "metrics": self._snapshot()},
                          separators=(",", ":"))

    async def publish(self) -> None:
        """Publish once now."""
        await publish(self._redis, self.channel, self.payload())

    async def start(self) -> None:
        if self._interval > 0:
            self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self.publish()
                if self._failing:
                    self._failing = False
                    log.info("publishing stats again")
            except (RedisError, OSError) as exc:
                # Redis away (the heartbeat says so too) or an ACL user without the channel:
                # say it once, keep serving, try again next time.
                if not self._failing:
                    self._failing = True
                    log.warning("cannot publish stats on %s (%s)", self.channel, exc)
            await self._clock.sleep(self._interval)
