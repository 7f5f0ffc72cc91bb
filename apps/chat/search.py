"""Searching a conversation's history: an inverted index kept beside its stream.

**The structure.** One sorted set per conversation, `canaduck:chat:{<conversation>}:search`,
in the stream's hash slot. Every member scores 0 and reads `<term> <key>`: a word of a message
and that message's position (`index_key`), so that the set, ordered by its bytes
(`ZRANGE ... BYLEX`), holds each term's messages side by side, oldest to newest. One term's
messages are the range `[<term> ` .. `(<term>!` (a space sorts before every character a term
may hold, `!` right after the space); `ZLEXCOUNT` counts them in O(log N).

One key per conversation rather than one per term: it expires with a guest's conversation,
goes with a closed channel's history and is trimmed with its stream by one command each,
whatever the vocabulary (a key per term would need every term's key named, in the script, to
expire or delete them).

**Written with the history.** `ChatLog.append`'s script adds the message's terms to the set
in the same step as the `XADD`, and keeps them in the stream entry (field `terms`), so that
trimming the stream takes exactly those members out (`UNINDEX` below) and the index never
disagrees with the history. `SearchIndex.forget` takes one message out (for a deletion).

**What matches.** Words: the text NFKC-normalised and casefolded (`Straße` is `strasse`,
a full-width letter its plain one), then runs of Unicode letters, digits and `_`. A query's words must all be
in a message, whole (no prefixes, no phrase order, accents kept: `cafe` is not `café`).

**A query** counts each of its terms (`ZLEXCOUNT`), walks the rarest one newest first in
batches (`ZRANGE BYLEX REV LIMIT`), checks each candidate against the other terms with one
`ZMSCORE` per batch and term, and stops at `limit` matches or after `scan` candidates (then it
says where to go on: `next_before`). A term found nowhere answers at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from apps.chat.conversations import ChatMessage, Conversation, Ref, id_tuple, text_of
from apps.chat.keys import ChatKeys

if TYPE_CHECKING:
    from apps.chat.settings import ChatSettings

_WORD = re.compile(r"\w+")
#: Digits of a stream id's milliseconds in an index member: every time until the year 2286.
_MS_DIGITS = 13

#: Lua: take the terms of one stream entry (`id`, its flat field list) out of the index
#: KEYS[2]. Entries stored before the index existed have no `terms` and are left alone.
UNINDEX = """
local function unindex(id, fields)
  local terms
  for i = 1, #fields, 2 do
    if fields[i] == 'terms' then terms = fields[i + 1] end
  end
  if not terms then return 0 end
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  local key = string.rep('0', 13 - #ms) .. ms .. '-' .. (#seq - 1) .. seq
  local members = {}
  for term in string.gmatch(terms, '%S+') do members[#members + 1] = term .. ' ' .. key end
  if #members == 0 then return 0 end
  return redis.call('ZREM', KEYS[2], unpack(members))
end
"""

#: Lua, after `UNINDEX`: the index members of a new entry (`id`, its terms separated by spaces).
INDEX = """
local function index(id, terms)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  local key = string.rep('0', 13 - #ms) .. ms .. '-' .. (#seq - 1) .. seq
  local args = {}
  for term in string.gmatch(terms, '%S+') do
    args[#args + 1] = 0
    args[#args + 1] = term .. ' ' .. key
  end
  if #args > 0 then redis.call('ZADD', KEYS[2], unpack(args)) end
end
"""

# KEYS[1] the stream, KEYS[2] its index; ARGV[1] a message id. Returns the members removed.
_FORGET = UNINDEX + """
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entry == 0 then return 0 end
return unindex(entry[1][1], entry[1][2])
"""


def index_key(stream_id: str) -> str:
    """A message's position in an index member: its stream id written so that the members'
    byte order is the ids' order (the milliseconds zero-padded, the sequence number after its
    digit count less one). The Lua above writes the same."""
    ms, seq = stream_id.split("-", 1)
    return f"{ms.zfill(_MS_DIGITS)}-{len(seq) - 1}{seq}"


def id_of_key(key: str) -> str:
    """The stream id of an index member's position (`index_key` undone)."""
    ms, seq = key.split("-", 1)
    return f"{int(ms)}-{seq[1:]}"


@dataclass(frozen=True, slots=True)
class Tokenizer:
    """Turns a text into its search terms: NFKC, casefolded, runs of word characters, each
    cut to `max_length` characters (the same cut for what is stored and what is asked)."""

    max_length: int = 40

    def terms(self, text: str) -> list[str]:
        """The distinct terms of `text`, in their first order."""
        folded = unicodedata.normalize("NFKC", text).casefold()
        return list(dict.fromkeys(word[: self.max_length] for word in _WORD.findall(folded)))


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Messages matching a query, newest first. `next_before`: the id to pass as `before` to
    go on (None: nothing older matches). `scanned`: candidates looked at."""

    terms: list[str]
    messages: list[ChatMessage]
    next_before: str | None
    scanned: int


class SearchIndex:
    """Reads (and, for a deletion, edits) the search index of the conversations; the index is
    written by `ChatLog.append`, in the history's own script."""

    def __init__(self, redis: Redis, keys: ChatKeys, *, tokenizer: Tokenizer | None = None,
                 scan: int = 2_000, batch: int = 1_000, stream_batch: int = 1_000) -> None:
        if scan < 1 or batch < 1 or stream_batch < 1:
            raise ValueError("scan and batch sizes must be positive")
        self._redis = redis
        self.keys = keys
        self.tokenizer = tokenizer or Tokenizer()
        self.scan_budget = scan
        self.batch = batch
        self.stream_batch = stream_batch
        self._forget = redis.register_script(_FORGET)

    @classmethod
    def from_settings(cls, redis: Redis, settings: ChatSettings) -> SearchIndex:
        """The index as the chat's settings size it (`CHAT_SEARCH_*`)."""
        return cls(redis, settings.chat_keys, tokenizer=settings.search_tokenizer,
                   scan=settings.chat_search_scan, batch=settings.chat_search_batch)

    def key_of(self, conversation: Conversation) -> str:
        """The index key of a conversation."""
        return self.keys.search_index(conversation.name)

    async def count(self, conversation: Conversation, term: str) -> int:
        """How many messages hold `term` (a term as `Tokenizer.terms` gives it)."""
        return int(await self._redis.zlexcount(self.key_of(conversation), f"[{term} ", f"({term}!"))

    async def search(self, conversation: Conversation, terms: Sequence[str], limit: int,
                     before: Ref | None = None) -> SearchResult:
        """The newest `limit` messages (older than `before`) holding every one of `terms`, by
        the index; at most `scan_budget` candidates looked at."""
        if not terms or limit < 1:
            raise ValueError("a search needs terms and a positive limit")
        key = self.key_of(conversation)
        terms = list(dict.fromkeys(terms))
        async with self._redis.pipeline(transaction=False) as pipe:
            for term in terms:
                pipe.zlexcount(key, f"[{term} ", f"({term}!")
            counts = [int(n) for n in await pipe.execute()]
        if min(counts) == 0:
            return SearchResult(terms, [], None, 0)
        rarest, *others = [t for _, t in sorted(zip(counts, terms, strict=True))]
        high = f"({rarest}!"
        if before is not None:
            high = f"({rarest} {index_key(f'{before.ms}-{before.seq}')}"
        # The walk works on positions as the index writes them; only the matches become ids.
        matched: list[str] = []
        scanned, last_seen, exhausted = 0, "", False
        while len(matched) < limit and scanned < self.scan_budget:
            want = min(self.batch, self.scan_budget - scanned)
            rows: Any = await self._redis.zrange(key, high, f"[{rarest} ", desc=True, bylex=True,
                                                 offset=0, num=want)
            positions = [text_of(row).split(" ", 1)[1] for row in rows]
            keep = await self._having(key, positions, others)
            for at, (position, kept) in enumerate(zip(positions, keep, strict=True)):
                if kept:
                    matched.append(position)
                    if len(matched) == limit:
                        scanned += at + 1
                        last_seen = position
                        break
            else:
                scanned += len(positions)
                last_seen = positions[-1] if positions else last_seen
            if len(positions) < want and len(matched) < limit:
                exhausted = True
                break
            high = f"({rarest} {last_seen}"
        messages = await self._fetch(conversation, [id_of_key(p) for p in matched])
        next_before = None if exhausted or not last_seen else id_of_key(last_seen)
        return SearchResult(terms, messages, next_before, scanned)

    async def scan(self, conversation: Conversation, terms: Sequence[str], limit: int,
                   before: Ref | None = None) -> SearchResult:
        """The same answer as `search` without the index: the stream read newest first in
        batches, each text tokenized here, up to the whole stream (the baseline the index is
        measured against)."""
        wanted = set(terms)
        high = "+" if before is None else before.last_before()
        matched: list[ChatMessage] = []
        scanned = 0
        while high is not None and len(matched) < limit:
            entries: Any = await self._redis.xrevrange(conversation.key, high, "-", count=self.stream_batch)
            for entry_id, fields in entries:
                scanned += 1
                message = ChatMessage.from_stream(entry_id, fields)
                if message.command != "TAGMSG" and wanted <= set(self.tokenizer.terms(message.text)):
                    matched.append(message)
                    if len(matched) == limit:
                        return SearchResult(list(terms), matched, message.id, scanned)
            if len(entries) < self.stream_batch:
                break
            high = Ref.msgid(text_of(entries[-1][0])).last_before()
        return SearchResult(list(terms), matched, None, scanned)

    async def forget(self, conversation: Conversation, message_id: str) -> int:
        """Take one message out of the index (the message itself stays in the stream): what a
        deletion calls before removing the entry. Returns the members removed (0: not indexed
        or not there). Needs a user that may write the chat's keys (the ircd's)."""
        return int(await self._forget(keys=[conversation.key, self.key_of(conversation)],
                                      args=[message_id]))

    async def _having(self, key: str, positions: list[str], others: Iterable[str]) -> list[bool]:
        """For each candidate position, whether the index holds it under every one of `others`."""
        keep = [True] * len(positions)
        others = list(others)
        if not others or not positions:
            return keep
        async with self._redis.pipeline(transaction=False) as pipe:
            for term in others:
                pipe.zmscore(key, [f"{term} {p}" for p in positions])
            for scores in await pipe.execute():
                keep = [k and s is not None for k, s in zip(keep, scores, strict=True)]
        return keep

    async def _fetch(self, conversation: Conversation, ids: list[str]) -> list[ChatMessage]:
        """The messages of `ids` as the stream holds them (one trimmed meanwhile is left out)."""
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.xrange(conversation.key, message_id, message_id)
            found: list[Any] = await pipe.execute()
        messages = [ChatMessage.from_stream(*entries[0]) for entries in found if entries]
        return sorted(messages, key=lambda m: id_tuple(m.id), reverse=True)
