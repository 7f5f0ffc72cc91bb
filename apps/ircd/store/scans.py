"""The whole network a slice at a time: every user (WHO with a mask) and every channel (LIST).

A slice is about `size` members of the network's set (SSCAN), then their records in one round
trip: a look at the whole network never holds every record at once, and the event loop serves
the replica's clients between slices. SSCAN may give a member twice: WHO tells such a user
twice rather than remember every user seen, LIST (which holds every channel it lists anyway)
lists such a channel once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from apps.chat.records import Channel, User
from apps.ircd.store.base import text
from apps.ircd.store.channels import ChannelState
from apps.ircd.store.users import UserState


class ScanState(UserState, ChannelState):
    """Reads of every user and every channel, a slice at a time."""

    async def users_in_slices(self, size: int) -> AsyncGenerator[list[User], None]:
        """Every registered user, about `size` at a time."""
        async for uids in self._members_in_slices(self.keys.network("users"), size):
            found = await self.users(uids)
            if found:
                yield list(found.values())

    async def channel_summaries_in_slices(self, size: int) -> AsyncGenerator[list[tuple[Channel, int]], None]:
        """Every channel and its member count (`channel_summaries`), about `size` at a time."""
        async for cfs in self._members_in_slices(self.keys.network("chans"), size):
            yield await self.channel_summaries(cfs)

    async def channel_sets(self, uids: Sequence[str]) -> list[set[str]]:
        """The channels (casefolded) of each of `uids`, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in uids:
                pipe.smembers(self.keys.user_channels(uid))
            found = await pipe.execute()
        return [{text(cf) for cf in members} for members in found]

    async def _members_in_slices(self, key: str, size: int) -> AsyncGenerator[list[str], None]:
        cursor = 0
        while True:
            cursor, members = await self.redis.sscan(key, cursor, count=size)
            if members:
                yield [text(member) for member in members]
            if not cursor:
                return
