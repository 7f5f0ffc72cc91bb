"""Who was who, and who watches whom, in Redis: WHOWAS's recent users of each nick and
MONITOR's watchers of each nick."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.asyncio.client import Pipeline

from apps.chat.records import WhowasEntry
from apps.ircd.store.base import StoreBase, text


class WatchState(StoreBase):
    """WHOWAS entries and MONITOR lists, by casefolded nick."""

    async def remember(self, nick_cf: str, entry: WhowasEntry, keep: int) -> None:
        """Note who used a nick, keeping the last `keep`."""
        key = self.keys.whowas(nick_cf)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, entry.to_json())
            pipe.ltrim(key, 0, keep - 1)
            await pipe.execute()

    async def whowas(self, nick_cf: str, count: int) -> list[WhowasEntry]:
        return [WhowasEntry.from_json(raw) for raw in await self.redis.lrange(self.keys.whowas(nick_cf), 0,
                                                                              count - 1)]

    async def watch(self, nick_cf: str, instance: str, uid: str) -> None:
        await self.redis.sadd(self.keys.monitor(nick_cf), f"{instance} {uid}")

    async def unwatch(self, nick_cf: str, instance: str, uid: str) -> None:
        await self.redis.srem(self.keys.monitor(nick_cf), f"{instance} {uid}")

    async def watchers(self, nick_cf: str) -> dict[str, str]:
        """Who MONITORs a nick: uid -> the replica holding it."""
        return self.watchers_from(await self.redis.smembers(self.keys.monitor(nick_cf)))

    def queue_watchers(self, pipe: Pipeline, nick_cf: str) -> None:
        """Queue on `pipe` the read `watchers_from` reads the watchers of `nick_cf` from."""
        pipe.smembers(self.keys.monitor(nick_cf))

    @staticmethod
    def watchers_from(members: Iterable[Any]) -> dict[str, str]:
        """The watchers (uid -> replica) in the members of a nick's MONITOR set."""
        found: dict[str, str] = {}
        for watcher in members:
            instance, _, uid = text(watcher).partition(" ")
            found[uid] = instance
        return found
