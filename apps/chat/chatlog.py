"""The chat's history and live fan-out: one Redis Stream per conversation.

A conversation is a channel (`#chan`) or a private one between two parties (`alice,~bob`).
`append` adds a message to the conversation's stream and publishes it, stream id included, on
the live channels given, in ONE Lua script: history and live delivery never disagree, and
every message has one stable id, the stream id (`<ms>-<seq>`), used as the IRCv3 msgid; its
milliseconds are the message's time. Streams are trimmed to `maxlen` entries as they grow,
never expired (but a guest's conversation): nothing here is a cache. The same script keeps the
conversation's search index (apps/chat/search.py) in step with the stream.

The ircd writes through `ChatLog` (and reads through it: it is a `History`, apps/chat/history.py);
the messages service only reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace

from redis.asyncio import Redis

from apps.chat.casemap import CASEMAPPING, Casemapping, casefold
from apps.chat.conversations import STORED_COMMANDS, ChatMessage, Conversation, dumps, is_guest, text_of
from apps.chat.history import History
from apps.chat.keys import ChatKeys
from apps.chat.search import INDEX, UNINDEX, Tokenizer
from apps.chat.settings import ChatSettings
from apps.kit.pubsub import is_cluster, publish_command, publish_on, same_slot

# KEYS[1] the stream, KEYS[2] its search index (apps/chat/search.py). ARGV[1] maxlen, ARGV[2] a
# time to live in ms (0: none), ARGV[3] the record as JSON without id and time, ARGV[4] the
# publish command (PUBLISH, or SPUBLISH on a cluster: apps/kit/pubsub.py), ARGV[5] the search
# terms separated by spaces (also among the fields, as `terms`, when there are any), ARGV[6]
# how many field/value items follow, then those items, then the channels to publish on (on a
# cluster, only those in the stream's slot: a script may not publish elsewhere).
# Trimming is exact, one entry per new one past maxlen: each trimmed entry's terms leave the
# index in the same step, which `MAXLEN ~` (it does not say what it removed) would not allow.
# The payload is built by splicing the new id in front of the record's keys, so no JSON library
# is needed in Lua.
_APPEND = UNINDEX + INDEX + """
local n = tonumber(ARGV[6])
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 7, 6 + n))
index(id, ARGV[5])
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
    unindex(entry[1], entry[2])
  end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local ms = string.match(id, '^(%d+)')
local payload = '{"id":"' .. id .. '","time":' .. ms .. ',' .. string.sub(ARGV[3], 2)
for i = 7 + n, #ARGV do
  redis.call(ARGV[4], ARGV[i], payload)
end
return id
"""

# KEYS[1] the stream, KEYS[2] its search index; ARGV[1] a message id. The entry's terms leave
# the index and the entry the stream in one step (a redaction), so no search can find a
# message the history no longer holds. Returns 1 if it was there.
_REMOVE = UNINDEX + """
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entry == 0 then return 0 end
unindex(entry[1][1], entry[1][2])
return redis.call('XDEL', KEYS[1], ARGV[1])
"""


class ChatLog(History):
    """The history with its writing side: appends to the conversations' streams and publishes
    each message live, in one step."""

    def __init__(self, redis: Redis, keys: ChatKeys, *, maxlen: int = 10_000, max_limit: int = 100,
                 guest_ttl: float = 86_400, mapping: Casemapping = CASEMAPPING,
                 tokenizer: Tokenizer | None = None) -> None:
        super().__init__(redis, keys, max_limit=max_limit, mapping=mapping)
        self.tokenizer = tokenizer or Tokenizer()
        if maxlen < 1 or guest_ttl <= 0:
            raise ValueError("maxlen and guest_ttl must be positive")
        self.maxlen = maxlen
        self.guest_ttl_ms = max(1, round(guest_ttl * 1000))
        self._append = redis.register_script(_APPEND)
        self._remove = redis.register_script(_REMOVE)

    @classmethod
    def from_settings(cls, redis: Redis, settings: ChatSettings) -> ChatLog:
        return cls(redis, settings.chat_keys, maxlen=settings.chat_history_max,
                   max_limit=settings.chat_history_limit, guest_ttl=settings.chat_guest_history_ttl,
                   tokenizer=settings.search_tokenizer)

    def channel_live(self, name: str) -> str:
        """The default live channel of a channel's messages."""
        return self.keys.live(casefold(name, self.mapping))

    def nick_live(self, nick: str) -> str:
        """The live channel of whoever holds `nick`."""
        return self.keys.live(casefold(nick, self.mapping))

    async def append(self, conversation: Conversation, message: ChatMessage,
                     publish_to: Iterable[str] = (), *, ttl_ms: int = 0) -> ChatMessage:
        """Store `message` and publish it on each of `publish_to`, atomically; the message
        with its new id. Refuses a command that is not stored (ValueError). `ttl_ms`: the
        conversation expires that long after this message (0: kept, trimmed only).

        On a cluster, the channels outside the stream's hash slot (a private message's nick
        channels) are published right after the script, not in it: a crash in between would
        store the message without its live delivery (history still has it)."""
        if message.command not in STORED_COMMANDS:
            raise ValueError(f"not a stored command: {message.command!r}")
        channels, elsewhere = list(publish_to), list[str]()
        if is_cluster(self._redis):
            channels, elsewhere = same_slot(conversation.key, channels)
        fields = message.stream_fields()
        terms = " ".join(self.tokenizer.terms(message.text)) if not message.is_event else ""
        if terms:
            fields += ["terms", terms]
        args: list[str | int] = [self.maxlen, ttl_ms, dumps(message.record()), publish_command(self._redis),
                                 terms, len(fields), *fields, *channels]
        keys = [conversation.key, self.keys.search_index(conversation.name)]
        new_id = await self._append(keys=keys, args=args)
        stored = replace(message, id=text_of(new_id))
        if elsewhere:
            payload = stored.to_json()
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel in elsewhere:
                    publish_on(pipe, channel, payload)
                await pipe.execute()
        return stored

    async def remove(self, conversation: Conversation, message_id: str) -> bool:
        """Take one message out of the history and out of the search index (a redaction);
        True if it was there. Its live delivery has happened: what the clients got, they keep."""
        keys = [conversation.key, self.keys.search_index(conversation.name)]
        return bool(await self._remove(keys=keys, args=[message_id]))

    async def append_channel(self, channel: str, message: ChatMessage,
                             publish_to: Sequence[str] | None = None) -> ChatMessage:
        """Append to a channel's history; published on its live channel unless told where."""
        channels = [self.channel_live(channel)] if publish_to is None else publish_to
        return await self.append(self.channel(channel), message, channels)

    async def append_events(self, channels: Sequence[str], message: ChatMessage) -> list[ChatMessage]:
        """Keep one event (draft/event-playback: a JOIN, a QUIT...) in each of `channels`'
        histories, its `target` set to each; published nowhere (the gateways deliver events
        live themselves). The stored records, in the order of `channels`, each with its id."""
        if not message.is_event:
            raise ValueError(f"not an event: {message.command!r}")
        return list(await asyncio.gather(*(
            self.append(self.channel(name), replace(message, target=name)) for name in channels)))

    async def append_private(self, sender: str, recipient: str, message: ChatMessage,
                             publish_to: Sequence[str] = ()) -> ChatMessage:
        """Append to the private conversation of two parties, publish it where told, then
        note the conversation in both parties' indexes (for `targets`). A conversation with a
        guest, and a guest's index, expire `guest_ttl` after their last message."""
        guest = is_guest(sender) or is_guest(recipient)
        ttl_ms = self.guest_ttl_ms if guest else 0
        stored = await self.append(self.private(sender, recipient), message, publish_to, ttl_ms=ttl_ms)
        # Not in the script: the indexes live in other cluster slots. Losing this write only
        # hides the conversation from TARGETS until the next message.
        async with self._redis.pipeline(transaction=False) as pipe:
            for me, other in {(sender, recipient), (recipient, sender)}:
                pipe.zadd(self.keys.conversations_of(me), {other: stored.time_ms})
                if is_guest(me):
                    pipe.pexpire(self.keys.conversations_of(me), self.guest_ttl_ms)
            await pipe.execute()
        return stored
