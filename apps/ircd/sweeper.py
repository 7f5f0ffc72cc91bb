"""Cleaning up after a replica that died: its users' nicks, memberships and records.

A replica killed with SIGKILL cannot say goodbye, so its users would keep their nicks and
stay listed in their channels forever. Each replica notes itself in a hash of instances;
every SWEEP_INTERVAL seconds a replica compares that hash with the directory, and the users
of an instance missing from the directory on two sweeps in a row leave as any user does
(apps/ircd/operations/leave.py), with a QUIT of "*.net *.split". A replica restarted under
the same INSTANCE_ID sweeps its own previous life at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from apps.chat.records import User
from apps.ircd.context import Context
from apps.ircd.operations.devices import keep
from apps.ircd.operations.leave import leave
from apps.kit.tasks import Background

log = logging.getLogger("canaduck.ircd.sweeper")

SPLIT = "*.net *.split"
#: How long one replica has to sweep a dead one before another may take the sweep over.
SWEEP_CLAIM_SECONDS = 300.0


async def sweep_instance(ctx: Context, instance: str) -> int:
    """Every device `instance` held is gone: a user left with none leaves, as any user does
    (apps/ircd/operations/leave.py), unless it is always-on (it stays, away); a user with
    devices on other replicas stays as it is. How many users it held."""
    swept = 0
    for uid in await ctx.store.replica_uids(instance):
        user = await ctx.store.user(uid)
        if user is None:  # half gone already: only its indexes are left
            await ctx.store.delete_user(User(uid, "", instance=instance))
        elif await ctx.store.detach(uid, instance) == 0:
            if user.always_on:
                await keep(ctx, user)
            else:
                await leave(ctx, user, SPLIT)
        swept += 1
    if swept:
        log.info("swept %d users of replica %s", swept, instance)
    return swept


async def expire(ctx: Context) -> int:
    """Always-on users without a device for longer than ALWAYS_ON_EXPIRE quit; how many."""
    ttl = ctx.settings.always_on_expire
    if not ttl:
        return 0
    gone = 0
    for uid in await ctx.store.detached_since(ctx.clock() - ttl):
        user = await ctx.store.user(uid)
        if user is not None and not await ctx.store.devices(uid):
            await leave(ctx, user, "Timed out (always-on, no device)")
            gone += 1
        elif user is None:
            await ctx.store.delete_user(User(uid, ""))
    return gone


class Sweeper:
    """Every `interval` seconds, sweep the replicas the directory no longer lists."""

    def __init__(self, ctx: Context, live: Callable[[], Awaitable[set[str]]], interval: float) -> None:
        self._ctx = ctx
        self._live = live
        self._interval = interval
        self._missing: set[str] = set()
        self._task = Background("irc-sweeper")

    async def start(self) -> None:
        """Sweep this replica's previous life, note this one, then sweep others periodically."""
        ctx = self._ctx
        await sweep_instance(ctx, ctx.instance)
        await ctx.store.add_instance(ctx.instance, ctx.clock())
        self._task.start(self._loop())

    async def stop(self) -> None:
        await self._task.stop()

    async def sweep_once(self) -> set[str]:
        """One pass: the instances swept."""
        ctx = self._ctx
        live = await self._live()
        gone = {i for i in await ctx.store.instances() if i not in live and i != ctx.instance}
        ripe = gone & self._missing  # missing twice in a row: not a heartbeat that was late
        self._missing = gone - ripe
        for instance in ripe:
            # One sweeper per dead replica: sweeping it from every survivor at once sent some
            # users' QUIT twice and loaded Redis for minutes under a reconnect storm.
            if await ctx.store.claim_sweep(instance, ctx.instance, SWEEP_CLAIM_SECONDS):
                await sweep_instance(ctx, instance)
                await ctx.store.remove_instance(instance)
        await expire(ctx)
        return ripe

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep_once()
            except (RedisError, OSError) as exc:
                log.warning("sweep failed (%s); next one in %.0f s", exc, self._interval)
