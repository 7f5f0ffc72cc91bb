"""Cleaning up after a replica that died: its users' nicks, memberships and records.

A replica killed with SIGKILL cannot say goodbye, so its users would keep their nicks and
stay listed in their channels forever. Each replica notes itself in a hash of instances;
every SWEEP_INTERVAL seconds a replica compares that hash with the directory, and the users
of an instance missing from the directory on two sweeps in a row get a QUIT ("*.net
*.split") in their channels and are removed. A replica restarted under the same INSTANCE_ID
sweeps its own previous life at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from apps.ircd.protocol import casefold
from apps.kit.tasks import cancel_and_wait

if TYPE_CHECKING:
    from apps.ircd.server import IrcServer

log = logging.getLogger("canaduck.ircd.sweeper")

SPLIT = "*.net *.split"


async def sweep_instance(server: IrcServer, instance: str) -> int:
    """Remove every user registered through `instance`; how many there were."""
    store = server.store
    swept = 0
    for uid in await store.instance_uids(instance):
        user = await store.user(uid)
        if user:
            prefix = f"{user['nick']}!{user['user']}@{user['host']}"
            channels = await store.user_channels(uid)
            if channels:
                event = server.event(prefix, "QUIT", [SPLIT], id=server.new_id())
                await server.to_channels(channels, event)
            for cf in channels:
                await store.leave(cf, uid)
            nick_cf = casefold(user["nick"])
            await store.release_nick(nick_cf, uid)
            entry = {"nick": user["nick"], "user": user["user"], "host": user["host"],
                     "real": user.get("real", ""), "server": server.name,
                     "at": str(int(server.clock())), "account": user.get("account", "")}
            await store.remember(nick_cf, entry, server.settings.whowas_length)
        await store.delete_user(uid, instance, user.get("account", "") if user else "")
        swept += 1
    if swept:
        log.info("swept %d users of replica %s", swept, instance)
    return swept


class Sweeper:
    """Every `interval` seconds, sweep the replicas the directory no longer lists."""

    def __init__(self, server: IrcServer, live: Callable[[], Awaitable[set[str]]], interval: float) -> None:
        self._server = server
        self._live = live
        self._interval = interval
        self._missing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Sweep this replica's previous life, note this one, then sweep others periodically."""
        server = self._server
        await sweep_instance(server, server.instance)
        await server.store.add_instance(server.instance, server.clock())
        self._task = asyncio.create_task(self._loop(), name="irc-sweeper")

    async def stop(self) -> None:
        if self._task:
            await cancel_and_wait(self._task)

    async def sweep_once(self) -> set[str]:
        """One pass: the instances swept."""
        server = self._server
        live = await self._live()
        gone = {i for i in await server.store.instances() if i not in live and i != server.instance}
        ripe = gone & self._missing  # missing twice in a row: not a heartbeat that was late
        self._missing = gone - ripe
        for instance in ripe:
            await sweep_instance(server, instance)
            await server.store.remove_instance(instance)
        return ripe

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep_once()
            except (RedisError, OSError) as exc:
                log.warning("sweep failed (%s); next one in %.0f s", exc, self._interval)
