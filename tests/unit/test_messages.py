"""The messages service on fakeredis, with the users service mocked: history routes and bad input."""

from __future__ import annotations

import httpx
import pytest

from apps.chat.chatlog import ChatLog
from apps.chat.conversations import ChatMessage, party
from apps.chat.keys import ChatKeys
from apps.messages.app import create_app
from apps.messages.settings import MessagesSettings

GOOD = {"Authorization": "Bearer good-token"}


def users_service(request: httpx.Request) -> httpx.Response:
    assert request.url.path == "/internal/sessions/check"
    token = httpx.Request("POST", "/", content=request.content).read()
    if b'"good-token"' in token:
        return httpx.Response(200, json={"account": "Alice"})
    if b'"broken"' in token:
        return httpx.Response(500, json={"error": "internal error"})
    return httpx.Response(401, json={"error": "invalid session token"})


def make_app(redis, transport=None, **settings):
    return create_app(MessagesSettings(instance_id="messages-1", users_url="http://users.test", **settings),
                      redis=redis, http_transport=transport or httpx.MockTransport(users_service))


async def seed(redis, channel="#Chan", count=5, modes="nt",
               member: str | None = "alice") -> list[ChatMessage]:
    """A channel with `count` messages; `member`: an account in it through one connection."""
    log = ChatLog(redis, ChatKeys())
    if modes is not None:
        await redis.hset(ChatKeys().channel(channel.lower()), mapping={"name": channel, "modes": modes})
    if member is not None:
        await join(redis, channel, f"{member}-conn", member)
    return [await log.append_channel(channel, ChatMessage("PRIVMSG", "a!b@c", channel, f"m{i}"))
            for i in range(count)]


async def join(redis, channel: str, connection: str, account: str) -> None:
    """What the ircd writes when a logged-in connection joins a channel."""
    await redis.hset(ChatKeys().channel_members(channel.lower()), connection, "")
    await redis.sadd(ChatKeys().account_connections(account.lower()), connection)


def texts(body) -> list[str]:
    return [m["text"] for m in body["messages"]]


async def test_latest_history_of_a_public_channel(redis, started):
    stored = await seed(redis)
    async with started(make_app(redis)) as client:
        response = await client.get("/api/messages/%23chan", headers=GOOD)
        assert response.status_code == 200
        body = await response.get_json()
        assert body["target"] == "#chan" and texts(body) == ["m0", "m1", "m2", "m3", "m4"]
        first = body["messages"][0]
        assert first == {"id": stored[0].id, "time": stored[0].time_ms, "command": "PRIVMSG", "from": "a!b@c",
                         "account": "", "target": "#Chan", "text": "m0", "tags": {}}


async def test_paging_with_before_after_and_limit(redis, started):
    stored = await seed(redis, count=10)
    async with started(make_app(redis)) as client:
        async def page(query: str) -> list[str]:
            return texts(await (await client.get(f"/api/messages/%23Chan?{query}", headers=GOOD)).get_json())

        assert await page("limit=3") == ["m7", "m8", "m9"]
        assert await page(f"before={stored[5].id}&limit=2") == ["m3", "m4"]
        assert await page(f"after={stored[5].id}&limit=2") == ["m6", "m7"]
        assert await page(f"after={stored[1].id}&before={stored[5].id}") == ["m2", "m3", "m4"]


async def test_a_session_is_needed(redis, started):
    await seed(redis)
    async with started(make_app(redis)) as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            response = await client.get("/api/messages/%23chan", headers=headers)
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_users_down_is_a_503_not_a_500(redis, started):
    await seed(redis)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with started(make_app(redis, httpx.MockTransport(down))) as client:
        response = await client.get("/api/messages/%23chan", headers=GOOD)
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert (await response.get_json())["error"] == "users service unavailable"
    async with started(make_app(redis)) as client:
        broken = await client.get("/api/messages/%23chan", headers={"Authorization": "Bearer broken"})
        assert broken.status_code == 503


@pytest.mark.parametrize("modes", ["nt", "nts", "ntk", "i"])
async def test_only_a_member_reads_a_channels_history_whatever_its_modes(redis, started, modes):
    # Alice (the session's account) is connected, but in another channel only.
    await seed(redis, "#hidden", modes=modes, member="bob")
    await join(redis, "#elsewhere", "alice-conn", "alice")
    async with started(make_app(redis)) as client:
        response = await client.get("/api/messages/%23hidden", headers=GOOD)
        assert response.status_code == 403
        assert (await response.get_json())["error"].startswith("not in that channel")
        internal = await client.get("/internal/history/%23hidden")
        assert texts(await internal.get_json()) == ["m0", "m1", "m2", "m3", "m4"]
        await join(redis, "#hidden", "alice-conn", "alice")  # she joins: now she may read it
        joined = await client.get("/api/messages/%23hidden", headers=GOOD)
        assert texts(await joined.get_json()) == ["m0", "m1", "m2", "m3", "m4"]


async def test_a_channel_that_does_not_exist_answers_as_one_she_is_not_in(redis, started):
    await seed(redis, "#gone", modes=None, member=None)  # history without a live channel
    async with started(make_app(redis)) as client:
        for path in ("/api/messages/%23gone", "/api/messages/%23never"):
            response = await client.get(path, headers=GOOD)
            assert response.status_code == 403  # the same answer as a secret channel's


@pytest.mark.parametrize(("path", "problem"), [
    ("/api/messages/chan", "invalid channel"),
    ("/api/messages/%23a%20b", "invalid channel"),
    ("/api/messages/%23" + "x" * 64, "invalid channel"),
    ("/api/messages/%23chan?limit=0", "invalid limit"),
    ("/api/messages/%23chan?limit=101", "invalid limit"),
    ("/api/messages/%23chan?limit=ten", "invalid limit"),
    ("/api/messages/%23chan?limit=-1", "invalid limit"),
    ("/api/messages/%23chan?limit=%C2%B2", "invalid limit"),  # "²": a digit to str.isdigit()
    ("/api/messages/%23chan?limit=" + "9" * 5000, "invalid limit"),  # more than int() converts
    ("/internal/history/%23chan?limit=%E2%91%A0", "invalid limit"),  # "①"
    ("/internal/history/private/alice/bob?limit=%C2%B2", "invalid limit"),
    ("/api/messages/%23chan?limit=1&limit=2", "invalid limit: given more than once"),
    ("/api/messages/%23chan?before=yesterday", "invalid before"),
    ("/api/messages/%23chan?after=1-2-3", "invalid after"),
    (f"/api/messages/%23chan?before={2**64}-0", "invalid before"),
    ("/internal/history/private/alice/9x", "invalid second"),
    ("/internal/history/private/~/bob", "invalid first"),
    ("/internal/history/private/~bob/alice", "invalid first"),
])
async def test_bad_requests_are_400_naming_the_parameter(redis, started, path, problem):
    async with started(make_app(redis)) as client:
        response = await client.get(path, headers=GOOD)
        assert response.status_code == 400
        assert (await response.get_json())["error"].startswith(problem)


async def test_private_history_internal_route(redis, started):
    log = ChatLog(redis, ChatKeys())
    alice, guest = party("a1", "alice"), party("0badc0de")
    await log.append_private(alice, guest, ChatMessage("PRIVMSG", "Alice!a@h", "Bob", "hi"))
    async with started(make_app(redis)) as client:
        for path in ("/internal/history/private/alice/~0badc0de",
                     "/internal/history/private/~0badc0de/ALICE"):
            body = await (await client.get(path)).get_json()
            assert texts(body) == ["hi"] and body["target"] in ("alice,~0badc0de", "~0badc0de,alice")
        empty = await (await client.get("/internal/history/private/alice/bob")).get_json()
        assert empty["messages"] == []  # an account named bob is not that guest


async def test_limits_route_and_openapi(redis, started):
    async with started(make_app(redis, chat_history_limit=20, history_page=10)) as client:
        assert await (await client.get("/api/messages/limits")).get_json() == {
            "default_limit": 10, "max_limit": 20, "kept_per_conversation": 10_000}
        spec = await (await client.get("/openapi.json")).get_json()
        assert "/api/messages/{channel}" in spec["paths"] or any("messages" in p for p in spec["paths"])


async def test_redis_down_is_a_503(redis, started, fake_server):
    await seed(redis)
    async with started(make_app(redis)) as client:
        fake_server.connected = False
        response = await client.get("/internal/history/%23chan")
        assert response.status_code == 503
        fake_server.connected = True


# -- search (apps/chat/search.py through the routes) ----------------------------------------------

async def seed_texts(redis, channel: str, texts_: list[str]) -> list[ChatMessage]:
    log = ChatLog(redis, ChatKeys())
    return [await log.append_channel(channel, ChatMessage("PRIVMSG", "a!b@c", channel, text))
            for text in texts_]


async def test_search_a_channel_newest_first_whole_words_every_word(redis, started):
    await redis.hset(ChatKeys().channel("#chan"), mapping={"name": "#Chan", "modes": "nt"})
    await join(redis, "#Chan", "alice-conn", "alice")
    stored = await seed_texts(redis, "#Chan",
                              ["The duck swims", "a goose", "DUCK and goose", "ducks", "Duck."])
    async with started(make_app(redis)) as client:
        async def search(query: str) -> dict:
            response = await client.get(f"/api/messages/search/%23Chan?{query}", headers=GOOD)
            assert response.status_code == 200, await response.get_data()
            return await response.get_json()

        found = await search("q=duck")
        assert texts(found) == ["Duck.", "DUCK and goose", "The duck swims"]
        assert found["target"] == "#Chan" and found["terms"] == ["duck"] and found["next_before"] is None
        assert found["messages"][0] == stored[4].to_dict()
        assert texts(await search("q=Goose%20DUCK")) == ["DUCK and goose"]
        assert texts(await search("q=duc")) == [] and texts(await search("q=swan")) == []
        first = await search("q=duck&limit=2")
        assert texts(first) == ["Duck.", "DUCK and goose"] and first["next_before"] == stored[2].id
        assert texts(await search(f"q=duck&before={first['next_before']}")) == ["The duck swims"]
        # The internal route's scan answers the same, for the benchmark's comparison.
        for method in ("index", "scan"):
            response = await client.get(f"/internal/history/search/%23chan?q=duck&method={method}")
            assert texts(await response.get_json()) == ["Duck.", "DUCK and goose", "The duck swims"]


@pytest.mark.parametrize("modes", ["nt", "nts", "ntk", "i"])
async def test_search_follows_the_history_rule(redis, started, modes):
    await seed(redis, "#hidden", modes=modes, member="bob")
    await seed_texts(redis, "#hidden", ["secret duck"])
    await join(redis, "#elsewhere", "alice-conn", "alice")
    async with started(make_app(redis)) as client:
        path = "/api/messages/search/%23hidden?q=duck"
        assert (await client.get(path)).status_code == 401
        refused = await client.get(path, headers=GOOD)
        assert refused.status_code == 403
        assert (await refused.get_json())["error"].startswith("not in that channel")
        never = await client.get("/api/messages/search/%23never?q=duck", headers=GOOD)
        assert never.status_code == 403  # as for a channel that exists
        await join(redis, "#hidden", "alice-conn", "alice")
        assert texts(await (await client.get(path, headers=GOOD)).get_json()) == ["secret duck"]


async def test_search_a_private_conversation_of_the_session_only(redis, started):
    log = ChatLog(redis, ChatKeys())
    alice, bob, carol = party("a1", "alice"), party("b1", "bob"), party("c1", "carol")
    guest = party("0badc0de")
    await log.append_private(alice, bob, ChatMessage("PRIVMSG", "Alice!a@h", "bob", "lunch at noon?"))
    await log.append_private(bob, carol, ChatMessage("PRIVMSG", "bob!b@h", "carol", "lunch tomorrow"))
    await log.append_private(guest, alice,
                             ChatMessage("PRIVMSG", "Guest!g@h", "alice", "lunch, says a guest"))
    async with started(make_app(redis)) as client:  # the session is Alice's
        async def search(other: str) -> list[str]:
            response = await client.get(f"/api/messages/search/private/{other}?q=lunch", headers=GOOD)
            assert response.status_code == 200
            return texts(await response.get_json())

        assert await search("Bob") == ["lunch at noon?"]
        assert await search("carol") == []  # bob and carol's conversation is not hers to name
        assert await search("~0badc0de") == ["lunch, says a guest"]  # an account reads its guest's
        assert (await client.get("/api/messages/search/private/bob?q=lunch")).status_code == 401


@pytest.mark.parametrize(("path", "problem"), [
    ("/api/messages/search/%23chan", "invalid q: missing"),
    ("/api/messages/search/%23chan?q=", "invalid q: empty"),
    ("/api/messages/search/%23chan?q=%20%20", "invalid q: empty"),
    ("/api/messages/search/%23chan?q=!!!", "invalid q: no word"),
    ("/api/messages/search/%23chan?q=" + "x" * 201, "invalid q: longer"),
    ("/api/messages/search/%23chan?q=a%0Ab", "invalid q: contains a control character"),
    ("/api/messages/search/%23chan?q=a&q=b", "invalid q: given more than once"),
    ("/api/messages/search/%23chan?q=a+b+c+d+e+f+g+h+i", "invalid q: more than 8"),
    ("/api/messages/search/%23chan?q=a&limit=0", "invalid limit"),
    ("/api/messages/search/%23chan?q=a&limit=101", "invalid limit"),
    ("/api/messages/search/%23chan?q=a&limit=%C2%B2", "invalid limit"),
    ("/api/messages/search/%23chan?q=a&limit=1&limit=2", "invalid limit: given more than once"),
    ("/api/messages/search/%23chan?q=a&before=now", "invalid before"),
    (f"/api/messages/search/%23chan?q=a&before={2**64}-0", "invalid before"),
    ("/api/messages/search/chan?q=a", "invalid channel"),
    ("/api/messages/search/private/9x?q=a", "invalid party"),
    ("/api/messages/search/private/~bob?q=a", "invalid party"),
    ("/internal/history/search/%23chan?q=a&method=grep", "invalid method"),
])
async def test_bad_searches_are_400_naming_the_parameter(redis, started, path, problem):
    await seed(redis)
    async with started(make_app(redis)) as client:
        response = await client.get(path, headers=GOOD)
        assert response.status_code == 400
        body = await response.get_json()
        assert body["error"].startswith(problem), body
        assert body["parameter"] == problem.split()[1].rstrip(":")


async def test_search_routes_are_in_the_openapi(redis, started):
    async with started(make_app(redis)) as client:
        paths = (await (await client.get("/openapi.json")).get_json())["paths"]
        assert {"/api/messages/search/{channel}", "/api/messages/search/private/{party}",
                "/internal/history/search/{channel}"} <= set(paths)
        assert [p["name"] for p in paths["/api/messages/search/{channel}"]["get"]["parameters"]
                if p["in"] == "query"] == ["q", "limit", "before"]
