"""Read markers (draft/read-marker) in Redis: per party (an account, or a guest's connection),
one hash of target -> the ms of the last message read there."""

from __future__ import annotations

from redis.asyncio import Redis

from apps.chat.keys import ChatKeys
from apps.ircd.store import scripts
from apps.ircd.store.base import StoreBase, text


class MarkerState(StoreBase):
    """Where each party has read up to, and the connections an account has now."""

    def __init__(self, redis: Redis, keys: ChatKeys) -> None:
        super().__init__(redis, keys)
        self._mark_read = redis.register_script(scripts.MARK_READ)

    async def read_marker(self, party: str, target_cf: str) -> int | None:
        """The ms `party` has read `target_cf` up to; None if it never said."""
        value = await self.redis.hget(self.keys.read_markers(party), target_cf)
        return None if value is None else int(value)

    async def mark_read(self, party: str, target_cf: str, ms: int, ttl_ms: int = 0) -> tuple[int, bool]:
        """Move `party`'s marker of `target_cf` to `ms` unless it is there or past it already:
        the marker now, and whether it moved. `ttl_ms`: how long the markers are kept (0: ever)."""
        current, moved = await self._mark_read(keys=[self.keys.read_markers(party)],
                                               args=[target_cf, ms, ttl_ms])
        return int(current), bool(int(moved))

    async def account_uids(self, account_cf: str) -> set[str]:
        """The connections logged in to an account now, on every replica."""
        return {text(uid) for uid in await self.redis.smembers(self.keys.account_connections(account_cf))}
