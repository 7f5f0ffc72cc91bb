"""The one rule for reading a channel's history, over IRC and over HTTP."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from apps.chat.casemap import CASEMAPPING, Casemapping, casefold
from apps.chat.conversations import text_of
from apps.chat.keys import ChatKeys


class HistoryAccess:
    """The one rule for reading a channel's history, over IRC (CHATHISTORY) and over HTTP
    (the messages service): a reader may read it only while it is in the channel, a
    connection by itself, an account through any of its connections. A private
    conversation is readable by its two parties only (`party`), which the caller is.

    Membership rather than the channel's modes: a secret, invite-only or keyed channel is not
    readable from outside, and a public one is readable by joining it, as any IRC client can.
    What happens to a closed channel's history when it empties is the ircd's part: it is
    dropped with the channel, so that whoever creates the channel again cannot read it."""

    def __init__(self, redis: Redis, keys: ChatKeys, mapping: Casemapping = CASEMAPPING) -> None:
        self._redis = redis
        self.keys = keys
        self.mapping = mapping

    async def connections_of(self, account: str) -> list[str]:
        """The ids of the connections logged in to `account` now."""
        found = await self._redis.smembers(self.keys.account_connections(casefold(account, self.mapping)))
        return sorted(text_of(uid) for uid in found)

    async def may_read_channel(self, channel: str, connections: Sequence[str]) -> bool:
        """True if one of `connections` is in `channel`."""
        if not connections:
            return False
        statuses = await self._redis.hmget(
            self.keys.channel_members(casefold(channel, self.mapping)), list(connections))
        return any(status is not None for status in statuses)

    @staticmethod
    def may_read_private(parties: Sequence[str], reader: str) -> bool:
        """True if `reader` (a party: a folded account, or `~<connection id>` for a guest) is
        one of the two `parties` of a private conversation."""
        return reader in parties
