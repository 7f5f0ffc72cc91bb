"""IRCv3 draft/account-registration (REGISTER, VERIFY) on the gateway, against the real users
service app (on fakeredis) as its peer: the specification's answers, each refusal's code."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Unpack

import fakeredis
import httpx
import pytest

from apps.ircd.server import IrcServer
from apps.users.app import create_app
from apps.users.settings import UsersSettings
from tests.unit.ircd_support import GatewaySettings, LineClient, commands, connect, running_gateway
from tests.unit.test_ircd_commands import plain
from tests.unit.test_ircd_sasl import FAST, asgi, logged_in

CAP = "draft/account-registration"


@contextlib.asynccontextmanager
async def chat(**overrides: Unpack[GatewaySettings]) -> AsyncIterator[tuple[IrcServer, httpx.AsyncClient]]:
    """A gateway whose users service is the real app, in process; `overrides`: the gateway's."""
    redis = fakeredis.FakeAsyncRedis()
    users = httpx.AsyncClient(transport=httpx.ASGITransport(
        app=asgi(create_app(UsersSettings(instance_id="users-1", **FAST), redis=redis))), base_url="http://users")
    async with running_gateway(users_url="http://users", **overrides) as gateway:
        gateway.accounts.http = users
        yield gateway, users
    await users.aclose()
    await redis.aclose()


@pytest.fixture
async def gateway() -> AsyncIterator[IrcServer]:
    async with chat() as (gateway, _):
        yield gateway


async def registered(gateway: IrcServer, nick: str) -> LineClient:
    client = await connect(gateway)
    await client.register(nick)
    return client


async def plain_login(gateway: IrcServer, account: str, password: str) -> list[str]:
    """What the gateway answers a SASL PLAIN login, before registration."""
    client = await connect(gateway)
    await client.send("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE PLAIN",
                      f"AUTHENTICATE {plain(account, password)}")
    got = await client.sync()
    await client.close()
    return got


def fail(got: list[str]) -> list[str]:
    """The parameters of the FAIL line received, after the command: [code, context..., text]."""
    line = next(line for line in got if commands([line]) == ["FAIL"])
    head, _, text = line.partition(" :")
    return [*head.split(" ")[2:], text]


async def test_the_capability_says_before_connect_and_no_email_while_users_can_be_found():
    async with chat() as (gateway, _):
        client = await connect(gateway)
        await client.send("CAP LS 302")
        assert f"{CAP}=before-connect" in (await client.sync())[0].split(" ")
        await client.close()
    async with chat(irc_password="sesame") as (gateway, _):  # REGISTER must not get round PASS
        client = await connect(gateway)
        await client.send("CAP LS 302")
        assert CAP in (await client.sync())[0].lstrip(":").split(" :")[1].split(" ")
        await client.close()
    async with running_gateway() as gateway:  # no users service in the directory: none
        client = await connect(gateway)
        await client.send("CAP LS 302")
        assert CAP not in (await client.sync())[0]
        await client.send("NICK bar", "REGISTER * * correct-horse")
        assert fail(await client.sync())[:3] == ["REGISTER", "TEMPORARILY_UNAVAILABLE", "*"]
        await client.close()


async def test_register_after_connecting_logs_in_and_the_account_works_with_sasl(gateway: IrcServer):
    client = await registered(gateway, "Alice")
    await client.send("REGISTER * * correct-horse")
    got = await client.sync()
    assert commands(got) == ["900", "REGISTER"]
    assert got[0].split(" ")[4] == "Alice"
    assert got[1].split(" ")[1:4] == ["REGISTER", "SUCCESS", "Alice"]
    await client.send("WHOIS Alice")
    assert any(line.split(" ")[1] == "330" for line in await client.sync())  # logged in as
    await client.close()
    assert logged_in(await plain_login(gateway, "alice", "correct-horse")) == "Alice"


async def test_register_before_connecting_then_the_reserved_nick_is_kept(gateway: IrcServer):
    client = await connect(gateway)
    await client.send("CAP LS 302", f"CAP REQ {CAP}", "NICK bar", "REGISTER bar * correct-horse")
    got = await client.sync()
    assert commands(got)[-2:] == ["900", "REGISTER"] and "bar!*@*" in got[-2]
    await client.send("USER bar 0 * :Bar", "CAP END")
    assert "001" in commands(await client.sync())  # logged in to the account its nick names
    other = await connect(gateway)
    await other.send("NICK Bar", "USER x 0 * :x")
    assert "433" in commands(await other.sync())
    await client.close()
    await other.close()


@pytest.mark.parametrize(("lines", "expected"), [
    (["REGISTER * * correct-horse"], ["NEED_NICK", "*"]),
    (["NICK 1bar", "REGISTER * * correct-horse"], ["BAD_ACCOUNT_NAME", "1bar"]),
    (["NICK bar", "REGISTER foo * correct-horse"], ["ACCOUNT_NAME_MUST_BE_NICK", "foo"]),
    (["NICK bar", "REGISTER * * short"], ["WEAK_PASSWORD", "bar"]),
    (["NICK bar", "REGISTER * * :" + "x" * 300], ["UNACCEPTABLE_PASSWORD", "bar"]),
    (["NICK bar", "REGISTER * * :\x01\x02\x03\x04\x05\x06\x07\x08\x09"], ["UNACCEPTABLE_PASSWORD", "bar"]),
    (["NICK bar", "VERIFY bar 123456"], ["INVALID_CODE", "bar"]),
], ids=["no nick", "bad name", "another name", "weak", "too long", "control characters", "verify"])
async def test_bad_input_gets_the_specifications_code(gateway: IrcServer, lines: list[str],
                                                      expected: list[str]):
    client = await connect(gateway)
    await client.send(*lines)
    got = fail(await client.sync())
    assert got[0] in ("REGISTER", "VERIFY") and got[1:3] == expected
    await client.close()


async def test_a_taken_name_or_a_nick_held_by_another_cannot_be_registered(gateway: IrcServer):
    first = await registered(gateway, "root")
    await first.send("REGISTER * * correct-horse")
    await first.sync()
    second = await connect(gateway)  # the nick is an account's: held before registration only
    await second.send("NICK Root", "REGISTER * * another-one")
    assert fail(await second.sync())[1:3] == ["ACCOUNT_EXISTS", "Root"]
    guest = await registered(gateway, "guest")
    grabber = await connect(gateway)
    await grabber.send("NICK guest", "REGISTER * * correct-horse")  # 433, then no land grab
    got = await grabber.sync()
    assert "433" in commands(got) and fail(got)[1:3] == ["ACCOUNT_EXISTS", "guest"]
    for client in (first, second, guest, grabber):
        await client.close()


async def test_a_logged_in_client_cannot_register_or_verify_again(gateway: IrcServer):
    client = await registered(gateway, "alice")
    await client.send("REGISTER * * correct-horse", "REGISTER * * correct-horse", "VERIFY alice 1")
    got = await client.sync()
    fails = [line for line in got if commands([line]) == ["FAIL"]]
    assert [f.split(" ")[2:5] for f in fails] == [["REGISTER", "ALREADY_AUTHENTICATED", "alice"],
                                                  ["VERIFY", "ALREADY_AUTHENTICATED", "alice"]]
    await client.send("REGISTER *")
    assert "461" in commands(await client.sync())
    await client.close()


async def test_without_before_connect_registration_waits_for_the_connection():
    async with chat(account_registration_before_connect=False) as (gateway, _):
        client = await connect(gateway)
        await client.send("CAP LS 302")
        assert f"{CAP}=before-connect" not in (await client.sync())[0]
        await client.send("NICK bar", "REGISTER * * correct-horse")
        assert fail(await client.sync())[1:2] == ["COMPLETE_CONNECTION_REQUIRED"]
        await client.send("USER bar 0 * :Bar", "CAP END", "REGISTER * * correct-horse")
        assert commands(await client.sync())[-2:] == ["900", "REGISTER"]
        await client.close()


async def test_a_users_service_that_cannot_be_reached_is_temporarily_unavailable(gateway: IrcServer):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gateway.accounts.http = httpx.AsyncClient(transport=httpx.MockTransport(down))
    client = await registered(gateway, "alice")
    await client.send("REGISTER * * correct-horse")
    assert fail(await client.sync())[1:3] == ["TEMPORARILY_UNAVAILABLE", "alice"]
    await client.close()
    await gateway.accounts.http.aclose()


async def test_the_internal_route_keeps_the_public_rules_and_tells_a_weak_password():
    redis = fakeredis.FakeAsyncRedis()
    app = create_app(UsersSettings(instance_id="users-1", **FAST), redis=redis)
    transport = httpx.ASGITransport(app=asgi(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://users") as users:
        async def post(route: str, account: str, password: str) -> httpx.Response:
            return await users.post(route, json={"account": account, "password": password})

        created = await post("/internal/register", "Alice", "correct horse")
        assert created.status_code == 201 and created.json()["account"] == "Alice"
        assert (await post("/api/users/register", "alice", "correct horse")).status_code == 409
        weak = await post("/internal/register", "bob", "short")
        assert weak.status_code == 400 and weak.json()["weak"] is True
        long = await post("/internal/register", "bob", "x" * 300)
        assert long.status_code == 400 and long.json()["weak"] is False
        bad = await post("/internal/register", "1bob", "correct horse")
        assert bad.status_code == 400 and bad.json()["parameter"] == "account"
        login = await post("/api/users/login", "ALICE", "correct horse")
        assert login.status_code == 200
    await redis.aclose()
