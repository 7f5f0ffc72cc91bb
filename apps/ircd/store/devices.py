"""A user's devices in Redis: the connections sharing one user (one account on several of
them), the replicas holding them, and the always-on users that have none."""

from __future__ import annotations

from redis.asyncio import Redis

from apps.chat.keys import ChatKeys
from apps.ircd.store import scripts
from apps.ircd.store.base import StoreBase, text


class DeviceState(StoreBase):
    """Which connections are a user's devices, on which replicas (apps/ircd/operations/devices.py)."""

    def __init__(self, redis: Redis, keys: ChatKeys) -> None:
        super().__init__(redis, keys)
        self._attach = redis.register_script(scripts.ATTACH)
        self._detach = redis.register_script(scripts.DETACH)

    async def attach(self, uid: str, device: str, instance: str, limit: int) -> int:
        """Connection `device`, on replica `instance`, becomes a device of user `uid`: how many
        it has now, or -1 when it has `limit` already (0: no limit)."""
        count = int(await self._attach(keys=[self.keys.user_devices(uid), self.keys.user(uid)],
                                       args=[device, instance, limit]))
        if count > 0:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.sadd(self.keys.replica_users(instance), uid)
                pipe.zrem(self._detached, uid)
                pipe.hdel(self.keys.user(uid), "detached")
                await pipe.execute()
        return count

    async def detach(self, uid: str, instance: str, device: str = "") -> int:
        """Device `device` of user `uid` is gone (empty: every device replica `instance` held,
        a dead one's): how many devices the user has left, on every replica."""
        left, here = await self._detach(keys=[self.keys.user_devices(uid), self.keys.user(uid)],
                                         args=[device, instance])
        if not int(here):
            await self.redis.srem(self.keys.replica_users(instance), uid)
        return int(left)

    async def user_instances(self, uid: str) -> list[str]:
        """The replicas holding a device of user `uid` (its record's `inst`)."""
        value = await self.redis.hget(self.keys.user(uid), "inst")
        return text(value).split() if value is not None else []

    async def devices(self, uid: str) -> dict[str, str]:
        """A user's devices: connection id -> the replica holding it."""
        return {text(device): text(replica)
                for device, replica in (await self.redis.hgetall(self.keys.user_devices(uid))).items()}

    async def mark_detached(self, uid: str, at: float) -> None:
        """An always-on user's last device went at `at`: kept, and listed for expiry."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.user(uid), "detached", str(int(at)))
            pipe.zadd(self._detached, {uid: at})
            await pipe.execute()

    async def detached_since(self, before: float) -> list[str]:
        """The always-on users with no device since before `before` (expiry)."""
        return [text(uid) for uid in await self.redis.zrangebyscore(self._detached, "-inf", before)]
