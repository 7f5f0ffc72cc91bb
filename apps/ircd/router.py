"""What comes in on the bus, routed to this replica's clients.

Four kinds of channels: a chat log's live channels (a channel's messages, or a nick's private
ones: the chat log's payloads), a channel's events, this replica's own channel (by uid) and
the broadcast channel. Payloads that cannot be decoded are counted (`malformed`) and dropped;
a replica skips what it published itself, having delivered it already.
"""

from __future__ import annotations

from collections import Counter

from apps.chat.conversations import ChatMessage, MalformedChatMessage
from apps.chat.events import BroadcastEvent, ChannelEvent, DirectEvent, MalformedEvent
from apps.chat.keys import ChatKeys
from apps.ircd.delivery import Delivery
from apps.ircd.lines import record_line
from apps.ircd.render import deliver
from apps.ircd.roster import Feed, Roster


class Router:
    """The bus's handler (apps/ircd/bus.py): one call per message received."""

    def __init__(self, keys: ChatKeys, instance: str, roster: Roster, delivery: Delivery,
                 counts: Counter[str]) -> None:
        self._instance = instance
        self._own_channel = keys.replica_events(instance)
        self._broadcast = keys.broadcast
        self._roster = roster
        self._delivery = delivery
        self._counts = counts

    async def __call__(self, channel: str, data: bytes) -> None:
        try:
            if channel in self._roster.live:
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
        client = self._roster.clients.get(feed.name)
        if client is not None:
            deliver(client, line)
            self._counts["messages"] += 1

    def _on_direct(self, event: DirectEvent) -> None:
        for uid in event.to:
            client = self._roster.clients.get(uid)
            if client is not None:
                self._delivery.receive(client, event.payload)

    def _on_broadcast(self, event: BroadcastEvent) -> None:
        if event.origin != self._instance:
            for client in list(self._roster.clients.values()):
                deliver(client, event.line)

    async def _on_channel_event(self, event: ChannelEvent) -> None:
        if event.origin == self._instance:
            return
        self._delivery.local([event.channel], event.line, exclude=event.exclude)
        gone = self._roster.clients.get(event.leaves) if event.leaves else None
        if gone is not None:
            await self._roster.left(gone, event.channel)
