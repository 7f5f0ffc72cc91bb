"""Delivery: lines to this replica's clients at once, and to the other replicas' through Redis.

A channel's line goes to its local members now, in the sender's command (formatted once per
set of tags its recipients negotiated), and to every other replica with members through the
channel's events channel, which they deliver to theirs. A line sent through several channels
at once (a QUIT to each channel of the user) carries an id: each replica remembers who got it
(`seen`), so that a client sharing several of those channels gets it once.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from redis.asyncio import Redis

from apps.chat.events import BroadcastEvent, ChannelEvent, DirectEvent, Kill, Line, Numeric
from apps.chat.keys import ChatKeys
from apps.ircd.client import Client
from apps.ircd.render import Fanout, deliver
from apps.ircd.roster import Roster
from apps.kit.pubsub import publish, publish_on

#: Line ids remembered per replica, with who got each (see `Delivery.seen`).
SEEN_IDS = 2048

#: The lines that say someone came or went: in a big channel the others' can wait a moment.
PRESENCE = frozenset({"JOIN", "PART", "QUIT"})


class Delivery:
    """Delivers lines locally and publishes them for the other replicas."""

    def __init__(self, redis: Redis, keys: ChatKeys, instance: str, roster: Roster, counts: Counter[str],
                 new_id: Callable[[], str], *, wait_from: int = 200) -> None:
        """`wait_from`: in a channel with at least this many members here, others' JOINs,
        PARTs and QUITs can wait for the flusher's delay (`Flusher.later`)."""
        self._redis = redis
        self._wait_from = wait_from
        self._keys = keys
        self.instance = instance
        self._roster = roster
        self._counts = counts
        self._new_id = new_id
        self._seen: OrderedDict[str, set[str]] = OrderedDict()

    def seen(self, line: Line) -> set[str]:
        """The connections (`Client.device`) here that got this line already (none without an
        id)."""
        if not line.id:
            return set()
        seen = self._seen.get(line.id)
        if seen is None:
            seen = self._seen[line.id] = set()
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        return seen

    def local(self, cfs: Iterable[str], line: Line, *, exclude: str = "") -> None:
        """Deliver to the local members of channels `cfs`, once per connection, but connection
        `exclude` (the other devices of its user get it: it is what they said)."""
        cfs = list(cfs)
        # Who got it is remembered only where a client could get it twice: with an id, across
        # calls; without, across this call's channels. One channel without an id (a JOIN, a
        # message) remembers nobody: a JOIN storm runs this loop for every member of the
        # channel, for every joiner (docs/ircd.md, "CPU of a join wave").
        seen = self.seen(line) if line.id or len(cfs) > 1 else None
        fanout = Fanout(line)
        delivered = 0
        # Others' comings and goings in a big channel can wait a moment (`Flusher.later`); the
        # one who came or went gets its own at once.
        presence = line.command in PRESENCE
        own = line.source.partition("!")[0] if presence else ""
        for cf in cfs:
            members = list(self._roster.local.get(cf, ()))
            can_wait = presence and len(members) >= self._wait_from
            for client in members:
                device = client.device
                if device == exclude:
                    continue
                if seen is not None:
                    if device in seen:
                        continue
                    seen.add(device)
                fanout.deliver(client, can_wait=can_wait and client.nick != own)
                delivered += 1
        self._counts["messages"] += delivered

    async def to_channels(self, cfs: Iterable[str], line: Line, *, exclude: str = "",
                          leaves: str = "") -> None:
        """Deliver to the members of channels `cfs` here now, and publish for the other
        replicas. `exclude`: a connection that does not get it; `leaves`: the uid that is out
        of the channel with this line (PART, KICK: its devices here leave it too)."""
        cfs = list(cfs)
        if len(cfs) > 1 and not line.id:
            line = replace(line, id=self._new_id())
        self.local(cfs, line, exclude=exclude)
        async with self._redis.pipeline(transaction=False) as pipe:
            for cf in cfs:
                event = ChannelEvent(self.instance, cf, line, exclude=exclude, leaves=leaves)
                publish_on(pipe, self._keys.channel_events(cf), event.to_json())
            await pipe.execute()

    async def to_everyone(self, line: Line) -> None:
        """Deliver to every client of every replica (WALLOPS)."""
        fanout = Fanout(line)
        for devices in list(self._roster.users.values()):
            for client in devices:
                fanout.deliver(client)
        await publish(self._redis, self._keys.broadcast, BroadcastEvent(self.instance, line).to_json())

    async def to_uids(self, targets: Mapping[str, str], payload: Line | Numeric | Kill, *,
                      exclude: str = "") -> None:
        """Deliver to users by uid, to each of their devices but connection `exclude`;
        `targets` maps each uid to the replicas holding its devices (`User.instance`)."""
        remote: dict[str, list[str]] = {}
        for uid, instances in targets.items():
            for client in self._roster.devices(uid):
                if client.device != exclude:
                    self.receive(client, payload)
            for instance in instances.split():
                if instance != self.instance:
                    remote.setdefault(instance, []).append(uid)
        for instance, uids in remote.items():
            event = DirectEvent(self.instance, tuple(uids), payload)
            await publish(self._redis, self._keys.replica_events(instance), event.to_json())

    def receive(self, client: Client, payload: Line | Numeric | Kill) -> None:
        """What `to_uids` sent a local client: a line (once per id), a numeric, or a kill."""
        if isinstance(payload, Kill):
            client.killed = True
            client.close_link(payload.reason)
            return
        if isinstance(payload, Numeric):
            client.reply(payload.code, *payload.params)
        else:
            seen = self.seen(payload)  # also sent through a channel (extended-monitor): once
            if client.device in seen:
                return
            if payload.id:
                seen.add(client.device)
            deliver(client, payload)
        self._counts["messages"] += 1
