"""Channels in Redis: their records, members, lists and invitations, joined and left in one
step each (apps/ircd/store/scripts.py)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from apps.chat.keys import ChatKeys
from apps.chat.modes import CHANNEL_MODE, LISTS, ChannelMode
from apps.chat.records import Channel, ListEntry, Status
from apps.ircd.store import scripts
from apps.ircd.store.base import StoreBase, text


class Joined(enum.Enum):
    """A JOIN that was not refused."""

    CREATED = "created"  # the channel is new, the joiner its operator
    JOINED = "joined"
    ALREADY = "already"  # a member already


def _entries(letters: str, found: list[Any]) -> dict[str, list[ListEntry]]:
    """The lists named by `letters`, from their hashes as HGETALL gave them."""
    return {letter: [ListEntry.from_redis(mask, how) for mask, how in raw.items()]
            for letter, raw in zip(letters, found, strict=True)}


def _list_key(keys: ChatKeys, cf: str, letter: str) -> str:
    mask_list = CHANNEL_MODE[letter].mask_list
    assert mask_list is not None, letter
    return keys.channel_list(cf, mask_list.key)


class ChannelState(StoreBase):
    """Every key of a channel shares its hash tag (`{#chan}`), so its scripts run on one node."""

    def __init__(self, redis: Redis, keys: ChatKeys) -> None:
        super().__init__(redis, keys)
        self._join = redis.register_script(scripts.JOIN)
        self._leave = redis.register_script(scripts.LEAVE)
        self._add_mask = redis.register_script(scripts.ADD_MASK)
        self._set_status = redis.register_script(scripts.SET_STATUS)

    def _channel_keys(self, cf: str) -> list[str]:
        """Every key of a channel: its record, members and invitations first, then its lists."""
        return [self.keys.channel(cf), self.keys.channel_members(cf), self.keys.channel_invites(cf),
                *(_list_key(self.keys, cf, letter) for letter in LISTS)]

    async def join(self, cf: str, name: str, uid: str, *, key: str, banned: bool, invex: bool,
                   now: float) -> Joined | ChannelMode:
        """Join (creating the channel, its creator an operator), or the mode whose JOIN rule
        refused it. `banned`: the joiner matches a ban and no exception; `invex`: it matches
        an invite exception."""
        outcome, letter = await self._join(keys=self._channel_keys(cf)[:3],
                                           args=[uid, name, f"{now:.3f}", key, "1" if banned else "0",
                                                 "1" if invex else "0"])
        if text(outcome) == "refused":
            return CHANNEL_MODE[text(letter)]
        joined = Joined(text(outcome))
        if joined is not Joined.ALREADY:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.sadd(self.keys.user_channels(uid), cf)
                if joined is Joined.CREATED:
                    pipe.sadd(self.keys.network("chans"), cf)
                await pipe.execute()
        return joined

    async def leave(self, cf: str, uid: str) -> bool:
        """Leave a channel; False if `uid` was not in it. The last one out removes it (and its
        history, if it was closed: see `scripts.LEAVE`)."""
        keys = [self.keys.conversation_log(cf), self.keys.search_index(cf), *self._channel_keys(cf)]
        left = int(await self._leave(keys=keys, args=[uid]))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.srem(self.keys.user_channels(uid), cf)
            if left >= 2:
                pipe.srem(self.keys.network("chans"), cf)
            await pipe.execute()
        return left > 0

    async def channel(self, cf: str) -> Channel | None:
        raw = await self.redis.hgetall(self.keys.channel(cf))
        return Channel.from_redis(raw) if raw else None

    async def channel_and_status(self, cf: str, uid: str) -> tuple[Channel | None, Status | None]:
        """A channel and `uid`'s status in it (None: not a member), in one round trip."""
        channel, status, _ = await self.channel_status_masks(cf, uid, "")
        return channel, status

    async def channel_status_masks(self, cf: str, uid: str, letters: str) -> tuple[
            Channel | None, Status | None, dict[str, list[ListEntry]]]:
        """A channel, `uid`'s status in it (None: not a member) and the channel's lists named
        by `letters` (as `masks`), in one round trip: a message to a channel needs all three."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.channel(cf))
            pipe.hget(self.keys.channel_members(cf), uid)
            for letter in letters:
                pipe.hgetall(_list_key(self.keys, cf, letter))
            raw, status, *lists = await pipe.execute()
        return (Channel.from_redis(raw) if raw else None,
                Status.from_redis(status) if status is not None else None,
                _entries(letters, lists))

    async def set_modes(self, cf: str, channel: Channel) -> None:
        """Write a channel's modes and their parameters (an unset parameter is deleted)."""
        await self._write(cf, *channel.mode_fields())

    async def set_topic(self, cf: str, channel: Channel) -> None:
        """Write a channel's topic, who set it and when; an empty topic clears the three."""
        await self._write(cf, *channel.topic_fields())

    async def _write(self, cf: str, written: dict[str, str], deleted: list[str]) -> None:
        """Set some fields of a channel's hash and delete others, in one step."""
        async with self.redis.pipeline(transaction=True) as pipe:
            if written:
                pipe.hset(self.keys.channel(cf), mapping=written)  # type: ignore[arg-type]
            if deleted:
                pipe.hdel(self.keys.channel(cf), *deleted)
            await pipe.execute()

    async def members(self, cf: str) -> dict[str, Status]:
        raw = await self.redis.hgetall(self.keys.channel_members(cf))
        return {text(uid): Status.from_redis(status) for uid, status in raw.items()}

    async def member_statuses(self, cf: str) -> dict[bytes, bytes]:
        """A channel's members as Redis gives them, uid -> status letters, both bytes: the
        lightest form of the whole list (NAMES decodes a slice at a time, `Status.from_redis`)."""
        raw: dict[Any, Any] = await self.redis.hgetall(self.keys.channel_members(cf))
        if raw and isinstance(next(iter(raw)), str):  # a client with decode_responses
            return {uid.encode(): status.encode() for uid, status in raw.items()}
        return raw

    async def status(self, cf: str, uid: str) -> Status | None:
        value = await self.redis.hget(self.keys.channel_members(cf), uid)
        return Status.from_redis(value) if value is not None else None

    async def set_status(self, cf: str, uid: str, status: Status) -> bool:
        """Change a member's status; False if not a member any more."""
        members = self.keys.channel_members(cf)
        return bool(await self._set_status(keys=[members], args=[uid, status.to_redis()]))

    async def masks(self, cf: str, letters: str = LISTS) -> dict[str, list[ListEntry]]:
        """The channel's lists named by `letters` (b, e, I), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for letter in letters:
                pipe.hgetall(_list_key(self.keys, cf, letter))
            found = await pipe.execute()
        return _entries(letters, found)

    async def add_mask(self, cf: str, letter: str, entry: ListEntry, most: int) -> int:
        """Add to list `letter`: 1 added, 0 already there, -1 the list holds `most` already."""
        return int(await self._add_mask(keys=[_list_key(self.keys, cf, letter)],
                                        args=[entry.mask, entry.to_redis(), most]))

    async def remove_mask(self, cf: str, letter: str, mask: str) -> bool:
        return bool(await self.redis.hdel(_list_key(self.keys, cf, letter), mask))

    async def invite(self, cf: str, uid: str) -> None:
        await self.redis.sadd(self.keys.channel_invites(cf), uid)

    async def channel_summaries(self, cfs: Iterable[str]) -> list[tuple[Channel, int]]:
        """Each channel and its member count, in one round trip (gone ones left out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cf in cfs:
                pipe.hgetall(self.keys.channel(cf))
                pipe.hlen(self.keys.channel_members(cf))
            raw = await pipe.execute()
        return [(Channel.from_redis(raw[i]), int(raw[i + 1])) for i in range(0, len(raw), 2) if raw[i]]
