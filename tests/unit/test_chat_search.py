"""The search index (apps/chat/search.py) on fakeredis: written by the append script, trimmed
and expired with the stream, queried by the index and by the baseline scan alike."""

from __future__ import annotations

import pytest

from apps.chat.chatlog import ChatLog
from apps.chat.conversations import ChatMessage, Ref, party
from apps.chat.keys import ChatKeys
from apps.chat.search import INDEX, SearchIndex, Tokenizer, id_of_key, index_key

KEYS = ChatKeys()


def said(text: str, target: str = "#Chan", command: str = "PRIVMSG") -> ChatMessage:
    return ChatMessage(command=command, source="alice!al@host", target=target, text=text)


@pytest.fixture
def log(redis) -> ChatLog:
    return ChatLog(redis, KEYS, maxlen=1000, max_limit=50)


@pytest.fixture
def index(redis) -> SearchIndex:
    return SearchIndex(redis, KEYS, batch=3)


async def both(index: SearchIndex, log: ChatLog, query: str, limit: int = 10, before: Ref | None = None,
               conversation: str = "#chan") -> list[str]:
    """The texts found by the index, checked against the baseline scan's."""
    conv = log.channel(conversation)
    terms = index.tokenizer.terms(query)
    by_index = await index.search(conv, terms, limit, before)
    by_scan = await index.scan(conv, terms, limit, before)
    assert [m.id for m in by_index.messages] == [m.id for m in by_scan.messages]
    return [m.text for m in by_index.messages]


def test_terms_are_casefolded_unicode_words():
    tokenizer = Tokenizer(max_length=8)
    assert tokenizer.terms("Hello, WORLD! hello") == ["hello", "world"]
    wide = "\uff21\uff22\uff23"  # full-width ABC: NFKC makes it plain
    assert tokenizer.terms(f"Straße {wide} café x_y 42") == ["strasse", "abc", "café", "x_y", "42"]
    assert tokenizer.terms("Привет, мир; 東京") == ["привет", "мир", "東京"]
    assert tokenizer.terms("antidisestablishment") == ["antidise"]  # cut, stored and asked alike
    assert tokenizer.terms(" ... !!! ") == []


@pytest.mark.parametrize("stream_id", ["1795347671006-0", "1-0", "1795347671006-10", "12-123456789"])
def test_an_index_key_keeps_the_order_of_ids(stream_id):
    assert id_of_key(index_key(stream_id)) == stream_id
    ids = ["5-0", "5-9", "5-10", "5-100", "6-0", "10-0", "1795347671006-2"]
    assert sorted(ids, key=index_key) == ids


async def test_matches_whole_words_newest_first(log, index):
    for text in ("the duck swims", "a DUCK, quacking", "ducks are many", "nothing here", "Duck!"):
        await log.append_channel("#Chan", said(text))
    assert await both(index, log, "duck") == ["Duck!", "a DUCK, quacking", "the duck swims"]
    assert await both(index, log, "ducks") == ["ducks are many"]  # whole words: no prefix
    assert await both(index, log, "duc") == []
    assert await both(index, log, "DUCK swims") == ["the duck swims"]  # every word
    assert await both(index, log, "duck goose") == []


async def test_limit_and_paging_with_before(log, index):
    stored = [await log.append_channel("#Chan", said(f"word {i}")) for i in range(10)]
    conv = log.channel("#chan")
    first = await index.search(conv, ["word"], 4)
    assert [m.text for m in first.messages] == ["word 9", "word 8", "word 7", "word 6"]
    assert first.next_before == stored[6].id
    second = await index.search(conv, ["word"], 4, Ref.msgid(first.next_before))
    assert [m.text for m in second.messages] == ["word 5", "word 4", "word 3", "word 2"]
    last = await index.search(conv, ["word"], 4, Ref.msgid(stored[2].id))
    assert [m.text for m in last.messages] == ["word 1", "word 0"] and last.next_before is None
    assert await both(index, log, "word", 3, Ref.msgid(stored[5].id)) == ["word 4", "word 3", "word 2"]


async def test_the_rarest_word_leads_and_the_scan_budget_bounds_a_search(redis, log):
    for i in range(20):
        await log.append_channel("#Chan", said(f"common {'rare' if i == 3 else ''}"))
    conv = log.channel("#chan")
    index = SearchIndex(redis, KEYS, scan=5, batch=2)
    found = await index.search(conv, ["common", "rare"], 10)
    assert [m.text for m in found.messages] == ["common rare"] and found.scanned == 1
    # "common" alone with a budget of 5 candidates: 5 found, and where to go on.
    bounded = await index.search(conv, ["common", "common"], 10)
    assert len(bounded.messages) == 5 and bounded.scanned == 5 and bounded.next_before is not None
    missing = await index.search(conv, ["common", "absent"], 10)
    assert missing.messages == [] and missing.scanned == 0 and missing.next_before is None


async def test_tagmsg_is_not_indexed_and_the_stream_keeps_the_terms(log, redis):
    stored = await log.append_channel("#Chan", said("Hello hello World"))
    await log.append_channel("#Chan", said("", command="TAGMSG"))
    entries = await redis.xrange("canaduck:chat:{#chan}:log")
    assert entries[0][1][b"terms"] == b"hello world" and b"terms" not in entries[1][1]
    members = await redis.zrange("canaduck:chat:{#chan}:search", 0, -1)
    assert members == [f"hello {index_key(stored.id)}".encode(), f"world {index_key(stored.id)}".encode()]
    assert (await log.latest(log.channel("#chan"), 5))[0].text == "Hello hello World"


async def test_trimming_the_stream_trims_the_index(redis):
    log = ChatLog(redis, KEYS, maxlen=3)
    index = SearchIndex(redis, KEYS)
    for i in range(6):
        await log.append_channel("#Chan", said(f"word w{i}"))
    assert await redis.xlen("canaduck:chat:{#chan}:log") == 3
    conv = log.channel("#chan")
    assert await index.count(conv, "word") == 3
    assert await index.count(conv, "w0") == 0 and await index.count(conv, "w5") == 1
    assert await redis.zcard("canaduck:chat:{#chan}:search") == 6


async def test_a_guest_conversation_index_expires_with_it(redis):
    log = ChatLog(redis, KEYS, guest_ttl=60)
    alice, guest = party("c1", "alice"), party("0badc0de")
    await log.append_private(alice, guest, said("secret plans", "guest"))
    name = ",".join(sorted((alice, guest)))
    stream_ttl = await redis.pttl(f"canaduck:chat:{{{name}}}:log")
    index_ttl = await redis.pttl(f"canaduck:chat:{{{name}}}:search")
    assert 0 < stream_ttl <= 60_000 and 0 < index_ttl <= 60_000
    await log.append_private(alice, "bob", said("kept plans", "bob"))
    assert await redis.pttl("canaduck:chat:{alice,bob}:search") == -1


async def test_forget_takes_one_message_out_of_the_index(log, index):
    stored = [await log.append_channel("#Chan", said(f"duck {i}")) for i in range(3)]
    conv = log.channel("#chan")
    assert await index.forget(conv, stored[1].id) == 2
    assert await index.forget(conv, stored[1].id) == 0  # once only
    assert await index.forget(conv, "1-0") == 0  # not there
    found = await index.search(conv, ["duck"], 10)
    assert [m.id for m in found.messages] == [stored[2].id, stored[0].id]
    assert len(await log.latest(conv, 10)) == 3  # the stream itself is left to the caller


async def test_entries_from_before_the_index_are_found_by_the_scan_only(log, index, redis):
    await redis.xadd("canaduck:chat:{#chan}:log", {"command": "PRIVMSG", "from": "a!b@c", "target": "#chan",
                                                   "text": "old duck"})
    conv = log.channel("#chan")
    assert (await index.search(conv, ["duck"], 5)).messages == []
    assert [m.text for m in (await index.scan(conv, ["duck"], 5)).messages] == ["old duck"]
    await log.append_channel("#Chan", said("new"))  # trimming such an entry is harmless


@pytest.mark.parametrize("stream_id", ["1795347671006-0", "1795347671006-12", "7-1234567", "42-9"])
async def test_the_script_writes_the_positions_python_reads(redis, stream_id):
    script = INDEX + "index(ARGV[1], ARGV[2]) return redis.call('ZRANGE', KEYS[2], 0, -1)"
    members = await redis.eval(script, 2, "log", "index", stream_id, "duck pond")
    assert members == [f"duck {index_key(stream_id)}".encode(), f"pond {index_key(stream_id)}".encode()]


async def test_a_redacted_message_leaves_the_history_and_the_index_together(log, index, redis):
    kept = await log.append_channel("#Chan", said("duck kept"))
    gone = await log.append_channel("#Chan", said("duck redacted"))
    conv = log.channel("#chan")
    assert await log.remove(conv, gone.id) is True
    assert await both(index, log, "duck") == ["duck kept"]
    assert await both(index, log, "redacted") == []
    assert not await redis.zrangebylex(KEYS.search_index("#chan"), "[redacted ", "[redacted \xff")
    assert await log.remove(conv, gone.id) is False  # once only
    assert [m.id for m in (await index.search(conv, ["kept"], 5)).messages] == [kept.id]
