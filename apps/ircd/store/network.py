"""The network as a whole, in Redis: the counts LUSERS gives, the replicas that have had users
(for the sweeper), and the connections from each address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline

from apps.chat.modes import USER_MODE
from apps.ircd.store import scripts
from apps.ircd.store.base import StoreBase, text


@dataclass(frozen=True, slots=True)
class Counts:
    """What LUSERS tells: network-wide counts."""

    users: int
    most: int  # the most users seen at once
    invisible: int
    opers: int
    unregistered: int
    channels: int


class NetworkState(StoreBase):
    """Network-wide sets and counters, all in one slot (`{global}`)."""

    async def count_user_mode(self, letter: str, uid: str, on: bool) -> None:
        """Add or remove `uid` from the set counting user mode `letter` (`i`, `o`), if any."""
        name = USER_MODE[letter].counted_in
        if name:
            key = self.keys.network(name)
            await (self.redis.sadd(key, uid) if on else self.redis.srem(key, uid))

    async def unregistered(self, instance: str, delta: int) -> None:
        """Count a connection that has not registered yet (+1), or one that did or left (-1)."""
        await self.redis.hincrby(self.keys.network("unregistered"), instance, delta)

    async def counts(self) -> Counts:
        """Network-wide counts for LUSERS, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            self.queue_counts(pipe)
            return self.counts_from(await pipe.execute())

    def queue_counts(self, pipe: Pipeline) -> None:
        """Queue on `pipe` the reads `counts_from` makes a Counts of."""
        for command, key in self._count_keys():
            getattr(pipe, command)(key)

    def queue_count_new_user(self, pipe: Pipeline, uid: str, instance: str) -> None:
        """Queue on `pipe` the count of a new user network-wide (`scripts.COUNT_NEW_USER`: in
        the users, one fewer not registered on `instance`, the high-water mark), whose reply
        `counts_from` makes the counts after it of."""
        keys = [key for _, key in self._count_keys()]
        pipe.eval(scripts.COUNT_NEW_USER, len(keys), *keys, uid, instance)

    def _count_keys(self) -> list[tuple[str, str]]:
        """LUSERS' keys in `counts_from`'s order, each with the command that reads it."""
        network = self.keys.network
        return [("scard", network("users")), ("get", network("most")), ("scard", network("invisible")),
                ("scard", network("opers")), ("hvals", network("unregistered")), ("scard", network("chans"))]

    @staticmethod
    def counts_from(replies: Sequence[Any]) -> Counts:
        """The Counts of the replies to `queue_counts`, or of `queue_count_new_user`'s reply."""
        users, most, invisible, opers, unregistered, channels = replies
        return Counts(users=int(users), most=max(int(most or 0), int(users)), invisible=int(invisible),
                      opers=int(opers), unregistered=sum(max(0, int(v)) for v in unregistered),
                      channels=int(channels))

    # -- replicas (apps/ircd/sweeper.py) -----------------------------------------------------------
    async def instances(self) -> set[str]:
        """Every replica that has had users."""
        return {text(i) for i in await self.redis.hkeys(self.keys.network("instances"))}

    async def add_instance(self, instance: str, now: float) -> None:
        await self.redis.hset(self.keys.network("instances"), instance, str(int(now)))

    async def claim_sweep(self, instance: str, sweeper: str, seconds: float) -> bool:
        """Take the sweep of dead replica `instance` for `seconds` (every replica notices a dead
        one at once: one sweeps it, and a sweeper that dies lets another take it over)."""
        return bool(await self.redis.set(self.keys.network(f"sweeping:{instance}"), sweeper, nx=True,
                                          px=max(1, int(seconds * 1000))))

    async def remove_instance(self, instance: str) -> None:
        await self.redis.hdel(self.keys.network("instances"), instance)
        await self.redis.hdel(self.keys.network("unregistered"), instance)

    # -- connections per address -------------------------------------------------------------------
    async def connect_ip(self, ip: str, instance: str, delta: int, *, unregistered: bool = False) -> int:
        """Count a connection from `ip` in (+1) or out (-1); the connections from it now. With
        `unregistered`, count it in (or out) of the connections not registered yet too, in the
        same round trip: a new connection is both.

        One field per replica, so a replica's count can be told apart (and cleared) by it.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.eval(scripts.COUNT_ADDRESS, 1, self.keys.address(ip), instance, delta)
            if unregistered:
                pipe.hincrby(self.keys.network("unregistered"), instance, delta)
            count, *_ = await pipe.execute()
        return int(count)
