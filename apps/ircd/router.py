"""What comes in on the bus, routed to this replica's clients.

Four kinds of channels: a chat log's live channels (a channel's messages, or a nick's private
ones: the chat log's payloads), a channel's events, this replica's own channel (by uid) and
the broadcast channel. Payloads that cannot be decoded are counted (`malformed`) and dropped;
a replica skips what it published itself, having delivered it already.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from apps.chat.conversations import ChatMessage, MalformedChatMessage, published_by
from apps.chat.events import BroadcastEvent, ChannelEvent, DirectEvent, MalformedEvent, Sync
from apps.chat.keys import ChatKeys
from apps.ircd.delivery import Delivery
from apps.ircd.lines import record_line
from apps.ircd.render import Fanout, deliver
from apps.ircd.roster import Feed, Roster
from apps.kit.tasks import Background

log = logging.getLogger("canaduck.ircd.router")


class Router:
    """The bus's handler (apps/ircd/bus.py): one call per message received."""

    def __init__(self, keys: ChatKeys, instance: str, roster: Roster, delivery: Delivery,
                 counts: Counter[str]) -> None:
        self._instance = instance
        self._own_payloads = published_by(instance)
        self._own_channel = keys.replica_events(instance)
        self._broadcast = keys.broadcast
        self._roster = roster
        self._delivery = delivery
        self._counts = counts
        #: What follows a user's change for its devices here (apps/ircd/operations/devices.py):
        #: set once the replica's context exists.
        self.on_sync: Callable[[str, Sync], Awaitable[None]] | None = None
        # Following a change may subscribe the replica to a channel, which waits for Redis to
        # confirm it: the bus's reader, which runs this handler, must not wait for what it
        # reads. So the changes queue for a task of their own, taken in their order.
        self._syncs: asyncio.Queue[tuple[str, Sync]] = asyncio.Queue()
        self._sync_task = Background("ircd-device-sync")

    def start(self) -> None:
        self._sync_task.start(self._follow_syncs())

    async def stop(self) -> None:
        await self._sync_task.stop()

    async def _follow_syncs(self) -> None:
        while True:
            uid, change = await self._syncs.get()
            if self.on_sync is None:
                continue
            try:
                await self.on_sync(uid, change)
            except Exception:  # one device's trouble must not stop the others' changes
                log.exception("device sync for %s failed", uid)

    async def __call__(self, channel: str, data: bytes) -> None:
        try:
            if channel in self._roster.live:
                # A replica reads back every message it sent, delivered here when sent: passed
                # over without parsing it (docs/cluster.md, "What N replicas pay").
                if not data.endswith(self._own_payloads):
                    self._on_chat_message(channel, ChatMessage.from_json(data))
            elif channel == self._own_channel:
                self._on_direct(DirectEvent.from_json(data))
            elif channel == self._broadcast:
                self._on_broadcast(BroadcastEvent.from_json(data))
            else:
                await self._on_channel_event(ChannelEvent.from_json(data))
        except (MalformedEvent, MalformedChatMessage):
            self._counts["malformed"] += 1

    def _on_chat_message(self, channel: str, message: ChatMessage) -> None:
        feed = self._roster.live.get(channel)
        if feed is None or message.origin == self._instance:
            return
        line = record_line(message)
        if feed.kind is Feed.CHANNEL:
            self._delivery.local([feed.name], line)
            return
        for client in self._roster.devices(feed.name):
            deliver(client, line)
            self._counts["messages"] += 1

    def _on_direct(self, event: DirectEvent) -> None:
        payload = event.payload
        for uid in event.to:
            if isinstance(payload, Sync):
                self._syncs.put_nowait((uid, payload))
                continue
            for client in self._roster.devices(uid):
                self._delivery.receive(client, payload)

    def _on_broadcast(self, event: BroadcastEvent) -> None:
        if event.origin != self._instance:
            fanout = Fanout(event.line)
            for devices in list(self._roster.users.values()):
                for client in devices:
                    fanout.deliver(client)

    async def _on_channel_event(self, event: ChannelEvent) -> None:
        if event.origin == self._instance:
            return
        self._delivery.local([event.channel], event.line, exclude=event.exclude)
        if event.leaves:
            for gone in list(self._roster.devices(event.leaves)):
                await self._roster.left(gone, event.channel)
