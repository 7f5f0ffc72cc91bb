"""The chat's history and live fan-out: one Redis Stream per conversation.

A conversation is a channel (`#chan`) or a private one between two parties (`alice,~bob`).
`append` adds a message to the conversation's stream and publishes it, stream id included, on
the live channels given, in ONE Lua script: history and live delivery never disagree, and
every message has one stable id, the stream id (`<ms>-<seq>`), used as the IRCv3 msgid; its
milliseconds are the message's time. Streams are trimmed to about `maxlen` entries as they
grow (`MAXLEN ~`), never expired: nothing here is a cache.

The ircd (live delivery, CHATHISTORY) and the messages service (history over HTTP) both use
this module, so they read and write exactly the same records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import Field
from redis.asyncio import Redis

from apps.chat.casemap import CASEMAPPING, Casemapping, casefold
from apps.kit.names import Keys
from apps.kit.pubsub import is_cluster, publish, publish_command, publish_on, same_slot
from apps.kit.settings import KitSettings

#: What may be stored: the messages a client sends to a target.
STORED_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})
MAX_ID_PART = 2**64 - 1
_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")

# KEYS[1] the stream. ARGV[1] maxlen, ARGV[2] a time to live in ms (0: none), ARGV[3] the
# record as JSON without id and time, ARGV[4] the publish command (PUBLISH, or SPUBLISH on a
# cluster: apps/kit/pubsub.py), ARGV[5] how many field/value items follow, then those items,
# then the channels to publish on (on a cluster, only those in the stream's slot: a script may
# not publish elsewhere).
# The payload is built by splicing the new id in front of the record's keys, so no JSON library
# is needed in Lua.
_APPEND = """
local n = tonumber(ARGV[5])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 6, 5 + n))
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local ms = string.match(id, '^(%d+)')
local payload = '{"id":"' .. id .. '","time":' .. ms .. ',' .. string.sub(ARGV[3], 2)
for i = 6 + n, #ARGV do
  redis.call(ARGV[4], ARGV[i], payload)
end
return id
"""


class ChatSettings(KitSettings):
    """Kit settings plus the history limits, read by every service that uses the chat log."""

    #: Entries kept per conversation (channel or private): the stream is trimmed past that,
    #: in whole blocks of up to 100 entries (Redis's `MAXLEN ~`).
    chat_history_max: int = Field(default=10_000, ge=1)
    #: Most messages one history query returns (advertised as CHATHISTORY=<n> by the ircd).
    chat_history_limit: int = Field(default=100, ge=1, le=10_000)
    #: Seconds a private conversation with a guest (a connection without an account) is kept
    #: after its last message: nobody can open it again once the guest has gone but the
    #: account on the other side, if any.
    chat_guest_history_ttl: float = Field(default=86_400, gt=0)


class MalformedChatMessage(ValueError):
    """Bytes on a live channel that are not a chat record."""


class InvalidRef(ValueError):
    """A history reference that is not a stream id (or a timestamp out of range)."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message as stored and fanned out.

    `source` is `nick!user@host`, `target` the channel or nick as the sender spelt it,
    `account` the sender's account ("" if not logged in), `tags` its client-only tags
    (`+draft/reply`...). `id` is set by `ChatLog.append`.
    """

    command: str
    source: str
    target: str
    text: str = ""
    account: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str = ""
    #: The sender's party in a private conversation (see `party`), kept in the stream only:
    #: it tells which side a guest was on once its connection is gone.
    party: str = ""
    #: The gateway replica that appended it, in the live payload only (not in the stream): the
    #: replica, which delivered to its own clients already, skips exactly its own messages.
    origin: str = ""

    @property
    def time_ms(self) -> int:
        """The server time of the message, in unix milliseconds (the id's first part)."""
        return int(self.id.split("-", 1)[0]) if self.id else 0

    def record(self) -> dict[str, Any]:
        """The JSON fields, without id and time, in the order of the pub/sub payload (`origin`
        last, when there is one)."""
        fields: dict[str, Any] = {"command": self.command, "from": self.source, "account": self.account,
                                  "target": self.target, "text": self.text, "tags": dict(self.tags)}
        if self.origin:
            fields["origin"] = self.origin
        return fields

    def to_dict(self) -> dict[str, Any]:
        """The pub/sub payload (and the HTTP history item) as a dict."""
        return {"id": self.id, "time": self.time_ms, **self.record()}

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    def stream_fields(self) -> list[str]:
        """Field/value items of the stream entry; `tags` only when there are some."""
        items = ["command", self.command, "from", self.source, "account", self.account,
                 "target", self.target, "text", self.text]
        if self.tags:
            items += ["tags", _dumps(dict(self.tags))]
        if self.party:
            items += ["party", self.party]
        return items

    @classmethod
    def from_stream(cls, entry_id: str | bytes, fields: Mapping[Any, Any]) -> ChatMessage:
        """A record read back from the stream. Missing fields are empty, bad tags ignored,
        so that one hand-written entry cannot break every history query."""
        values = {_text(k): _text(v) for k, v in fields.items()}
        try:
            tags = json.loads(values.get("tags", "{}"))
        except ValueError:
            tags = {}
        if not isinstance(tags, dict):
            tags = {}
        return cls(command=values.get("command", ""), source=values.get("from", ""),
                   target=values.get("target", ""), text=values.get("text", ""),
                   account=values.get("account", ""),
                   tags={str(k): str(v) for k, v in tags.items()}, id=_text(entry_id),
                   party=values.get("party", ""))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ChatMessage:
        """Parse a live payload; MalformedChatMessage naming what is wrong."""
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MalformedChatMessage(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedChatMessage("not a JSON object")
        for name in ("command", "from", "target"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise MalformedChatMessage(f"{name}: missing or not a string")
        tags = data.get("tags", {})
        if not isinstance(tags, dict):
            raise MalformedChatMessage("tags: not an object")
        message_id = data.get("id") or ""
        if message_id and not _STREAM_ID.fullmatch(str(message_id)):
            raise MalformedChatMessage("id: not a stream id")
        return cls(command=data["command"], source=data["from"], target=data["target"],
                   text=str(data.get("text") or ""), account=str(data.get("account") or ""),
                   tags={str(k): str(v) for k, v in tags.items()}, id=str(message_id),
                   origin=str(data.get("origin") or ""))


@dataclass(frozen=True, slots=True)
class Ref:
    """A position in a conversation: a message id, or a time (unix ms).

    A time stands between messages: "before T" excludes messages at T's millisecond, "after T"
    excludes them too, "around T" starts at it.
    """

    kind: Literal["msgid", "time"]
    ms: int
    seq: int = 0

    @classmethod
    def msgid(cls, text: str) -> Ref:
        """The reference of a message id `<ms>-<seq>`; InvalidRef if it is not one."""
        match = _STREAM_ID.fullmatch(text)
        if not match:
            raise InvalidRef(f"not a message id: {text[:40]!r}")
        ms, seq = int(match.group(1)), int(match.group(2))
        if ms > MAX_ID_PART or seq > MAX_ID_PART:
            raise InvalidRef(f"message id out of range: {text[:40]!r}")
        return cls("msgid", ms, seq)

    @classmethod
    def time(cls, ms: int) -> Ref:
        """The reference of a point in time, in unix milliseconds."""
        if not 0 <= ms <= MAX_ID_PART:
            raise InvalidRef(f"time out of range: {ms}")
        return cls("time", ms)

    def _position(self) -> tuple[int, int]:
        return (self.ms, self.seq)

    def first_after(self) -> str | None:
        """The lowest id strictly after this reference (None: nothing can be)."""
        if self.kind == "time":
            return None if self.ms == MAX_ID_PART else f"{self.ms + 1}-0"
        return _next_id(self.ms, self.seq)

    def last_before(self) -> str | None:
        """The highest id strictly before this reference (None: nothing can be)."""
        return _previous_id(self.ms, self.seq)

    def first_at(self) -> str:
        """The lowest id at or after this reference."""
        return f"{self.ms}-{self.seq}"


@dataclass(frozen=True, slots=True)
class Conversation:
    """A channel or a private conversation: its folded name and its stream key."""

    name: str
    key: str


#: What starts a guest's party: never the first character of an account name (a nick).
GUEST = "~"


def party(connection: str, account: str = "", mapping: Casemapping = CASEMAPPING) -> str:
    """Who takes part in a private conversation: the folded account name of a logged-in user,
    or `~` and the connection's own id for a guest (a client without an account).

    A guest is its connection, never its nick: a nick is free for the next comer once its
    holder leaves, so a conversation keyed by it would be handed to whoever takes the nick
    next. The connection id is never reused; `~` never starts an account name, so the two
    kinds never collide (what a guest said is not shown to an account registered later
    under its nick either)."""
    if account:
        return casefold(account, mapping)
    if not connection:
        raise ValueError("a guest party needs its connection id")
    return GUEST + connection


def is_guest(party_name: str) -> bool:
    """True for a guest's party (see `party`)."""
    return party_name.startswith(GUEST)


class ChatLog:
    """Appends to and reads the conversations' streams."""

    def __init__(self, redis: Redis, keys: Keys, *, maxlen: int = 10_000, max_limit: int = 100,
                 guest_ttl: float = 86_400, mapping: Casemapping = CASEMAPPING) -> None:
        if maxlen < 1 or max_limit < 1 or guest_ttl <= 0:
            raise ValueError("maxlen, max_limit and guest_ttl must be positive")
        self._redis = redis
        self.keys = keys
        self.maxlen = maxlen
        self.max_limit = max_limit
        self.guest_ttl_ms = max(1, round(guest_ttl * 1000))
        self.mapping = mapping
        self._append = redis.register_script(_APPEND)

    @classmethod
    def from_settings(cls, redis: Redis, settings: ChatSettings) -> ChatLog:
        return cls(redis, settings.keys, maxlen=settings.chat_history_max,
                   max_limit=settings.chat_history_limit, guest_ttl=settings.chat_guest_history_ttl)

    # Conversations and channels

    def channel(self, name: str) -> Conversation:
        """The conversation of a channel."""
        folded = casefold(name, self.mapping)
        if not folded:
            raise ValueError("empty channel name")
        return Conversation(folded, self.keys.chat_log(folded))

    def private(self, party_a: str, party_b: str) -> Conversation:
        """The conversation between two parties (see `party`), in either order."""
        if not party_a or not party_b:
            raise ValueError("empty party")
        name = ",".join(sorted((party_a, party_b)))
        return Conversation(name, self.keys.chat_log(name))

    def channel_live(self, name: str) -> str:
        """The default live channel of a channel's messages."""
        return self.keys.chat_live(casefold(name, self.mapping))

    def nick_live(self, nick: str) -> str:
        """The live channel of whoever holds `nick`."""
        return self.keys.chat_live(casefold(nick, self.mapping))

    # Writing

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
        args: list[str | int] = [self.maxlen, ttl_ms, _dumps(message.record()),
                                 publish_command(self._redis), len(fields), *fields, *channels]
        new_id = await self._append(keys=[conversation.key], args=args)
        stored = replace(message, id=_text(new_id))
        if elsewhere:
            payload = stored.to_json()
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel in elsewhere:
                    publish_on(pipe, channel, payload)
                await pipe.execute()
        return stored

    async def append_channel(self, channel: str, message: ChatMessage,
                             publish_to: Sequence[str] | None = None) -> ChatMessage:
        """Append to a channel's history; published on its live channel unless told where."""
        channels = [self.channel_live(channel)] if publish_to is None else publish_to
        return await self.append(self.channel(channel), message, channels)

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
                pipe.zadd(self.keys.chat_dms(me), {other: stored.time_ms})
                if is_guest(me):
                    pipe.pexpire(self.keys.chat_dms(me), self.guest_ttl_ms)
            await pipe.execute()
        return stored

    async def publish(self, message: ChatMessage, publish_to: Iterable[str]) -> int:
        """Publish without storing (e.g. a `+typing` TAGMSG); how many subscribers heard it."""
        payload = message.to_json()
        heard = 0
        for channel in publish_to:
            heard += await publish(self._redis, channel, payload)
        return heard

    # Reading: every list is oldest first.

    async def latest(self, conversation: Conversation, limit: int,
                     after: Ref | None = None) -> list[ChatMessage]:
        """The newest `limit` messages, only those after `after` if given."""
        limit = self._limit(limit)
        low = "-" if after is None else after.first_after()
        if low is None:
            return []
        return list(reversed(await self._xrevrange(conversation.key, "+", low, limit)))

    async def before(self, conversation: Conversation, ref: Ref, limit: int) -> list[ChatMessage]:
        """The `limit` messages just before `ref`."""
        limit = self._limit(limit)
        high = ref.last_before()
        if high is None:
            return []
        return list(reversed(await self._xrevrange(conversation.key, high, "-", limit)))

    async def after(self, conversation: Conversation, ref: Ref, limit: int) -> list[ChatMessage]:
        """The `limit` messages just after `ref`."""
        limit = self._limit(limit)
        low = ref.first_after()
        if low is None:
            return []
        return await self._xrange(conversation.key, low, "+", limit)

    async def around(self, conversation: Conversation, ref: Ref, limit: int) -> list[ChatMessage]:
        """`limit` messages centred on `ref`: (limit - 1) // 2 before it, then the rest from it
        on (the message itself first, when `ref` is a message id that exists)."""
        limit = self._limit(limit)
        earlier = await self.before(conversation, ref, (limit - 1) // 2) if limit > 1 else []
        later = await self._xrange(conversation.key, ref.first_at(), "+", limit - len(earlier))
        return earlier + later

    async def between(self, conversation: Conversation, start: Ref, end: Ref,
                      limit: int) -> list[ChatMessage]:
        """Messages strictly between two references, at most `limit`, counted from `start`:
        if `start` is the later one, these are the last `limit` before it."""
        limit = self._limit(limit)
        forward = start._position() <= end._position()
        low_ref, high_ref = (start, end) if forward else (end, start)
        low, high = low_ref.first_after(), high_ref.last_before()
        if low is None or high is None or _id_tuple(low) > _id_tuple(high):
            return []
        if forward:
            return await self._xrange(conversation.key, low, high, limit)
        return list(reversed(await self._xrevrange(conversation.key, high, low, limit)))

    async def last_id(self, conversation: Conversation) -> str | None:
        """The id of the newest message, None for an empty conversation."""
        newest = await self._xrevrange(conversation.key, "+", "-", 1)
        return newest[0].id if newest else None

    async def targets(self, of_party: str, start_ms: int, end_ms: int,
                      limit: int) -> list[tuple[str, int]]:
        """The correspondents `of_party` had private conversations with whose LAST message
        falls strictly between the two times: (name, last ms), oldest first, at most `limit`.
        An account is named by its name; a guest by the nick it had in the last message (a
        guest's conversation that has expired is left out)."""
        limit = self._limit(limit)
        low, high = sorted((start_ms, end_ms))
        rows: Any = await self._redis.zrangebyscore(self.keys.chat_dms(of_party), f"({low}", f"({high}",
                                                    start=0, num=limit, withscores=True)
        found = [(_text(member), int(score)) for member, score in rows]
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

    def _limit(self, limit: int) -> int:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return min(limit, self.max_limit)

    async def _xrange(self, key: str, low: str, high: str, count: int) -> list[ChatMessage]:
        entries: Any = await self._redis.xrange(key, low, high, count=count)
        return [ChatMessage.from_stream(entry_id, fields) for entry_id, fields in entries]

    async def _xrevrange(self, key: str, high: str, low: str, count: int) -> list[ChatMessage]:
        entries: Any = await self._redis.xrevrange(key, high, low, count=count)
        return [ChatMessage.from_stream(entry_id, fields) for entry_id, fields in entries]


def _next_id(ms: int, seq: int) -> str | None:
    if seq < MAX_ID_PART:
        return f"{ms}-{seq + 1}"
    return None if ms == MAX_ID_PART else f"{ms + 1}-0"


def _previous_id(ms: int, seq: int) -> str | None:
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return None if ms == 0 else f"{ms - 1}-{MAX_ID_PART}"


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-", 1)
    return int(ms), int(seq)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class HistoryAccess:
    """The one rule for reading a channel's history, over IRC (CHATHISTORY) and over HTTP
    (the messages service): a reader may read it only while it is in the channel, a
    connection by itself, an account through any of its connections. A private
    conversation is readable by its two parties only (`party`), which the caller is.

    Membership rather than the channel's modes: a secret, invite-only or keyed channel is not
    readable from outside, and a public one is readable by joining it, as any IRC client can.
    What happens to a closed channel's history when it empties is the ircd's part: it is
    dropped with the channel, so that whoever creates the channel again cannot read it."""

    def __init__(self, redis: Redis, keys: Keys, mapping: Casemapping = CASEMAPPING) -> None:
        self._redis = redis
        self.keys = keys
        self.mapping = mapping

    async def connections_of(self, account: str) -> list[str]:
        """The ids of the connections logged in to `account` now."""
        found = await self._redis.smembers(self.keys.irc_account_connections(casefold(account, self.mapping)))
        return sorted(_text(uid) for uid in found)

    async def may_read_channel(self, channel: str, connections: Sequence[str]) -> bool:
        """True if one of `connections` is in `channel`."""
        if not connections:
            return False
        statuses = await self._redis.hmget(
            self.keys.irc_channel_members(casefold(channel, self.mapping)), list(connections))
        return any(status is not None for status in statuses)

