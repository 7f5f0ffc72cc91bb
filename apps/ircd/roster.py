"""Who is on this replica: its connections, its registered clients, the local members of each
channel, and the pub/sub channels it listens to for them.

A replica subscribes to a channel's events and live messages only while one of its clients is
in the channel, and to a nick's private messages while one of its clients holds the nick.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from apps.chat.chatlog import ChatLog
from apps.chat.keys import ChatKeys
from apps.ircd.bus import Bus
from apps.ircd.client import Client


class Feed(enum.Enum):
    """What a live channel feeds: a channel's local members, or the holder of a nick."""

    CHANNEL = "channel"
    NICK = "nick"


@dataclass(frozen=True, slots=True)
class LiveFeed:
    kind: Feed
    name: str  # the channel (casefolded), or the uid of the local client holding the nick


class Roster:
    """This replica's clients, and the subscriptions that follow them."""

    def __init__(self, bus: Bus, keys: ChatKeys, chatlog: ChatLog) -> None:
        self._bus = bus
        self._keys = keys
        self._chatlog = chatlog
        #: every open connection, registered or not
        self.connections: set[Client] = set()
        #: registered clients by uid: a user's devices on this replica (most users have one)
        self.users: dict[str, list[Client]] = {}
        #: channel (casefolded) -> the local clients in it
        self.local: dict[str, set[Client]] = {}
        #: live channel -> what it feeds
        self.live: dict[str, LiveFeed] = {}

    def devices(self, uid: str) -> list[Client]:
        """User `uid`'s devices on this replica (none if it has none here)."""
        return self.users.get(uid, [])

    @property
    def registered(self) -> int:
        """The registered connections on this replica."""
        return sum(len(devices) for devices in self.users.values())

    def add(self, client: Client) -> None:
        """A registered connection: one more device of its user here."""
        devices = self.users.setdefault(client.uid, [])
        if client not in devices:
            devices.append(client)

    def remove(self, client: Client) -> list[Client]:
        """A connection is gone: its user's devices left here."""
        devices = self.users.get(client.uid, [])
        if client in devices:
            devices.remove(client)
        if not devices:
            self.users.pop(client.uid, None)
        return devices

    async def expect(self, cf: str) -> None:
        """A client of this replica is about to join channel `cf`: subscribe to it first
        (counted, as a member would be), so that nothing another replica publishes once the
        client is a member can be missed while a subscription is being confirmed. Always
        followed by `unexpect`, joined or not."""
        live = self._chatlog.channel_live(cf)
        self.live.setdefault(live, LiveFeed(Feed.CHANNEL, cf))
        await self._bus.follow(self._keys.channel_events(cf))
        await self._bus.follow(live)

    async def unexpect(self, cf: str) -> None:
        """The join `expect` was for is over: its subscription's count goes (the channel stays
        followed while it has local members)."""
        live = self._chatlog.channel_live(cf)
        await self._bus.unfollow(self._keys.channel_events(cf))
        await self._bus.unfollow(live)
        if cf not in self.local:
            self.live.pop(live, None)

    async def joined(self, client: Client, cf: str) -> None:
        """`client` is in channel `cf`: its first local member subscribes the replica to it."""
        client.channels.add(cf)
        members = self.local.setdefault(cf, set())
        first = not members
        members.add(client)
        if first:
            live = self._chatlog.channel_live(cf)
            self.live[live] = LiveFeed(Feed.CHANNEL, cf)
            await self._bus.follow(self._keys.channel_events(cf))
            await self._bus.follow(live)

    async def left(self, client: Client, cf: str) -> None:
        """`client` is out of channel `cf`: its last local member unsubscribes the replica."""
        client.channels.discard(cf)
        members = self.local.get(cf)
        if members is None or client not in members:
            return
        members.discard(client)
        if not members:
            del self.local[cf]
            live = self._chatlog.channel_live(cf)
            self.live.pop(live, None)
            await self._bus.unfollow(self._keys.channel_events(cf))
            await self._bus.unfollow(live)

    async def follow_nick(self, client: Client, nick: str) -> None:
        """Hear the private messages sent to `nick` from other replicas.

        A nick freed by a leaving client can be taken here before that client has finished
        leaving: the newcomer takes the subscription over, and the leaver's `unfollow_nick`
        then leaves it alone."""
        live = self._chatlog.nick_live(nick)
        taken_over = live in self.live
        self.live[live] = LiveFeed(Feed.NICK, client.uid)
        if not taken_over:
            await self._bus.follow(live)

    async def rename(self, uid: str, old: str, new: str) -> None:
        """User `uid`'s devices here changed nick: hear `new`'s private messages, not `old`'s."""
        if self._chatlog.nick_live(old) == self._chatlog.nick_live(new):
            return
        live = self._chatlog.nick_live(old)
        if self.live.get(live) == LiveFeed(Feed.NICK, uid):
            del self.live[live]
            await self._bus.unfollow(live)
        live = self._chatlog.nick_live(new)
        taken_over = live in self.live
        self.live[live] = LiveFeed(Feed.NICK, uid)
        if not taken_over:
            await self._bus.follow(live)

    async def unfollow_nick(self, client: Client, nick: str) -> None:
        """Stop hearing `nick`'s private messages, unless another client holds it here now
        (another user, or another device of the same user)."""
        if any(device is not client for device in self.devices(client.uid)):
            return
        live = self._chatlog.nick_live(nick)
        if self.live.get(live) == LiveFeed(Feed.NICK, client.uid):
            del self.live[live]
            await self._bus.unfollow(live)
