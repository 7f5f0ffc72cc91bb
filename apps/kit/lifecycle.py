"""A running instance's life: connect, check the server, register, heartbeat, withdraw."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from apps.kit.advertise import own_address
from apps.kit.broker import BrokerClient
from apps.kit.directory import Directory, Entry
from apps.kit.http import new_http_client
from apps.kit.redisconn import check_capabilities, connect, wait_until_reachable
from apps.kit.settings import KitSettings, http_url
from apps.kit.tasks import cancel_and_wait

log = logging.getLogger("canaduck.lifecycle")

Hook = Callable[[], Awaitable[object]]


class Runtime:
    """Connections and directory registration of one service instance.

    `start` runs when the app starts serving, `withdraw` as soon as SIGTERM arrives (so peers
    stop routing here while in-flight requests drain) and `stop` when serving has ended.
    Services add their own start-up and shut-down work with `on_start` and `on_stop`.
    """

    def __init__(self, settings: KitSettings, redis: Redis | None = None, *,
                 http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.redis: Redis = redis or connect(
            settings.redis_url, client_name=f"{settings.service_name}/{settings.instance_id}",
            timeout=settings.redis_timeout, username=settings.redis_username,
            password=settings.redis_password, cluster=settings.redis_cluster,
        )
        self.directory = Directory(self.redis, self.keys, settings.directory_ttl)
        self.broker = BrokerClient(self.redis, self.keys, settings.service_name, settings.instance_id)
        self.entry = Entry(
            service=settings.service_name,
            instance=settings.instance_id,
            url=settings.url,
            channel=self.keys.inbox(settings.service_name),
            version=settings.version,
            meta={"ports": dict(settings.advertise_ports)} if settings.advertise_ports else {},
        )
        self.http: httpx.AsyncClient | None = None
        self._http_transport = http_transport
        self.checked = False
        self.started = False
        self.registered = False
        self.redis_ok = False
        self.stopping = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._withdrawal: asyncio.Future[None] | None = None
        self._start_hooks: list[Hook] = []
        self._stop_hooks: list[Hook] = []
        self._beat_hooks: list[Hook] = []

    def on_start(self, hook: Hook) -> Hook:
        """Run `hook` after the instance is registered (decorator)."""
        self._start_hooks.append(hook)
        return hook

    def on_beat(self, hook: Hook) -> Hook:
        """Run `hook` after each heartbeat that reached Redis (decorator).

        For cheap checks that heal what a Redis restart or flush lost (the jokes service puts
        its seeded jokes back). A hook that fails is logged and tried again at the next beat.
        """
        self._beat_hooks.append(hook)
        return hook

    def on_stop(self, hook: Hook) -> Hook:
        """Run `hook` at shut-down, before the Redis connection closes (decorator)."""
        self._stop_hooks.append(hook)
        return hook

    async def check_server(self) -> None:
        """Wait for Redis and refuse a server without hash-field expiry (StartupError)."""
        if self.checked:
            return
        await wait_until_reachable(self.redis, self.settings.redis_wait)
        # Probed on its own hash: the only directory key its Redis user may write.
        await check_capabilities(self.redis, self.keys.directory(self.settings.service_name))
        self.checked = True

    async def start(self) -> None:
        """Check the server, register, start the heartbeat, then the service's own hooks."""
        await self.check_server()
        if self.settings.advertises_own_address:
            address = await own_address(self.settings.redis_url)
            self.entry = replace(self.entry, url=http_url(address, self.settings.port))
        self.http = new_http_client(transport=self._http_transport)
        if self.stopping:  # SIGTERM during start-up: never join
            return
        await self._register()
        if self.stopping:
            # withdraw() ran while our HSET was in flight, and its HDEL may have gone first:
            # remove the entry again, or it would outlive the process by a whole TTL.
            await self._deregister()
            return
        await self.broker.event("registered", url=self.entry.url)
        self._heartbeat = asyncio.create_task(self._beat(), name="heartbeat")
        for hook in self._start_hooks:
            await hook()
        self.started = True

    async def withdraw(self) -> None:
        """Leave the directory now; /ready turns 503. Later calls wait for the first to finish,
        so that stop() never closes the Redis client under the signal handler's HDEL."""
        if self._withdrawal is None:
            self.stopping = True
            self.registered = False
            self._withdrawal = asyncio.ensure_future(self._leave())
        await asyncio.shield(self._withdrawal)

    async def _leave(self) -> None:
        if self._heartbeat:
            await cancel_and_wait(self._heartbeat)
        await self._deregister()

    async def _deregister(self) -> None:
        try:
            await self.directory.deregister(self.entry.service, self.entry.instance)
            await self.broker.event("deregistered")
        except RedisError as exc:
            log.warning("could not deregister (%s); the entry expires within its TTL", exc)
        self.registered = False

    async def stop(self) -> None:
        """Withdraw, run the stop hooks, close the clients."""
        await self.withdraw()
        for hook in reversed(self._stop_hooks):
            try:
                await hook()
            except Exception:
                log.exception("stop hook %s failed", getattr(hook, "__name__", hook))
        if self.http:
            await self.http.aclose()
        await self.redis.aclose()

    async def _register(self) -> None:
        await self.directory.register(self.entry)
        if not self.registered:
            log.info("registered %s at %s", self.entry.name, self.entry.url)
        self.registered = self.redis_ok = True

    async def _beat(self) -> None:
        # The heartbeat rewrites the whole entry and its name in the index, so a Redis restart
        # (which lost both) is healed by the next beat with no special case.
        interval = self.settings.heartbeat_interval
        lost_since: float | None = None
        while True:
            await asyncio.sleep(interval if lost_since is None else min(interval, 1.0))
            try:
                await self._register()
                if lost_since is not None:
                    log.info("Redis is back after %.1f s; re-registered", time.monotonic() - lost_since)
                    lost_since = None
            except (RedisError, OSError) as exc:
                self.redis_ok = self.registered = False
                if lost_since is None:  # say it once, not every beat
                    lost_since = time.monotonic()
                    log.warning("heartbeat failed (%s); retrying until Redis is back", exc)
                continue
            await self._run_beat_hooks()

    async def _run_beat_hooks(self) -> None:
        for hook in self._beat_hooks:
            try:
                await hook()
            except Exception as exc:  # a hook must never end the heartbeat
                log.warning("beat hook %s failed: %s", getattr(hook, "__name__", hook), exc)
