"""The chat log (apps/chat/chatlog.py) on fakeredis: append + fan-out, and every history query."""

from __future__ import annotations

import asyncio
import json

import pytest

from apps.chat.chatlog import ChatLog
from apps.chat.conversations import (
    ChatMessage,
    InvalidRef,
    MalformedChatMessage,
    Ref,
    is_guest,
    party,
    published_by,
)
from apps.chat.keys import ChatKeys
from apps.chat.settings import ChatSettings

KEYS = ChatKeys()


def said(text: str, target: str = "#Chan", **fields) -> ChatMessage:
    return ChatMessage(command="PRIVMSG", source="alice!al@host", target=target, text=text, **fields)


@pytest.fixture
def log(redis) -> ChatLog:
    return ChatLog(redis, KEYS, maxlen=1000, max_limit=50)


async def fill(log: ChatLog, count: int, channel: str = "#Chan") -> list[ChatMessage]:
    return [await log.append_channel(channel, said(f"m{i}", channel)) for i in range(count)]


def texts(messages: list[ChatMessage]) -> list[str]:
    return [m.text for m in messages]


async def test_append_stores_the_record_and_returns_it_with_a_stream_id(log, redis):
    stored = await log.append_channel("#Chan", said("hello", account="alice", tags={"+draft/reply": "1-0"}))
    assert stored.text == "hello" and stored.id
    assert stored.time_ms == int(stored.id.split("-")[0])
    entries = await redis.xrange("canaduck:chat:{#chan}:log")
    assert len(entries) == 1
    entry_id, fields = entries[0]
    assert entry_id.decode() == stored.id
    assert fields == {b"command": b"PRIVMSG", b"from": b"alice!al@host", b"account": b"alice",
                      b"target": b"#Chan", b"text": b"hello", b"tags": b'{"+draft/reply":"1-0"}',
                      b"terms": b"hello"}  # its search terms (apps/chat/search.py)


async def test_a_message_without_tags_stores_no_tags_field(log, redis):
    await log.append_channel("#c", said("plain", "#c"))
    [(_, fields)] = await redis.xrange("canaduck:chat:{#c}:log")
    assert b"tags" not in fields


async def test_append_publishes_the_record_with_its_id_on_the_live_channel(log, redis):
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("canaduck:chat:{#chan}:live")
    stored = await log.append_channel("#CHAN", said("héllo ☃", "#CHAN"))
    message = await _next_message(pubsub)
    payload = json.loads(message["data"])
    assert list(payload) == ["id", "time", "command", "from", "account", "target", "text", "tags"]
    assert payload["id"] == stored.id and payload["time"] == stored.time_ms
    assert payload["text"] == "héllo ☃" and payload["target"] == "#CHAN"
    assert ChatMessage.from_json(message["data"]) == stored
    await pubsub.aclose()


async def test_a_live_payload_ends_as_published_by_says_for_its_replica_only(log, redis):
    # Each replica passes over its own messages by this ending alone (apps/ircd/router.py).
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("canaduck:chat:{#c}:live")
    await log.append_channel("#c", said("hi", "#c", origin="ircd-1"))
    await log.append_channel("#c", said("hi", "#c", origin="ircd-10"))
    await log.append_channel("#c", said("hi", "#c"))
    payloads = [(await _next_message(pubsub))["data"] for _ in range(3)]
    assert [payload.endswith(published_by("ircd-1")) for payload in payloads] == [True, False, False]
    assert payloads[1].endswith(published_by("ircd-10"))
    assert ChatMessage.from_json(payloads[0]).origin == "ircd-1"
    await pubsub.aclose()


async def test_append_publishes_where_told_and_on_several_channels(log, redis):
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("a", "b", "canaduck:chat:{#c}:live")
    await log.append_channel("#c", said("x", "#c"), publish_to=["a", "b"])
    got = {(await _next_message(pubsub))["channel"] for _ in range(2)}
    assert got == {b"a", b"b"}
    assert await pubsub.get_message(timeout=0.05) is None  # not the default channel
    await pubsub.aclose()


async def test_ids_increase_and_channel_names_fold(log):
    stored = [await log.append_channel(name, said(name, name)) for name in ("#Foo", "#FOO", "#foo")]
    ids = [m.id for m in stored]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == 3
    assert texts(await log.latest(log.channel("#fOo"), 10)) == ["#Foo", "#FOO", "#foo"]


async def test_only_messages_and_events_are_stored(log):
    with pytest.raises(ValueError, match="not a stored command"):
        await log.append_channel("#c", ChatMessage("WHOIS", "a!b@c", "#c"))
    with pytest.raises(ValueError, match="empty channel"):
        await log.append_channel("", said("x", ""))
    with pytest.raises(ValueError, match="not an event"):
        await log.append_events(["#c"], said("x", "#c"))


def event(command: str, *params: str, source: str = "bob!b@host") -> ChatMessage:
    return ChatMessage(command=command, source=source, target="", text=params[-1] if params else "",
                       params=params)


async def test_events_are_kept_in_each_channel_and_read_only_by_who_asks_for_them(log, redis):
    await log.append_channel("#a", said("before", "#a"))
    [join] = await log.append_events(["#A"], event("JOIN", "#A", "bob", "Bob B"))
    quits = await log.append_events(["#a", "#b"], event("QUIT", "gone"))
    await log.append_channel("#a", said("after", "#a"))
    assert join.target == "#A" and [q.target for q in quits] == ["#a", "#b"]
    assert all(q.id for q in quits) and quits[0].id != join.id  # one entry, its own id, in each stream
    conv = log.channel("#a")
    assert texts(await log.latest(conv, 10)) == ["before", "after"]
    every = await log.latest(conv, 10, events=True)
    assert [m.command for m in every] == ["PRIVMSG", "JOIN", "QUIT", "PRIVMSG"]
    assert every[1].params == ("#A", "bob", "Bob B") and every[2].text == "gone"
    assert [m.command for m in await log.latest(log.channel("#b"), 10, events=True)] == ["QUIT"]
    # Nothing an event holds is searchable: it has no terms.
    [(_, fields)] = await redis.xrange("canaduck:chat:{#b}:log")
    assert b"terms" not in fields and json.loads(fields[b"params"]) == ["gone"]


async def test_a_reader_without_events_gets_its_count_of_messages_past_many_events(log):
    log.events_page = 4  # several pages of events to read past
    first = await log.append_channel("#c", said("old", "#c"))
    for i in range(11):
        await log.append_events(["#c"], event("JOIN", "#c", source=f"n{i}!u@h"))
    last = await log.append_channel("#c", said("new", "#c"))
    conv = log.channel("#c")
    assert texts(await log.latest(conv, 2)) == ["old", "new"]
    assert texts(await log.after(conv, Ref.msgid(first.id), 5)) == ["new"]
    assert texts(await log.before(conv, Ref.msgid(last.id), 5)) == ["old"]
    assert texts(await log.between(conv, Ref.time(0), Ref.msgid(last.id), 5)) == ["old"]
    assert texts(await log.between(conv, Ref.msgid(last.id), Ref.time(0), 5)) == ["old"]
    assert texts(await log.around(conv, Ref.msgid(last.id), 3)) == ["old", "new"]
    assert len(await log.latest(conv, 5, events=True)) == 5
    assert await log.last_id(conv) == last.id
    await log.append_events(["#c"], event("PART", "#c"))
    assert await log.last_id(conv) == last.id  # the last message's, not the last event's


async def test_latest_before_after_are_oldest_first_and_exclusive(log):
    msgs = await fill(log, 10)
    conv = log.channel("#chan")
    assert texts(await log.latest(conv, 3)) == ["m7", "m8", "m9"]
    assert texts(await log.latest(conv, 100)) == texts(msgs)
    assert texts(await log.latest(conv, 20, after=Ref.msgid(msgs[4].id))) == ["m5", "m6", "m7", "m8", "m9"]
    assert texts(await log.latest(conv, 2, after=Ref.msgid(msgs[4].id))) == ["m8", "m9"]
    assert texts(await log.before(conv, Ref.msgid(msgs[6].id), 20)) == texts(msgs[:6])
    assert texts(await log.before(conv, Ref.msgid(msgs[6].id), 2)) == ["m4", "m5"]
    assert texts(await log.after(conv, Ref.msgid(msgs[3].id), 20)) == texts(msgs[4:])
    assert texts(await log.after(conv, Ref.msgid(msgs[3].id), 3)) == ["m4", "m5", "m6"]
    assert await log.after(conv, Ref.msgid(msgs[-1].id), 5) == []
    assert await log.before(conv, Ref.msgid(msgs[0].id), 5) == []


async def test_between_counts_from_the_first_reference_both_ways(log):
    msgs = await fill(log, 10)
    conv = log.channel("#chan")
    first, last = Ref.msgid(msgs[0].id), Ref.msgid(msgs[-1].id)
    assert texts(await log.between(conv, first, last, 50)) == texts(msgs[1:-1])
    assert texts(await log.between(conv, last, first, 50)) == texts(msgs[1:-1])
    assert texts(await log.between(conv, first, last, 3)) == ["m1", "m2", "m3"]
    assert texts(await log.between(conv, last, first, 3)) == ["m6", "m7", "m8"]
    assert await log.between(conv, first, first, 5) == []


async def test_around_centres_on_the_message(log):
    msgs = await fill(log, 10)
    conv = log.channel("#chan")
    assert texts(await log.around(conv, Ref.msgid(msgs[7].id), 1)) == ["m7"]
    assert texts(await log.around(conv, Ref.msgid(msgs[7].id), 3)) == ["m6", "m7", "m8"]
    assert texts(await log.around(conv, Ref.msgid(msgs[1].id), 5)) == ["m0", "m1", "m2", "m3", "m4"]


async def test_time_references_exclude_their_own_millisecond(redis):
    # Ids are written by hand so that the times are known: three messages in ms 1000.
    log = ChatLog(redis, KEYS)
    key = "canaduck:chat:{#t}:log"
    for ms, seq, text in [(900, 0, "a"), (1000, 0, "b"), (1000, 1, "c"), (1100, 0, "d")]:
        await redis.xadd(key, said(text, "#t").record() | {"tags": "{}"}, id=f"{ms}-{seq}")
    conv = log.channel("#t")
    at = Ref.time(1000)
    assert texts(await log.before(conv, at, 10)) == ["a"]
    assert texts(await log.after(conv, at, 10)) == ["d"]
    assert texts(await log.latest(conv, 10, after=at)) == ["d"]
    assert texts(await log.between(conv, Ref.time(900), Ref.time(1100), 10)) == ["b", "c"]
    assert texts(await log.between(conv, Ref.time(1100), Ref.time(900), 1)) == ["c"]
    assert "b" in texts(await log.around(conv, at, 3))
    assert await log.before(conv, Ref.time(0), 10) == []


async def test_limits_are_capped_and_must_be_positive(log):
    await fill(log, 60)
    conv = log.channel("#chan")
    assert len(await log.latest(conv, 1000)) == 50
    for bad in (0, -1):
        with pytest.raises(ValueError, match="limit"):
            await log.latest(conv, bad)


async def test_an_unknown_conversation_is_empty(log):
    conv = log.channel("#nobody")
    assert await log.latest(conv, 10) == []
    assert await log.last_id(conv) is None
    assert await log.around(conv, Ref.msgid("1-0"), 5) == []


async def test_last_id(log):
    msgs = await fill(log, 3)
    assert await log.last_id(log.channel("#chan")) == msgs[-1].id


@pytest.mark.parametrize("text", ["", "abc", "1", "1-", "-1", "1-2-3", "01x-0", "1-0 ", "1" * 21 + "-0",
                                  f"{2**64}-0", f"0-{2**64}"])
def test_bad_message_ids_are_refused(text):
    with pytest.raises(InvalidRef):
        Ref.msgid(text)


def test_references_at_the_ends_of_the_id_space():
    top = Ref.msgid(f"{2**64 - 1}-{2**64 - 1}")
    assert top.first_after() is None and top.last_before() == f"{2**64 - 1}-{2**64 - 2}"
    assert Ref.msgid("0-0").last_before() is None
    assert Ref.msgid(f"5-{2**64 - 1}").first_after() == "6-0"
    assert Ref.msgid("5-0").last_before() == f"4-{2**64 - 1}"
    with pytest.raises(InvalidRef):
        Ref.time(-1)


def test_a_party_is_an_account_or_a_guests_connection_never_a_nick():
    assert party("c0ffee", "BobAccount") == "bobaccount"
    assert party("c0ffee") == "~c0ffee" and is_guest(party("c0ffee"))
    assert party("c0ffee") != party("other-connection")  # the next holder of a nick is not it
    assert not is_guest(party("c0ffee", "bob"))
    with pytest.raises(ValueError):
        party("")


async def test_private_conversations_are_one_stream_whoever_writes(log, redis):
    alice, bob = party("a1", "alice"), party("b1")
    await log.append_private(alice, bob, said("hi bob", "Bob"), publish_to=["canaduck:chat:{bob}:live"])
    await log.append_private(bob, alice, said("hi alice", "Alice"))
    assert await redis.exists("canaduck:chat:{alice,~b1}:log")
    assert texts(await log.latest(log.private(bob, alice), 10)) == ["hi bob", "hi alice"]


async def test_a_conversation_with_a_guest_expires_and_one_between_accounts_does_not(redis):
    log = ChatLog(redis, ChatKeys(), guest_ttl=60)
    alice, bob, guest = party("a1", "alice"), party("b1", "bob"), party("g1")
    await log.append_private(alice, bob, said("kept", "bob"))
    await log.append_private(alice, guest, said("fleeting", "guest", party=alice))
    assert await redis.pttl(log.private(alice, bob).key) == -1
    assert 0 < await redis.pttl(log.private(alice, guest).key) <= 60_000
    assert 0 < await redis.pttl("canaduck:chat:{~g1}:dms") <= 60_000
    assert await redis.pttl("canaduck:chat:{alice}:dms") == -1


async def test_targets_lists_dm_partners_by_last_message(log):
    me = party("m1", "me")
    stored = {}
    for other in ("zed", "amy", "zed"):
        stored[other] = await log.append_private(me, party("x", other), said("x", other))
        await asyncio.sleep(0.002)  # distinct milliseconds
    rows = await log.targets(me, 0, 2**62, 10)
    assert rows == [("amy", stored["amy"].time_ms), ("zed", stored["zed"].time_ms)]
    assert await log.targets(me, stored["amy"].time_ms, 2**62, 10) == [("zed", stored["zed"].time_ms)]
    assert [r[0] for r in await log.targets(me, 2**62, 0, 1)] == ["amy"]
    assert await log.targets(party("x", "amy"), 0, 2**62, 10) == [(me, stored["amy"].time_ms)]
    assert await log.targets(me, 0, stored["amy"].time_ms, 10) == []


async def test_targets_names_a_guest_by_its_nick_on_either_side_and_forgets_an_expired_one(log, redis):
    me, guest = party("m1", "me"), party("g1")
    sent = await log.append_private(me, guest, ChatMessage("PRIVMSG", "me!~me@h", "Quacker", "hi",
                                                           account="me", party=me))
    assert await log.targets(me, 0, 2**62, 10) == [("Quacker", sent.time_ms)]
    answer = await log.append_private(guest, me, ChatMessage("PRIVMSG", "Quacker2!~q@h", "me", "yo",
                                                             party=guest))
    assert await log.targets(me, 0, 2**62, 10) == [("Quacker2", answer.time_ms)]
    assert await log.targets(guest, 0, 2**62, 10) == [("me", answer.time_ms)]
    await redis.delete(log.private(me, guest).key)  # what its expiry does
    assert await log.targets(me, 0, 2**62, 10) == []


async def test_a_message_to_oneself_is_indexed_once(log, redis):
    me = party("m1")
    await log.append_private(me, me, said("note to self", "me"))
    assert await redis.zcard("canaduck:chat:{~m1}:dms") == 1
    assert texts(await log.latest(log.private(me, me), 5)) == ["note to self"]


async def test_a_hand_written_entry_does_not_break_reads(log, redis):
    await redis.xadd("canaduck:chat:{#c}:log", {"text": "by hand", "tags": "[not an object"})
    [message] = await log.latest(log.channel("#c"), 5)
    assert message.text == "by hand" and message.tags == {} and message.command == ""


@pytest.mark.parametrize(("raw", "problem"), [
    (b"{nope", "not JSON"), (b"[]", "not a JSON object"), (b'{"command":"PRIVMSG"}', "from"),
    (b'{"command":"PRIVMSG","from":"a","target":"#c","tags":[]}', "tags"),
    (b'{"command":"PRIVMSG","from":"a","target":"#c","id":"x"}', "id"),
    # What json.loads would take, and no reply could carry: a lone surrogate, and NaN.
    (b'{"command":"PRIVMSG","from":"a","target":"#c","text":"\\ud800"}', "not JSON"),
    (b'{"command":"PRIVMSG","from":"a","target":"#c","time":NaN}', "not JSON"),
    (b'{"command":"PRIVMSG","from":"a","target":"#c","text":"\xff"}', "not JSON"),
])
def test_malformed_live_payloads_are_refused_by_name(raw, problem):
    with pytest.raises(MalformedChatMessage, match=problem):
        ChatMessage.from_json(raw)


def test_settings_have_bounded_history_by_default():
    settings = ChatSettings()
    assert settings.chat_history_max == 10_000 and settings.chat_history_limit == 100
    with pytest.raises(ValueError):
        ChatSettings(chat_history_max=0)


async def _next_message(pubsub) -> dict:
    for _ in range(100):
        message = await pubsub.get_message(timeout=0.05)
        if message is not None:
            return message
    raise AssertionError("nothing published")


async def test_an_events_bad_params_are_ignored_in_the_stream_and_refused_on_the_bus(log, redis):
    for params in ("[1, 2", '["ok", 3]', '{"a": 1}'):
        await redis.xadd("canaduck:chat:{#c}:log", {"command": "JOIN", "from": "a!b@c", "params": params})
    assert [m.params for m in await log.latest(log.channel("#c"), 5, events=True)] == [(), (), ()]
    with pytest.raises(MalformedChatMessage, match="params"):
        ChatMessage.from_json('{"command": "JOIN", "from": "a!b@c", "target": "#c", "params": ["#c", 1]}')
