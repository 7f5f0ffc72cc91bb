"""The dashboard feed: one reader of Redis per web instance, fanned out to every browser.

A task reads the directory (`Directory.list`: the index, then each service's hash and its
fields' TTLs) and the rally hash every FEED_INTERVAL seconds, or at once when an instance
registers or leaves, and builds one snapshot (`view.build`). A subscription to
`canaduck:events` and `canaduck:stats` keeps the recent events and the instances' counters.
Each browser holds a bounded queue of Server-Sent Events: a slow one loses its oldest
messages, never slows the others, and a thousand dashboards still cost Redis one read per
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from apps.kit.broker import Subscription
from apps.kit.lifecycle import Runtime
from apps.kit.tasks import cancel_and_wait
from apps.web import view
from apps.web.counters import Counters
from apps.web.settings import WebSettings

log = logging.getLogger("canaduck.feed")

#: Events larger than this are not passed on to browsers (a hand-published blob).
MAX_EVENT_BYTES = 4096


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event: its name and a JSON body on one `data:` line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Feed:
    """Reads the stack's state from Redis and hands every connected browser the same picture."""

    def __init__(self, runtime: Runtime, settings: WebSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self._runtime = runtime
        self._settings = settings
        self._keys = settings.keys
        self._clock = clock
        self.counters = Counters(settings.rate_window)
        self.events: deque[dict[str, Any]] = deque(maxlen=settings.events_kept)
        self.latest: dict[str, Any] | None = None
        self._clients: set[asyncio.Queue[str | None]] = set()
        self._known: dict[str, dict[str, str]] = {}
        self._left: dict[str, float] = {}  # name -> when a `deregistered` event named it
        self._missing: dict[str, dict[str, str]] = {}  # gone since the last refresh, no event yet
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._failing = False

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        """Subscribe to events and stats, then refresh every FEED_INTERVAL seconds."""
        self._subscription = self._runtime.broker.listen(
            [self._keys.events, self._keys.stats], self.on_message, name="feed")
        self._task = asyncio.create_task(self._loop(), name="feed")

    async def stop(self) -> None:
        """Stop reading and end every browser's stream."""
        if self._subscription is not None:
            await self._subscription.stop()
        if self._task is not None:
            await cancel_and_wait(self._task)
        for queue in list(self._clients):
            self._push(queue, None)

    def connect(self) -> asyncio.Queue[str | None]:
        """A new browser: its queue starts with the last snapshot and the recent events."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(self._settings.feed_queue)
        if self.latest is not None:
            queue.put_nowait(sse("snapshot", self.latest))
        if self.events:
            queue.put_nowait(sse("events", list(self.events)))
        self._clients.add(queue)
        return queue

    def disconnect(self, queue: asyncio.Queue[str | None]) -> None:
        self._clients.discard(queue)

    def broadcast(self, event: str, data: Any) -> None:
        message = sse(event, data)
        for queue in list(self._clients):
            self._push(queue, message)

    @staticmethod
    def _push(queue: asyncio.Queue[str | None], message: str | None) -> None:
        if queue.full():  # a slow browser gets the newest, not everything
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(message)

    async def on_message(self, channel: str, data: bytes) -> None:
        """One message of the events or stats channel; anything malformed is skipped."""
        if len(data) > (1 << 20):
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        if channel == self._keys.stats:
            self._on_stats(payload)
        elif len(data) <= MAX_EVENT_BYTES:
            self._on_event(payload)

    def _on_stats(self, payload: dict[str, Any]) -> None:
        metrics = payload.get("metrics")
        try:
            name = f"{payload['service']}/{payload['instance']}"
            at = float(payload["at"])
        except (KeyError, TypeError, ValueError):
            return
        if isinstance(metrics, dict):
            self.counters.add(name, at, metrics)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if not isinstance(kind, str):
            return
        if kind in ("registered", "deregistered"):
            if kind == "deregistered":
                self._left[f"{event.get('service')}/{event.get('instance')}"] = self._clock()
            self._wake.set()
        self._record(event)

    def _record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.broadcast("event", event)

    async def refresh(self) -> dict[str, Any]:
        """Read the directory and the rally, note who left, send the snapshot to everyone."""
        listings = await self._runtime.directory.list()
        rally = await self._runtime.redis.hgetall(self._keys["rally"])
        now = self._clock()
        self._note_departures({listing.entry.name: {"service": listing.entry.service,
                                                    "instance": listing.entry.instance}
                               for listing in listings}, now)
        self.counters.prune(now, self._known)
        snapshot = view.build(listings, rally, self.counters, now)
        snapshot["redis"] = True
        self.latest = snapshot
        self.broadcast("snapshot", snapshot)
        return snapshot

    def _note_departures(self, current: dict[str, dict[str, str]], now: float) -> None:
        """An instance gone from the directory with no `deregistered` event timed out: its
        heartbeats stopped (killed, frozen, cut off) and its field's TTL ran out.

        The verdict waits one refresh: a withdrawal deletes the field just before it publishes
        `deregistered`, and a refresh may fall between the two.
        """
        for name, who in self._missing.items():
            if name not in current and self._left.pop(name, None) is None:
                self._record({"kind": "expired", **who, "at": round(now, 3),
                              "detail": "TTL ran out: no heartbeat"})
        self._missing = {name: who for name, who in self._known.items()
                         if name not in current and self._left.pop(name, None) is None}
        horizon = now - 60
        self._left = {name: at for name, at in self._left.items() if at > horizon}
        self._known = current

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.refresh()
                if self._failing:
                    self._failing = False
                    log.info("reading the stack again")
            except (RedisError, OSError) as exc:
                if not self._failing:
                    self._failing = True
                    log.warning("cannot read the stack (%s); retrying", exc)
                self.broadcast("status", {"redis": False, "error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.feed_interval):
                    await self._wake.wait()
