"""The messages service as a process, reading what the ircd's Redis user wrote."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from apps.chat.chatlog import ChatLog
from apps.chat.conversations import ChatMessage
from apps.chat.keys import ChatKeys

FAST = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}


async def write_as_the_ircd(redis_server) -> list[ChatMessage]:
    """Three messages in #Live, and the account `reader` in it through one connection, as
    the ircd's Redis user writes them."""
    ircd = redis_server.async_client("ircd")
    log = ChatLog(ircd, ChatKeys())
    stored = [await log.append_channel("#Live", ChatMessage("PRIVMSG", "a!b@c", "#Live", f"m{i}"))
              for i in range(3)]
    await ircd.hset(ChatKeys().channel("#live"), mapping={"name": "#Live", "modes": "nt"})
    await ircd.hset(ChatKeys().channel_members("#live"), "c0nn", "")
    await ircd.sadd(ChatKeys().account_connections("reader"), "c0nn")
    await ircd.aclose()
    return stored


@pytest.mark.cluster
def test_history_written_by_the_ircd_user_read_over_http(launcher, redis_server, admin):
    stored = asyncio.run(write_as_the_ircd(redis_server))
    users = launcher.start("apps.users", "users", **FAST)
    messages = launcher.start("apps.messages", "messages", USERS_URL=users.url)
    internal = messages.get("/internal/history/%23live?limit=2").json()
    assert [m["id"] for m in internal["messages"]] == [s.id for s in stored[1:]]
    assert messages.get("/api/messages/%23live").status_code == 401
    httpx.post(f"{users.url}/api/users/register", json={"account": "reader", "password": "long enough"})
    token = httpx.post(f"{users.url}/api/users/login",
                       json={"account": "reader", "password": "long enough"}).json()["token"]
    public = messages.get("/api/messages/%23LIVE", headers={"Authorization": f"Bearer {token}"})
    assert public.status_code == 200 and [m["text"] for m in public.json()["messages"]] == ["m0", "m1", "m2"]
    httpx.post(f"{users.url}/api/users/register", json={"account": "outsider", "password": "long enough"})
    other = httpx.post(f"{users.url}/api/users/login",
                       json={"account": "outsider", "password": "long enough"}).json()["token"]
    refused = messages.get("/api/messages/%23live", headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 403  # not in the channel: the one history rule


def test_messages_finds_users_in_the_directory(launcher, admin):
    launcher.start("apps.users", "users", **FAST)
    messages = launcher.start("apps.messages", "messages")
    admin.hset("canaduck:irc:chan:{#d}", mapping={"name": "#d", "modes": ""})
    token = "bm9ib2R5." + "x" * 24
    response = messages.get("/api/messages/%23d", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401  # the users service answered: the token is unknown


def test_no_users_service_is_a_503(launcher, admin):
    messages = launcher.start("apps.messages", "messages")
    response = messages.get("/api/messages/%23d", headers={"Authorization": "Bearer x.y"})
    assert response.status_code == 503


async def write_searchable(redis_server) -> list[ChatMessage]:
    """#Find with a few messages, and the account `finder` in it, as the ircd's user writes."""
    ircd = redis_server.async_client("ircd")
    log = ChatLog(ircd, ChatKeys())
    stored = [await log.append_channel("#Find", ChatMessage("PRIVMSG", "a!b@c", "#Find", text))
              for text in ("Où est la gare ?", "the GARE is closed", "nothing here", "gare gare")]
    await ircd.hset(ChatKeys().channel("#find"), mapping={"name": "#Find", "modes": "nts"})
    await ircd.hset(ChatKeys().channel_members("#find"), "f1nd", "")
    await ircd.sadd(ChatKeys().account_connections("finder"), "f1nd")
    await ircd.aclose()
    return stored


@pytest.mark.cluster
def test_search_over_http_on_the_real_server(launcher, redis_server, admin):
    stored = asyncio.run(write_searchable(redis_server))
    users = launcher.start("apps.users", "users", **FAST)
    messages = launcher.start("apps.messages", "messages", USERS_URL=users.url)
    tokens = {}
    for name in ("finder", "stranger"):
        body = {"account": name, "password": "long enough"}
        httpx.post(f"{users.url}/api/users/register", json=body)
        tokens[name] = httpx.post(f"{users.url}/api/users/login", json=body).json()["token"]
    path = "/api/messages/search/%23find?q=GARE&limit=2"
    found = messages.get(path, headers={"Authorization": f"Bearer {tokens['finder']}"})
    assert found.status_code == 200, found.text
    assert [m["id"] for m in found.json()["messages"]] == [stored[3].id, stored[1].id]
    rest = messages.get(f"{path}&before={found.json()['next_before']}",
                        headers={"Authorization": f"Bearer {tokens['finder']}"})
    assert [m["text"] for m in rest.json()["messages"]] == ["Où est la gare ?"]
    refused = messages.get(path, headers={"Authorization": f"Bearer {tokens['stranger']}"})
    assert refused.status_code == 403  # a secret channel she is not in
    scan = messages.get("/internal/history/search/%23find?q=gare&method=scan").json()
    assert [m["id"] for m in scan["messages"]] == [stored[3].id, stored[1].id, stored[0].id]
    bad = messages.get("/api/messages/search/%23find?q=%21%21", headers={"Authorization": "Bearer x"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "q"
