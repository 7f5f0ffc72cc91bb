"""One account, many devices, and always-on (apps/ircd/operations/devices.py), on one gateway
and across two sharing one (fake) Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import fakeredis

from apps.ircd.server import IrcServer
from apps.ircd.sweeper import expire
from tests.unit.ircd_support import (
    Clock,
    LineClient,
    commands,
    connect,
    forget_everything,
    plain,
    running_gateway,
    serve_accounts,
    sweep_dead,
)

ACCOUNTS = {"Alice": "sesame", "Dave": "hunter22"}


async def device(gateway: IrcServer, nick: str = "alice", account: str = "alice", password: str = "sesame",
                 caps: str = "") -> tuple[LineClient, list[str]]:
    """A client logged in with SASL asking for `nick`: the client and what registration said."""
    client = await connect(gateway)
    wanted = " ".join(["sasl", *caps.split()])
    await client.send("CAP LS 302", f"CAP REQ :{wanted}", "AUTHENTICATE PLAIN",
                      f"AUTHENTICATE {plain(account, password)}", f"NICK {nick}", f"USER {nick} 0 * :Real",
                      "CAP END")
    return client, await client.sync()


async def with_users(gateway: IrcServer, always_on: dict[str, bool] | None = None) -> IrcServer:
    return await serve_accounts(gateway, ACCOUNTS, always_on)


async def test_a_second_device_shares_the_nick_the_channels_and_what_is_said():
    async with running_gateway(users_url="http://users") as gateway:
        await with_users(gateway)
        laptop, _ = await device(gateway)
        await laptop.send("JOIN #room")
        bob = await connect(gateway)
        await bob.register("bob", caps="away-notify")
        await bob.send("JOIN #room")
        await laptop.sync()
        await bob.sync()

        phone, welcome = await device(gateway)
        assert "001" in commands(welcome)
        assert ":alice!~alice@127.0.0.1 JOIN #room" in welcome  # put in its user's channels
        assert any(" 353 alice = #room :" in line and "bob" in line for line in welcome)
        assert await bob.sync() == []  # nobody else sees a second alice: no JOIN, no QUIT
        await bob.send("NAMES #room")
        names = [line for line in await bob.sync() if " 353 " in line]
        assert names[0].split(":")[-1].split().count("@alice") == 1

        await bob.send("PRIVMSG #room :hi all", "PRIVMSG alice :hi you")
        await bob.sync()
        for screen in (await laptop.sync(), await phone.sync()):
            assert ":bob!~bob@127.0.0.1 PRIVMSG #room :hi all" in screen
            assert ":bob!~bob@127.0.0.1 PRIVMSG alice :hi you" in screen

        await laptop.send("PRIVMSG #room :from the laptop", "PRIVMSG bob :psst")
        await laptop.sync()
        on_phone = await phone.sync()
        assert ":alice!~alice@127.0.0.1 PRIVMSG #room :from the laptop" in on_phone  # what "I" said
        assert ":alice!~alice@127.0.0.1 PRIVMSG bob psst" in on_phone
        assert commands(await bob.sync()) == ["PRIVMSG", "PRIVMSG"]

        await laptop.send("NICK alicia")
        await laptop.sync()
        assert ":alice!~alice@127.0.0.1 NICK alicia" in await phone.sync()
        await bob.send("PRIVMSG alicia :renamed you?")
        await bob.sync()
        assert any(line.endswith("PRIVMSG alicia :renamed you?") for line in await phone.sync())
        for client in (laptop, phone, bob):
            await client.close()


async def test_the_user_leaves_with_its_last_device_only():
    async with running_gateway(users_url="http://users", always_on=False) as gateway:
        await with_users(gateway)
        laptop, _ = await device(gateway)
        phone, _ = await device(gateway)
        await laptop.send("JOIN #room")
        await laptop.sync()
        bob = await connect(gateway)
        await bob.register("bob")
        await bob.send("JOIN #room")
        await bob.sync()
        await phone.sync()
        await laptop.send("QUIT :bye")
        await laptop.sync_closed()
        assert await bob.sync() == []  # the user is still here, on its phone
        await phone.send("PART #room")
        assert ":alice!~alice@127.0.0.1 PART #room" in await phone.sync()
        assert await bob.sync() == [":alice!~alice@127.0.0.1 PART #room"]
        await phone.send("QUIT")
        await phone.sync_closed()
        await bob.send("WHOIS alice")
        assert commands(await bob.sync())[0] == "401"
        await bob.close()


async def alice_and_bob_in_a_room(gateway: IrcServer) -> tuple[LineClient, LineClient]:
    """Alice's device (always-on by default) and Bob (told of AWAY) in #room."""
    await with_users(gateway)
    laptop, _ = await device(gateway)
    await laptop.send("JOIN #room")
    await laptop.sync()
    bob = await connect(gateway)
    await bob.register("bob", caps="away-notify")
    await bob.send("JOIN #room")
    await bob.sync()
    return laptop, bob


async def test_an_always_on_user_stays_away_and_its_device_comes_back_to_what_it_missed():
    clock = Clock(time.time())  # the history's ids are Redis's time: the real one
    async with running_gateway(users_url="http://users", clock=clock) as gateway:
        laptop, bob = await alice_and_bob_in_a_room(gateway)
        await laptop.send("QUIT")
        await laptop.sync_closed()
        assert await bob.sync() == [":alice!~alice@127.0.0.1 AWAY Disconnected"]  # no QUIT
        clock.now += 0.005
        await asyncio.sleep(0.01)
        await bob.send("PRIVMSG #room :while you were out", "WHOIS alice")
        assert ":irc.test 301 bob alice Disconnected" in await bob.sync()

        back, welcome = await device(gateway, caps="batch server-time")
        assert any(line.endswith(":alice!~alice@127.0.0.1 JOIN #room") for line in welcome)
        replayed = [line for line in welcome if "while you were out" in line]
        assert len(replayed) == 1 and replayed[0].startswith("@batch=")
        assert any(" BATCH +" in line and "chathistory #room" in line for line in welcome)
        assert await bob.sync() == [":alice!~alice@127.0.0.1 AWAY"]  # back
        await back.close(), await bob.close()


async def test_a_device_not_logged_in_to_the_account_gets_433_and_the_user_keeps_its_nick():
    async with running_gateway(users_url="http://users") as gateway:
        await with_users(gateway)
        alice, _ = await device(gateway)
        thief = await connect(gateway)
        await thief.send("CAP LS 302", "NICK alice", "USER t 0 * :T", "CAP END")
        assert commands(await thief.sync()) == ["CAP", "433"]
        other, answer = await device(gateway, nick="alice", account="dave", password="hunter22")
        assert "433" in commands(answer) and "001" not in commands(answer)
        plain_client = await connect(gateway)  # no CAP: it cannot log in, 433 at once
        await plain_client.send("NICK alice")
        assert commands(await plain_client.sync()) == ["433"]
        assert await gateway.store.uid_of("alice") is not None
        await alice.send("WHOIS alice")
        assert "311" in commands(await alice.sync())
        for client in (alice, thief, other, plain_client):
            await client.close()


async def test_a_user_has_at_most_its_device_limit():
    async with running_gateway(users_url="http://users", device_limit=2) as gateway:
        await with_users(gateway)
        first, _ = await device(gateway)
        second, answer = await device(gateway)
        assert "001" in commands(answer)
        third, answer = await device(gateway)
        assert ":irc.test 433 * alice :Your account is connected from too many devices" in answer
        await third.send("NICK alice_phone")
        assert "001" in commands(await third.sync())  # another nick: a user of its own
        for client in (first, second, third):
            await client.close()


async def test_devices_on_two_replicas_follow_each_other():
    shared = fakeredis.FakeServer()
    async with (running_gateway(shared, instance="one", users_url="http://users") as one,
                running_gateway(shared, instance="two", users_url="http://users") as two):
        await with_users(one), await with_users(two)
        laptop, _ = await device(one)
        phone, welcome = await device(two)
        assert "001" in commands(welcome)
        uid = next(iter(one.clients))
        assert sorted((await one.store.devices(uid)).values()) == ["one", "two"]
        assert list(two.clients) == [uid]
        bob = await connect(one)
        await bob.register("bob")

        await laptop.send("JOIN #room")
        await laptop.sync()
        seen = await phone.sync_until(lambda line: " 366 " in line)
        assert ":alice!~alice@127.0.0.1 JOIN #room" in seen
        await bob.send("JOIN #room", "PRIVMSG #room :hello there")
        await bob.sync()
        assert any(line.endswith("PRIVMSG #room :hello there") for line in
                   await phone.sync_until(lambda line: "hello" in line))

        await phone.send("PRIVMSG bob :from my phone")
        await phone.sync()
        assert any("from my phone" in line for line in await laptop.sync_until(lambda line: "phone" in line))
        await phone.send("AWAY :lunch")
        await phone.sync()
        await bob.send("WHOIS alice")
        assert ":irc.test 301 bob alice lunch" in await bob.sync()

        await phone.send("NICK alicia")
        await phone.sync()
        renamed = await laptop.sync_until(lambda line: "NICK" in line)
        assert any(line.endswith("NICK alicia") for line in renamed)
        await bob.send("PRIVMSG alicia :both of you?")
        await bob.sync()
        assert any("both of you?" in line for line in await phone.sync_until(lambda line: "both of" in line))
        assert any("both of you?" in line for line in await laptop.sync())

        await laptop.send("PART #room")
        await laptop.sync()
        assert any(" PART #room" in line for line in await phone.sync_until(lambda line: "PART" in line))
        assert "#room" not in next(iter(two.clients.values()))[0].channels
        for client in (laptop, phone, bob):
            await client.close()


async def test_a_dead_replicas_always_on_user_stays_and_expires_later():
    shared = fakeredis.FakeServer()
    clock = Clock()
    async with running_gateway(shared, instance="alive", users_url="http://users", clock=clock,
                               always_on_expire=3600) as alive:
        await with_users(alive, always_on={"Dave": False})
        watcher = await connect(alive)
        await watcher.register("watcher", caps="away-notify")
        await watcher.send("JOIN #room")
        await watcher.sync()
        async with running_gateway(shared, instance="doomed", users_url="http://users",
                                   clock=clock) as doomed:
            await with_users(doomed, always_on={"Dave": False})
            alice, _ = await device(doomed)
            dave, _ = await device(doomed, nick="dave", account="dave", password="hunter22")
            await alice.send("JOIN #room")
            await dave.send("JOIN #room")
            await alice.sync(), await dave.sync()
            await forget_everything(doomed)
        await watcher.sync_until(lambda line: "dave" in line and "JOIN" in line)
        await sweep_dead(alive, "doomed")
        told = await watcher.sync_until(lambda line: "QUIT" in line)
        assert ":dave!~dave@127.0.0.1 QUIT :*.net *.split" in told  # dave chose not to be always-on
        assert ":alice!~alice@127.0.0.1 AWAY Disconnected" in told + await watcher.sync()
        assert await alive.store.uid_of("alice") is not None

        clock.now += 3601
        await expire(alive.ctx)
        assert any("alice" in line and "QUIT" in line for line in await watcher.sync_until(
            lambda line: "QUIT" in line))
        assert await alive.store.uid_of("alice") is None
        await watcher.close(), await alice.close(), await dave.close()


async def test_kill_ends_an_always_on_user_with_or_without_devices():
    async with running_gateway(users_url="http://users", irc_opers="root:pw") as gateway:
        await with_users(gateway)
        oper = await connect(gateway)
        await oper.register("oper")
        await oper.send("OPER root pw")
        await oper.sync()
        alice, _ = await device(gateway)
        await alice.send("QUIT")
        await alice.sync_closed()
        assert await gateway.store.uid_of("alice") is not None  # always-on, no device
        await oper.send("KILL alice :gone")
        await oper.sync()
        assert await gateway.store.uid_of("alice") is None
        phone, _ = await device(gateway)
        await oper.send("KILL alice :again")
        await oper.sync()
        await phone.sync_closed()
        assert await gateway.store.uid_of("alice") is None
        await oper.close()


async def test_a_dead_replica_is_swept_by_one_survivor_only():
    shared = fakeredis.FakeServer()
    async with (running_gateway(shared, instance="left") as left,
                running_gateway(shared, instance="right") as right):
        watcher = await connect(left)
        await watcher.register("watcher")
        await watcher.send("JOIN #room")
        await watcher.sync()
        async with running_gateway(shared, instance="doomed") as doomed:
            victim = await connect(doomed)
            await victim.register("victim")
            await victim.send("JOIN #room")
            await victim.sync()
            await forget_everything(doomed)
        await watcher.sync_until(lambda line: "victim" in line and "JOIN" in line)
        await sweep_dead(left, "doomed")
        assert await right.store.claim_sweep("doomed", "right", 60) is False  # taken by left
        quits = [line for line in await watcher.sync_until(lambda line: "QUIT" in line) + await watcher.sync()
                 if " QUIT " in line]
        assert quits == [":victim!~victim@127.0.0.1 QUIT :*.net *.split"]
        await watcher.close(), await victim.close()


def answered_later(answer: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
    """`answer`, whose reply comes in a later turn of the loop, as a real Redis's does."""

    async def call(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0.01)
        return await answer(*args, **kwargs)

    return call


async def test_a_connection_cancelled_again_during_its_clean_up_still_leaves_its_user_away() -> None:
    # A WebSocket's handler is cancelled as its socket closes, at times again while the
    # clean-up runs: cut short, it left the always-on user neither away nor gone.
    async with running_gateway(users_url="http://users") as gateway:
        laptop, bob = await alice_and_bob_in_a_room(gateway)
        store = gateway.store
        for name in ("detach", "release_nick", "connect_ip"):  # answered in a later turn, as Redis is
            setattr(store, name, answered_later(getattr(store, name)))
        listeners = gateway.listeners
        served = {task for task in listeners._tasks if task.get_coro().__name__ == "serve"}  # type: ignore[union-attr]
        for _ in range(50):  # every turn until the connections' tasks are done
            for task in served:
                task.cancel()
            if all(task.done() for task in served) and not listeners._tasks:
                break
            await asyncio.sleep(0)
        while listeners._tasks:  # what the cancellations could not stop
            await asyncio.sleep(0.01)
        assert gateway.roster.registered == 0
        assert not await gateway.store.redis.exists(gateway.store.keys.address("127.0.0.1"))  # uncounted
        fresh = await connect(gateway)
        await fresh.register("carol")
        await fresh.send("WHOIS alice", "WHOIS bob")
        lines = await fresh.sync()
        assert ":irc.test 301 carol alice Disconnected" in lines  # kept, away: always-on
        assert any(" 401 carol bob " in line for line in lines)  # gone, nick freed
        await fresh.close()
        await laptop.close()
        await bob.close()
