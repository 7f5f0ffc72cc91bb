"""What every part of the store shares: the Redis client and the chat's keys."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from apps.chat.keys import ChatKeys


def text(value: Any) -> str:
    """A value as redis-py returns it (bytes), as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


class StoreBase:
    """The Redis client and the keys, for the store's parts (apps/ircd/store/__init__.py)."""

    def __init__(self, redis: Redis, keys: ChatKeys) -> None:
        self.redis = redis
        self.keys = keys

    @property
    def _detached(self) -> str:
        """The always-on users with no device: uid -> since when (users.py clears it when a user
        leaves, devices.py keeps it)."""
        return self.keys.network("detached")
