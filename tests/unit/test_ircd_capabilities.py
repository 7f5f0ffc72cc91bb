"""The IRCv3 capabilities added to the gateway, each against its specification's text, on
fakeredis over loopback sockets; two gateways sharing one fakeredis where a capability crosses
replicas. The capability table (apps/ircd/capabilities.py) is what CAP LS and ISUPPORT say."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import fakeredis

from apps.ircd.server import IrcServer
from tests.unit.ircd_support import LineClient, commands, connect, running_gateway
from tests.unit.test_ircd_commands import plain, users_service

#: Accounts whose names no test takes as a nick (an account's name is reserved for it).
ACCOUNTS = {"Bob": "sesame"}


@contextlib.asynccontextmanager
async def replicas(count: int = 2, **overrides: object) -> AsyncIterator[list[IrcServer]]:
    """`count` gateways on one fakeredis, each asking the same (mock) users service."""
    shared = fakeredis.FakeServer()
    async with contextlib.AsyncExitStack() as stack:
        gateways = []
        for i in range(count):
            gateway = await stack.enter_async_context(
                running_gateway(shared, instance=f"ircd-{i}", users_url="http://users", **overrides))
            gateway.accounts.http = users_service(ACCOUNTS)
            gateways.append(gateway)
        yield gateways


async def joined(gateway: IrcServer, nick: str, channel: str, caps: str = "") -> LineClient:
    """A registered client of `gateway` in `channel`, its lines so far read."""
    client = await connect(gateway)
    await client.register(nick, caps=caps)
    await client.send(f"JOIN {channel}")
    await client.sync()
    return client


async def sasl_after_registration(client: LineClient, account: str) -> list[str]:
    await client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain(account, ACCOUNTS[account])}")
    return await client.sync()


async def cap_ls(gateway: IrcServer) -> dict[str, str]:
    """CAP LS 302's capabilities, each with its value ("" for none)."""
    client = await connect(gateway)
    await client.send("CAP LS 302")
    [line] = await client.sync()
    await client.close()
    return dict((item + "=").split("=", 2)[:2] for item in line.split(" :", 1)[1].split(" "))


# -- account-notify (ircv3.net/specs/extensions/account-notify) -------------------------------

async def test_account_notify_is_offered():
    async with replicas(1) as (one,):
        assert (await cap_ls(one))["account-notify"] == ""


async def test_account_notify_goes_to_common_channels_including_the_user_itself_across_replicas():
    """"clients will get the ACCOUNT message to designate the account name changes for
    clients on common channels with them, including themselves" (with the capability only)."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#c", "account-notify")
        carol = await joined(one, "carol", "#c")  # no capability: nothing
        bob = await joined(two, "robert", "#c", "account-notify sasl")
        await alice.sync_until(lambda line: " JOIN " in line and "robert" in line)
        await carol.sync()
        got = await sasl_after_registration(bob, "Bob")
        assert commands(got) == ["AUTHENTICATE", "900", "903", "ACCOUNT"], got
        assert got[-1] == ":robert!~robert@127.0.0.1 ACCOUNT Bob"
        seen = await alice.sync_until(lambda line: " ACCOUNT " in line)
        assert seen == [":robert!~robert@127.0.0.1 ACCOUNT Bob"]
        assert " ACCOUNT " not in " ".join(await carol.sync_until(lambda line: " ACCOUNT " in line, rounds=3))
        for client in (alice, bob, carol):
            await client.close()


async def test_account_notify_reaches_a_watcher_only_with_extended_monitor():
    async with replicas(1) as (one,):
        watcher = await connect(one)
        await watcher.register("watcher", caps="account-notify extended-monitor")
        plain_watcher = await connect(one)
        await plain_watcher.register("plainw", caps="account-notify")
        await watcher.send("MONITOR + robert")
        await plain_watcher.send("MONITOR + robert")
        await watcher.sync(), await plain_watcher.sync()
        bob = await connect(one)
        await bob.register("robert", caps="sasl")  # bob itself without account-notify: no ACCOUNT
        assert commands(await sasl_after_registration(bob, "Bob")) == ["AUTHENTICATE", "900", "903"]
        assert await watcher.sync() == [":irc.test 730 watcher robert!~robert@127.0.0.1",
                                        ":robert!~robert@127.0.0.1 ACCOUNT Bob"]
        assert commands(await plain_watcher.sync()) == ["730"]


async def test_a_login_before_registration_sends_no_account_message():
    """Nobody can see a client before it registers: its JOINs carry the account instead."""
    async with replicas(1) as (one,):
        alice = await joined(one, "alice", "#c", "account-notify extended-join")
        bob = await connect(one)
        await bob.send("CAP LS 302", "CAP REQ :sasl account-notify", "AUTHENTICATE PLAIN",
                       f"AUTHENTICATE {plain('Bob', 'sesame')}", "NICK robert", "USER robert 0 * :Bob",
                       "CAP END", "JOIN #c")
        got = await bob.sync()
        assert "ACCOUNT" not in commands(got)
        seen = await alice.sync()
        assert seen == [":robert!~robert@127.0.0.1 JOIN #c Bob Bob"]

