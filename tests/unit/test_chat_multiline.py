"""A multiline message (IRCv3 draft/multiline) in the chat's records, on fakeredis: one stream
entry with its lines, the live payload and the events carrying them, search on its text, the
HTTP history's record; and the hostile payloads and entries refused or ignored."""

from __future__ import annotations

import json

import pytest

from apps.chat.chatlog import ChatLog
from apps.chat.conversations import ChatMessage, MalformedChatMessage, MessageLine, joined, lines_from
from apps.chat.events import ChannelEvent, DirectEvent, Line, MalformedEvent
from apps.chat.keys import ChatKeys
from apps.chat.search import SearchIndex
from tests.unit.test_chatlog import _next_message
from tests.unit.test_messages import GOOD, join, make_app

KEYS = ChatKeys()
LINES = (MessageLine("hello"), MessageLine(""), MessageLine("how is "), MessageLine("every", concat=True),
         MessageLine("one?", concat=True))
TEXT = "hello\n\nhow is everyone?"
AS_JSON = [{"text": "hello"}, {"text": ""}, {"text": "how is "}, {"text": "every", "concat": True},
           {"text": "one?", "concat": True}]


def multiline(target: str = "#Chan") -> ChatMessage:
    return ChatMessage(command="PRIVMSG", source="alice!al@host", target=target, text=joined(LINES),
                       lines=LINES, tags={"+draft/reply": "1-0"}, origin="ircd-1")


def test_the_lines_join_with_line_feeds_and_concat_lines_without():
    assert joined(LINES) == TEXT
    assert joined([MessageLine("a", concat=True), MessageLine("b")]) == "a\nb"  # nothing before the first
    assert joined([]) == ""


async def test_a_multiline_message_is_one_entry_with_its_lines_and_one_payload(redis):
    log = ChatLog(redis, KEYS)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("canaduck:chat:{#chan}:live")
    stored = await log.append_channel("#Chan", multiline())
    entries = await redis.xrange("canaduck:chat:{#chan}:log")
    assert len(entries) == 1 and entries[0][0].decode() == stored.id
    fields = entries[0][1]
    assert fields[b"text"].decode() == TEXT
    assert json.loads(fields[b"lines"]) == AS_JSON
    payload = json.loads((await _next_message(pubsub))["data"])
    assert list(payload) == ["id", "time", "command", "from", "account", "target", "text", "tags", "lines",
                             "origin"]
    received = ChatMessage.from_json(json.dumps(payload))
    assert received.lines == LINES and received.text == TEXT and received.id == stored.id
    [read] = await log.latest(log.channel("#chan"), 10)
    assert read.lines == LINES and read.text == TEXT and read.id == stored.id


async def test_a_one_line_message_keeps_its_record_as_it_was(redis):
    log = ChatLog(redis, KEYS)
    stored = await log.append_channel("#c", ChatMessage("PRIVMSG", "a!b@c", "#c", "plain"))
    [(_, fields)] = await redis.xrange("canaduck:chat:{#c}:log")
    assert b"lines" not in fields and "lines" not in stored.to_dict() and stored.lines == ()


async def test_search_finds_words_of_any_line_and_words_joined_across_a_concat(redis):
    log = ChatLog(redis, KEYS)
    stored = await log.append_channel("#Chan", multiline())
    await log.append_channel("#Chan", ChatMessage("PRIVMSG", "b!b@c", "#Chan", "unrelated"))
    index = SearchIndex(redis, KEYS)
    for terms in (["hello"], ["everyone"], ["how", "hello"]):
        found = await index.search(log.channel("#Chan"), terms, 10)
        assert [m.id for m in found.messages] == [stored.id], terms
        assert found.messages[0].lines == LINES
    assert (await index.search(log.channel("#Chan"), ["every"], 10)).messages == []  # one word, joined


@pytest.mark.parametrize(("lines", "problem"), [
    ("not a list", "not a list"), ([{"text": 1}], "text"), (["x"], "text"),
    ([{"text": "a", "concat": "yes"}], "concat"),
    ([{"text": "a"}, {"text": "b"}], "do not make the text"),
])
def test_a_live_payload_with_bad_lines_is_malformed(lines, problem):
    payload = {"command": "PRIVMSG", "from": "a!b@c", "target": "#c", "text": "a b", "lines": lines}
    with pytest.raises(MalformedChatMessage, match=problem):
        ChatMessage.from_json(json.dumps(payload))


@pytest.mark.parametrize("lines", ["[not json", '{"text": "x"}', '[{"text": "other"}]', '[{"text": 3}]'])
async def test_a_hand_written_entry_with_bad_lines_reads_as_a_one_line_message(redis, lines):
    await redis.xadd("canaduck:chat:{#c}:log", {"command": "PRIVMSG", "text": "by hand", "lines": lines})
    log = ChatLog(redis, KEYS)
    [message] = await log.latest(log.channel("#c"), 5)
    assert message.text == "by hand" and message.lines == ()


def test_an_event_carries_the_lines_of_a_multiline_line():
    line = Line("a!b@c", "PRIVMSG", ["@#c", TEXT], {"msgid": "x"}, lines=LINES)
    event = DirectEvent("ircd-1", ("u1",), line)
    decoded = DirectEvent.from_json(event.to_json())
    assert decoded.payload == line
    assert ChannelEvent.from_json(ChannelEvent("ircd-1", "#c", line).to_json()).line.lines == LINES


@pytest.mark.parametrize(("line", "problem"), [
    ({"command": "PRIVMSG", "params": ["#c", "x"], "lines": [{"text": 2}]}, "text"),
    ({"command": "PRIVMSG", "params": ["#c", "x"], "lines": {"text": "x"}}, "not a list"),
    ({"command": "PRIVMSG", "params": [], "lines": [{"text": "x"}]}, "target"),
])
def test_an_event_with_bad_lines_is_malformed(line, problem):
    with pytest.raises(MalformedEvent, match=problem):
        ChannelEvent.from_json(json.dumps({"v": 1, "origin": "o", "channel": "#c", "line": line}))


def test_lines_from_takes_only_a_list_of_texts():
    assert lines_from([]) == ()
    both = (MessageLine("a"), MessageLine("b", True))
    assert lines_from([{"text": "a"}, {"text": "b", "concat": True}]) == both
    with pytest.raises(ValueError):
        lines_from(None)


async def test_the_http_history_gives_the_text_with_its_line_breaks_and_the_lines(redis, started):
    await redis.hset(KEYS.channel("#chan"), mapping={"name": "#Chan", "modes": "nt"})
    await join(redis, "#Chan", "alice-conn", "alice")
    stored = await ChatLog(redis, KEYS).append_channel("#Chan", multiline())
    async with started(make_app(redis)) as client:
        response = await client.get("/api/messages/%23chan", headers=GOOD)
        assert response.status_code == 200
        [record] = (await response.get_json())["messages"]
        assert record["id"] == stored.id and record["text"] == TEXT
        assert record["lines"] == AS_JSON
        assert "origin" not in record
        found = await client.get("/api/messages/search/%23chan?q=everyone", headers=GOOD)
        assert [m["text"] for m in (await found.get_json())["messages"]] == [TEXT]
