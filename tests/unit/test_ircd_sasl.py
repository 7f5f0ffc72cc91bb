"""SASL PLAIN on the gateway with a password or a web session token, against the real users
service app (on fakeredis) as its peer."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, TypedDict, cast

import fakeredis
import httpx
import pytest

from apps.ircd.server import IrcServer
from apps.kit.app import ServiceApp
from apps.kit.directory import Directory, Entry
from apps.users.app import create_app
from apps.users.settings import UsersSettings
from tests.unit.ircd_support import commands, connect, plain, running_gateway, serve_accounts


class Argon2Cost(TypedDict):
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int


FAST: Argon2Cost = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}

#: An ASGI app as httpx types one: its scope and messages as plain mappings.
AsgiApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[MutableMapping[str, Any]]],
                    Callable[[MutableMapping[str, Any]], Awaitable[None]]], Awaitable[None]]


def asgi(app: ServiceApp) -> AsgiApp:
    """`app` as httpx's ASGITransport takes it: Quart types the same scope and messages as
    TypedDicts, which a plain mapping is not."""
    return cast(AsgiApp, app)


@dataclass
class Chat:
    gateway: IrcServer
    users: httpx.AsyncClient  # the users service, as the web page and the gateway reach it
    redis: fakeredis.FakeAsyncRedis  # the users service's

    async def register(self, account: str, password: str = "correct horse") -> None:
        body = {"account": account, "password": password}
        response = await self.users.post("/api/users/register", json=body)
        assert response.status_code == 201

    async def login(self, account: str, password: str = "correct horse") -> str:
        response = await self.users.post("/api/users/login", json={"account": account, "password": password})
        assert response.status_code == 200
        return str(response.json()["token"])

    async def sasl(self, authcid: str, password: str) -> list[str]:
        """What the gateway answers a SASL PLAIN login, before registration."""
        client = await connect(self.gateway)
        payload = base64.b64encode(f"{authcid}\0{authcid}\0{password}".encode()).decode()
        await client.send("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE PLAIN", f"AUTHENTICATE {payload}")
        got = await client.sync()
        await client.close()
        return got


GATEWAY = "10.0.0.7"


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    shared = fakeredis.FakeServer()  # one Redis, as in production
    redis = fakeredis.FakeAsyncRedis(server=shared)
    users_app = create_app(UsersSettings(instance_id="users-1", failed_login_burst=3, **FAST), redis=redis)
    # The gateway calls from an address of its own (as in compose), the IRC clients from loopback.
    users = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi(users_app), client=(GATEWAY, 40000)),
                              base_url="http://users")
    async with running_gateway(shared, users_url="http://users") as gateway:
        gateway.accounts.http = users
        yield Chat(gateway, users, redis)
    await users.aclose()
    await redis.aclose()


def logged_in(got: list[str]) -> str | None:
    """The account of a 900 RPL_LOGGEDIN followed by 903, else None."""
    if commands(got)[-2:] != ["900", "903"]:
        return None
    return got[-2].split(" ")[4]


def refused(got: list[str]) -> bool:
    return commands(got)[-1] == "904" and "900" not in commands(got)


async def test_a_session_token_logs_its_account_in_whatever_the_case_of_the_name(chat: Chat):
    await chat.register("Alice")
    token = await chat.login("Alice")
    assert logged_in(await chat.sasl("Alice", token)) == "Alice"
    assert logged_in(await chat.sasl("aLICE", token)) == "Alice"


async def test_a_token_of_another_account_is_refused(chat: Chat):
    await chat.register("Alice")
    await chat.register("Mallory")
    mallorys = await chat.login("Mallory")
    assert refused(await chat.sasl("Alice", mallorys))
    assert logged_in(await chat.sasl("Mallory", mallorys)) == "Mallory"


async def test_unknown_revoked_and_expired_tokens_are_refused(chat: Chat):
    await chat.register("Alice")
    assert refused(await chat.sasl("Alice", "YWxpY2U." + "x" * 43))  # well formed, never issued
    revoked = await chat.login("Alice")
    logout = await chat.users.post("/api/users/logout", headers={"Authorization": f"Bearer {revoked}"})
    assert logout.status_code in (200, 204)
    assert refused(await chat.sasl("Alice", revoked))
    expired = await chat.login("Alice")
    await chat.redis.delete("canaduck:users:{alice}:sessions")  # what the fields' TTL does
    assert refused(await chat.sasl("Alice", expired))


async def test_the_password_path_is_unchanged_and_still_throttled(chat: Chat):
    await chat.register("Alice")
    assert logged_in(await chat.sasl("alice", "correct horse")) == "Alice"
    assert refused(await chat.sasl("alice", "wrong horse"))
    assert refused(await chat.sasl("nobody", "correct horse"))
    for guess in ("wrong again", "still wrong"):  # the burst of 3 failures is used up
        assert refused(await chat.sasl("alice", guess))
    right = {"account": "alice", "password": "correct horse"}
    throttled = await chat.users.post("/internal/verify", json=right)
    assert throttled.status_code == 429
    assert refused(await chat.sasl("alice", "correct horse"))  # 429 is a failure too


async def test_a_token_login_neither_counts_as_a_failure_nor_is_throttled(chat: Chat):
    await chat.register("Alice")
    token = await chat.login("Alice")
    for _ in range(4):  # more than the burst of failures: none was counted
        assert logged_in(await chat.sasl("Alice", token)) == "Alice"
    assert logged_in(await chat.sasl("alice", "correct horse")) == "Alice"
    for guess in ("guess 1", "guess 2", "guess 3"):
        assert refused(await chat.sasl("alice", guess))
    assert refused(await chat.sasl("alice", "correct horse"))  # guessing is throttled (429)
    assert logged_in(await chat.sasl("Alice", token)) == "Alice"  # the owner's page still gets in


async def test_a_users_service_that_cannot_be_reached_refuses(chat: Chat):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    chat.gateway.accounts.http = httpx.AsyncClient(transport=httpx.MockTransport(down))
    assert refused(await chat.sasl("Alice", "anything"))
    await chat.gateway.accounts.http.aclose()


async def test_without_users_url_sasl_is_offered_while_the_directory_lists_a_users_service():
    async with running_gateway() as gateway:  # USERS_URL empty: the directory says
        directory = Directory(gateway.store.redis, gateway.settings.keys, ttl=10)
        await serve_accounts(gateway, {"Alice": "sesame"})
        client = await connect(gateway)
        await client.send("CAP LS 302")
        assert "sasl" not in (await client.sync())[0]
        await directory.register(Entry("users", "users-1", "http://users.test", "inbox"))
        await gateway.accounts.refresh()  # what every heartbeat of the replica does
        await client.send("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE PLAIN",
                          f"AUTHENTICATE {plain('alice', 'sesame')}")
        got = await client.sync()
        assert "sasl=PLAIN" in got[0] and commands(got)[-2:] == ["900", "903"]
        await directory.deregister("users", "users-1")
        await gateway.accounts.refresh()
        await client.send("CAP LS 302")
        assert "sasl" not in (await client.sync())[0]
        await client.close()
        await gateway.accounts.http.aclose()


async def test_a_wrong_password_counts_against_the_irc_clients_address_not_the_gateways(chat: Chat):
    await chat.register("Alice")
    assert refused(await chat.sasl("alice", "wrong horse"))
    assert await chat.redis.exists("canaduck:users:{ip:127.0.0.1}:failures")  # the IRC client's
    assert not await chat.redis.exists(f"canaduck:users:{{ip:{GATEWAY}}}:failures")


async def test_a_storm_of_guests_never_asks_the_users_service_and_an_accounts_nick_stays_reserved(chat: Chat):
    # Twenty guests register at once, one of them as an account's nick (in another case): the
    # gateway reads the nick's owner as it claims it, where the users service published it,
    # and that one guest alone is refused.
    await chat.register("Alice")
    asked: list[str] = []

    async def record(request: httpx.Request) -> None:
        asked.append(request.url.path)

    chat.users.event_hooks["request"].append(record)
    guests = [await connect(chat.gateway) for _ in range(20)]
    nicks = [f"guest{i}" for i in range(19)] + ["ALICE"]
    answers = await asyncio.gather(*(g.register(nick) for g, nick in zip(guests, nicks, strict=True)))
    assert [commands(a)[0] for a in answers] == ["001"] * 19 + ["433"]
    assert asked == []
    for guest in guests:
        await guest.close()
