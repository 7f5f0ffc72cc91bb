"""The chat log against the real server, logged in as the ircd and the messages service.

What fakeredis cannot show: trimming with the search index, the Lua script under the ircd's ACL
user, and the read-only key permission of the messages service (which may search).
"""

from __future__ import annotations

import asyncio
import json

import pytest

import redis
from apps.chat.chatlog import ChatLog
from apps.chat.conversations import ChatMessage, party
from apps.chat.keys import ChatKeys
from apps.chat.search import SearchIndex
from apps.kit.pubsub import open_pubsub

KEYS = ChatKeys()


@pytest.fixture
async def as_ircd(redis_server, admin):
    client = redis_server.async_client("ircd")
    yield client
    await client.aclose()


@pytest.fixture
async def as_messages(redis_server, admin):
    client = redis_server.async_client("messages")
    yield client
    await client.aclose()


def said(text: str, target: str = "#room") -> ChatMessage:
    return ChatMessage("PRIVMSG", "alice!al@host", target, text, account="alice")


@pytest.mark.cluster
async def test_append_and_fan_out_as_the_ircd_user(as_ircd):
    log = ChatLog(as_ircd, KEYS)
    pubsub = open_pubsub(as_ircd, ignore_subscribe_messages=True)
    await pubsub.subscribe(log.channel_live("#Room"))
    stored = await log.append_channel("#Room", said("bonjour"))
    received = None
    for _ in range(100):
        received = await pubsub.get_message(timeout=0.05)
        if received:
            break
    assert received is not None
    payload = json.loads(received["data"])
    assert payload["id"] == stored.id and payload["text"] == "bonjour"
    assert [m.id for m in await log.latest(log.channel("#room"), 5)] == [stored.id]
    await pubsub.aclose()


async def test_a_stream_and_its_index_are_trimmed_to_their_bound(as_ircd, as_messages, admin):
    log = ChatLog(as_ircd, KEYS, maxlen=150)
    for i in range(1000):
        await log.append_channel("#busy", said(f"m{i} busy", "#busy"))
    assert admin.xlen("canaduck:chat:{#busy}:log") == 150
    newest = await log.latest(log.channel("#busy"), 1)
    assert newest[0].text == "m999 busy"
    # Each trimmed message took its words out of the index in the same script.
    assert admin.zcard("canaduck:chat:{#busy}:search") == 300
    index = SearchIndex(as_messages, KEYS)
    conv = log.channel("#busy")
    assert await index.count(conv, "busy") == 150 and await index.count(conv, "m849") == 0
    found = await index.search(conv, ["busy"], 3)
    assert [m.text for m in found.messages] == ["m999 busy", "m998 busy", "m997 busy"]


@pytest.mark.cluster
async def test_search_as_the_messages_user_and_forget_as_the_ircds(as_ircd, as_messages):
    log = ChatLog(as_ircd, KEYS)
    stored = [await log.append_channel("#Search", said(text, "#Search"))
              for text in ("Straße closed", "the street is open", "STRASSE again")]
    reader = SearchIndex(as_messages, KEYS)
    conv = log.channel("#search")
    found = await reader.search(conv, reader.tokenizer.terms("strasse"), 10)
    assert [m.id for m in found.messages] == [stored[2].id, stored[0].id]
    scanned = await reader.scan(conv, ["strasse"], 10)
    assert [m.id for m in scanned.messages] == [stored[2].id, stored[0].id]
    with pytest.raises(redis.exceptions.NoPermissionError):
        await reader.forget(conv, stored[0].id)  # the reader cannot edit the index
    assert await SearchIndex(as_ircd, KEYS).forget(conv, stored[0].id) == 2
    assert [m.id for m in (await reader.search(conv, ["strasse"], 10)).messages] == [stored[2].id]


async def test_the_script_survives_a_script_flush(as_ircd, admin):
    log = ChatLog(as_ircd, KEYS)
    await log.append_channel("#c", said("before", "#c"))
    admin.script_flush()
    await log.append_channel("#c", said("after", "#c"))  # NOSCRIPT: loaded again
    assert [m.text for m in await log.latest(log.channel("#c"), 5)] == ["before", "after"]


@pytest.mark.cluster
async def test_private_messages_and_their_index_as_the_ircd_user(as_ircd):
    log = ChatLog(as_ircd, KEYS)
    alice, bob = party("alice", "alice"), party("bob")
    # On a cluster bob's live channel is in another slot than the conversation's stream: it
    # is published after the script, and must still arrive.
    pubsub = open_pubsub(as_ircd, ignore_subscribe_messages=True)
    await pubsub.subscribe(log.nick_live("bob"))
    stored = await log.append_private(alice, bob, said("psst", "bob"), [log.nick_live("bob")])
    assert await log.targets(bob, 0, 2**62, 10) == [(alice, stored.time_ms)]
    received = None
    for _ in range(100):
        received = await pubsub.get_message(timeout=0.05)
        if received:
            break
    assert received is not None and json.loads(received["data"]) == stored.to_dict()
    await pubsub.aclose()


async def test_the_messages_service_reads_history_and_cannot_write_it(as_ircd, as_messages):
    await ChatLog(as_ircd, KEYS).append_channel("#c", said("hello", "#c"))
    reader = ChatLog(as_messages, KEYS)
    assert [m.text for m in await reader.latest(reader.channel("#c"), 5)] == ["hello"]
    with pytest.raises(redis.exceptions.NoPermissionError):
        await as_messages.xadd("canaduck:chat:{#c}:log", {"text": "forged"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        await reader.append_channel("#c", said("forged", "#c"))


async def test_other_services_cannot_touch_the_chat(redis_server, admin):
    calc = redis.Redis.from_url(redis_server.url("calc"))
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.xrange("canaduck:chat:{#c}:log")
    users = redis.Redis.from_url(redis_server.url("users"))
    with pytest.raises(redis.exceptions.NoPermissionError):
        users.xrange("canaduck:chat:{#c}:log")
    ircd = redis.Redis.from_url(redis_server.url("ircd"))
    with pytest.raises(redis.exceptions.NoPermissionError):
        ircd.hgetall("canaduck:users:{alice}:account")
    for client in (calc, users, ircd):
        client.close()


async def test_concurrent_appends_get_distinct_increasing_ids(as_ircd):
    log = ChatLog(as_ircd, KEYS)
    stored = await asyncio.gather(*(log.append_channel("#c", said(str(i), "#c")) for i in range(50)))
    ids = [m.id for m in stored]
    assert len(set(ids)) == 50
    history = await log.latest(log.channel("#c"), 100)
    assert [m.id for m in history] == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
