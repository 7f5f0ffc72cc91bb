"""Reading the chat's history: queries over the conversations' streams.

The ircd (CHATHISTORY) and the messages service (history over HTTP) both read through
`History`, so they read exactly the same records; the ircd writes through its subclass
`ChatLog` (apps/chat/chatlog.py). The messages service only reads: its Redis user may not
write a stream.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from apps.chat.casemap import CASEMAPPING, Casemapping, casefold
from apps.chat.conversations import ChatMessage, Conversation, Ref, id_tuple, is_guest, text_of
from apps.chat.keys import ChatKeys
from apps.chat.settings import ChatSettings


class History:
    """Names the conversations and reads their streams; every list is oldest first."""

    #: Entries read per round trip while skipping events for a reader that wants messages only.
    events_page = 200

    def __init__(self, redis: Redis, keys: ChatKeys, *, max_limit: int = 100,
                 mapping: Casemapping = CASEMAPPING) -> None:
        if max_limit < 1:
            raise ValueError("max_limit must be positive")
        self._redis = redis
        self.keys = keys
        self.max_limit = max_limit
        self.mapping = mapping

    @classmethod
    def from_settings(cls, redis: Redis, settings: ChatSettings) -> History:
        return cls(redis, settings.chat_keys, max_limit=settings.chat_history_limit)

    def channel(self, name: str) -> Conversation:
        """The conversation of a channel."""
        folded = casefold(name, self.mapping)
        if not folded:
            raise ValueError("empty channel name")
        return Conversation(folded, self.keys.conversation_log(folded))

    def private(self, party_a: str, party_b: str) -> Conversation:
        """The conversation between two parties (see `party`), in either order."""
        if not party_a or not party_b:
            raise ValueError("empty party")
        name = ",".join(sorted((party_a, party_b)))
        return Conversation(name, self.keys.conversation_log(name))

    async def latest(self, conversation: Conversation, limit: int, after: Ref | None = None, *,
                     events: bool = False) -> list[ChatMessage]:
        """The newest `limit` messages, only those after `after` if given; with `events`,
        the conversation's events among them (draft/event-playback)."""
        limit = self._limit(limit)
        low = "-" if after is None else after.first_after()
        if low is None:
            return []
        return list(reversed(await self._read_backward(conversation.key, "+", low, limit, events)))

    async def before(self, conversation: Conversation, ref: Ref, limit: int, *,
                     events: bool = False) -> list[ChatMessage]:
        """The `limit` messages just before `ref`."""
        limit = self._limit(limit)
        high = ref.last_before()
        if high is None:
            return []
        return list(reversed(await self._read_backward(conversation.key, high, "-", limit, events)))

    async def after(self, conversation: Conversation, ref: Ref, limit: int, *,
                    events: bool = False) -> list[ChatMessage]:
        """The `limit` messages just after `ref`."""
        limit = self._limit(limit)
        low = ref.first_after()
        if low is None:
            return []
        return await self._read_forward(conversation.key, low, "+", limit, events)

    async def around(self, conversation: Conversation, ref: Ref, limit: int, *,
                     events: bool = False) -> list[ChatMessage]:
        """`limit` messages centred on `ref`: (limit - 1) // 2 before it, then the rest from it
        on (the message itself first, when `ref` is a message id that exists)."""
        limit = self._limit(limit)
        earlier = await self.before(conversation, ref, (limit - 1) // 2, events=events) if limit > 1 else []
        later = await self._read_forward(conversation.key, ref.first_at(), "+", limit - len(earlier), events)
        return earlier + later

    async def between(self, conversation: Conversation, start: Ref, end: Ref, limit: int, *,
                      events: bool = False) -> list[ChatMessage]:
        """Messages strictly between two references, at most `limit`, counted from `start`:
        if `start` is the later one, these are the last `limit` before it."""
        limit = self._limit(limit)
        forward = start._position() <= end._position()
        low_ref, high_ref = (start, end) if forward else (end, start)
        low, high = low_ref.first_after(), high_ref.last_before()
        if low is None or high is None or id_tuple(low) > id_tuple(high):
            return []
        if forward:
            return await self._read_forward(conversation.key, low, high, limit, events)
        return list(reversed(await self._read_backward(conversation.key, high, low, limit, events)))

    async def message(self, conversation: Conversation, ref: Ref) -> ChatMessage | None:
        """The message `ref` (a message id) names, None if it is not (or no longer) kept."""
        found = await self._xrange(conversation.key, ref.first_at(), ref.first_at(), 1)
        return found[0] if found and found[0].id == ref.first_at() else None

    async def last_id(self, conversation: Conversation) -> str | None:
        """The id of the newest message (events aside), None for a conversation without one."""
        newest = await self._read_backward(conversation.key, "+", "-", 1, False)
        return newest[0].id if newest else None

    async def targets(self, of_party: str, start_ms: int, end_ms: int,
                      limit: int) -> list[tuple[str, int]]:
        """The correspondents `of_party` had private conversations with whose LAST message
        falls strictly between the two times: (name, last ms), oldest first, at most `limit`.
        An account is named by its name; a guest by the nick it had in the last message (a
        guest's conversation that has expired is left out)."""
        limit = self._limit(limit)
        low, high = sorted((start_ms, end_ms))
        rows: Any = await self._redis.zrangebyscore(self.keys.conversations_of(of_party), f"({low}",
                                                    f"({high}", start=0, num=limit, withscores=True)
        found = [(text_of(member), int(score)) for member, score in rows]
        guests = [other for other, _ in found if is_guest(other)]
        last: dict[str, ChatMessage] = {}
        if guests:
            async with self._redis.pipeline(transaction=False) as pipe:
                for other in guests:
                    pipe.xrevrange(self.private(of_party, other).key, "+", "-", count=1)
                for other, entries in zip(guests, await pipe.execute(), strict=True):
                    if entries:
                        last[other] = ChatMessage.from_stream(*entries[0])
        named = []
        for other, ms in found:
            if not is_guest(other):
                named.append((other, ms))
            elif other in last:
                message = last[other]
                sent_by_guest = message.party == other
                named.append((message.source.split("!", 1)[0] if sent_by_guest else message.target, ms))
        return named

    async def _read_forward(self, key: str, low: str, high: str, count: int,
                            events: bool) -> list[ChatMessage]:
        return await _read(self._redis, key, low, high, count, events, self.events_page, False)

    async def _read_backward(self, key: str, high: str, low: str, count: int,
                             events: bool) -> list[ChatMessage]:
        return await _read(self._redis, key, high, low, count, events, self.events_page, True)

    def _limit(self, limit: int) -> int:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return min(limit, self.max_limit)

    async def _xrange(self, key: str, low: str, high: str, count: int) -> list[ChatMessage]:
        entries: Any = await self._redis.xrange(key, low, high, count=count)
        return [ChatMessage.from_stream(entry_id, fields) for entry_id, fields in entries]


async def _read(redis: Redis, key: str, start: str, stop: str, count: int, events: bool,
                page_size: int, backward: bool) -> list[ChatMessage]:
    """Up to `count` entries from `start` to `stop` (ids, inclusive), oldest first, or newest
    first when `backward`. Without `events`, messages only: the read goes on past events until
    it has `count` messages or reaches `stop` (at worst the whole stream, which
    `chat_history_max` bounds)."""
    out: list[ChatMessage] = []
    page = count if events else max(count, page_size)
    read = redis.xrevrange if backward else redis.xrange
    bound: str | None = start
    while bound is not None:
        entries: Any = await read(key, bound, stop, count=page)
        for entry_id, fields in entries:
            message = ChatMessage.from_stream(entry_id, fields)
            if events or not message.is_event:
                out.append(message)
                if len(out) == count:
                    return out
        if len(entries) < page:
            break
        last = Ref.msgid(text_of(entries[-1][0]))
        bound = last.last_before() if backward else last.first_after()
    return out
