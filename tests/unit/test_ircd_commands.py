"""The gateway's commands, each rule with its numeric, on fakeredis over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import NoReturn

import fakeredis
import pytest
from redis.exceptions import RedisError

from apps.ircd.lines import server_time
from apps.ircd.server import IrcServer
from tests.unit.ircd_support import (
    AtOnce,
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


@pytest.fixture
async def gateway() -> AsyncIterator[IrcServer]:
    async with running_gateway() as server:
        yield server


@pytest.fixture
async def pair(gateway: IrcServer) -> AsyncIterator[tuple[LineClient, LineClient]]:
    alice, bob = await connect(gateway), await connect(gateway)
    await alice.register("alice")
    await bob.register("bob")
    yield alice, bob
    await alice.close()
    await bob.close()


async def test_registration_sends_welcome_isupport_lusers_and_motd(gateway: IrcServer):
    client = await connect(gateway)
    got = commands(await client.register("alice"))
    assert got[:4] == ["001", "002", "003", "004"]
    assert "005" in got and "251" in got and got[-1] == "376"
    await client.close()


async def test_lusers_counts_who_has_not_registered_who_has_and_the_peak(gateway: IrcServer):
    # A connection is counted unregistered as it comes in (with its address, in one round
    # trip) and out of it as it registers (with its user record, in one round trip).
    waiting = await connect(gateway)
    alice, bob = await connect(gateway), await connect(gateway)
    await alice.register("alice")
    await bob.register("bob")
    await bob.close()
    for _ in range(20):
        await alice.send("LUSERS")
        replies = {line.split()[1]: line for line in await alice.sync()}
        if replies["265"].split()[3:5] == ["1", "2"]:
            break
    assert replies["253"].split()[3] == "1"  # the one still waiting to register
    assert replies["265"].split()[3:5] == ["1", "2"]  # one user now, two at most
    await waiting.close()
    await alice.close()


async def test_a_registration_redis_failed_half_way_is_closed_with_a_reason_and_leaves_nothing(
        gateway: IrcServer):
    # Redis fails once the user is half made (in the roster, its record not written): rather
    # than a user that never gets its welcome, the client is told and closed, and its nick is
    # free again for the client that reconnects.
    register_user = gateway.store.register_user

    async def failing(*args: object, **kwargs: object) -> NoReturn:
        raise RedisError("Timeout reading from redis")

    gateway.store.register_user = failing  # type: ignore[method-assign]
    client = await connect(gateway)
    await client.send("NICK alice", "USER alice 0 * :Alice")
    lines = await client.sync_closed()
    assert "001" not in commands(lines)
    assert lines[-1] == "ERROR :Closing link: Server state unavailable, try again later"
    gateway.store.register_user = register_user  # type: ignore[method-assign]
    again = await connect(gateway)
    assert commands(await again.register("alice"))[0] == "001"
    assert [c.nick for c in gateway.roster.connections] == ["alice"]
    await again.close()


async def alice_and_bob_in(gateway: IrcServer, channels: str) -> tuple[LineClient, LineClient]:
    """alice and bob, registered, both in `channels` (comma-separated)."""
    alice, bob = await connect(gateway), await connect(gateway)
    for client, nick in ((alice, "alice"), (bob, "bob")):
        await client.register(nick)
        await client.send(f"JOIN {channels}")
        await client.sync()
    return alice, bob


async def test_a_clean_up_redis_failed_is_tried_again_until_the_user_is_gone():
    # Thousands of connections ending at once find no pooled connection to Redis free within
    # REDIS_TIMEOUT: given up, each would leave a ghost holding its nick and its channels on
    # a live replica, which no sweep clears.
    async with running_gateway(cleanup_retry=0.01, cleanup_retry_cap=0.02) as gateway:
        alice, bob = await alice_and_bob_in(gateway, "#room")
        release_nick, failures = gateway.store.release_nick, []

        async def failing_thrice(nick_cf: str, uid: str) -> None:
            if len(failures) < 3:
                failures.append(nick_cf)
                raise RedisError("No connection available.")
            await release_nick(nick_cf, uid)

        gateway.store.release_nick = failing_thrice  # type: ignore[method-assign]
        await alice.send("QUIT :bye")
        await alice.sync_closed()  # closed once its state is freed: after the three failures
        assert any(" QUIT " in line for line in await bob.sync_until(lambda line: " QUIT " in line))
        assert failures == ["alice"] * 3
        again = await connect(gateway)
        assert commands(await again.register("alice"))[0] == "001"  # the nick is free
        await bob.send("NAMES #room")
        names = next(line for line in await bob.sync() if " 353 " in line)
        assert names.split("#room", 1)[1].replace(":", "").split() == ["bob"]  # alice's ghost is not in it
        await again.close(), await bob.close()


async def names_in(client: LineClient, channel: str) -> list[str]:
    """The nicks NAMES gives for `channel`, as `client` asks."""
    await client.send(f"NAMES {channel}")
    names = next(line for line in await client.sync() if " 353 " in line)
    return names.split(channel, 1)[1].replace(":", "").replace("@", "").split()


async def test_a_user_in_many_channels_leaves_them_all_at_once():
    # Each channel is left on its own keys: twenty channels one after the other were twenty
    # times the round trips of one, for every user that quits or is swept.
    channels = [f"#c{i}" for i in range(5)]
    async with running_gateway() as gateway:
        alice, bob = await alice_and_bob_in(gateway, ",".join(channels))
        leaves = AtOnce(gateway.store, "leave")
        await alice.send("QUIT :bye")
        await alice.sync_closed()
        assert leaves.most == len(channels)
        for channel in channels:
            assert await names_in(bob, channel) == ["bob"]
        assert gateway.roster.local.keys() == set(channels)  # bob's, and alice is in none of them
        assert all(c.nick == "bob" for members in gateway.roster.local.values() for c in members)
        await bob.close()


async def test_a_channel_redis_did_not_take_is_left_on_the_next_try_and_the_others_at_once():
    channels = ["#a", "#b", "#c"]
    async with running_gateway(cleanup_retry=0.01, cleanup_retry_cap=0.02) as gateway:
        alice, bob = await alice_and_bob_in(gateway, ",".join(channels))
        leave, tried = gateway.store.leave, []

        async def failing_once_on_b(cf: str, uid: str) -> bool:
            tried.append(cf)
            if cf == "#b" and tried.count("#b") == 1:
                raise RedisError("No connection available.")
            return await leave(cf, uid)

        gateway.store.leave = failing_once_on_b  # type: ignore[method-assign]
        await alice.send("QUIT :bye")
        await alice.sync_closed()  # closed once its state is freed: after the second try
        assert sorted(tried) == ["#a", "#b", "#b", "#c"]  # the channels left were not asked again
        for channel in channels:
            assert await names_in(bob, channel) == ["bob"]
        again = await connect(gateway)
        assert commands(await again.register("alice"))[0] == "001"
        await again.close(), await bob.close()


async def test_connections_ending_together_are_cleaned_up_a_few_at_a_time():
    # Thousands of connections ending at once each held its clean-up's chain of Redis calls
    # alive at once: the garbage collector walked them all, again and again (docs/ircd.md).
    async with running_gateway(irc_cleanups_at_once=2) as gateway:
        clients = [await connect(gateway) for _ in range(6)]
        for i, client in enumerate(clients):
            await client.register(f"user{i}")
        releases = AtOnce(gateway.store, "release_nick")
        for client in clients:
            await client.send("QUIT")
        for client in clients:
            await client.sync_closed()
        assert releases.most == 2
        assert [await gateway.store.uid_of(f"user{i}") for i in range(6)] == [None] * 6


async def test_an_address_whose_uncounting_failed_is_uncounted_later_not_held_at_its_limit():
    async with running_gateway(cleanup_retry=0.01, cleanup_retry_cap=0.02,
                               max_connections_per_ip=1) as gateway:
        connect_ip, failed = gateway.store.connect_ip, []

        async def failing_once(ip: str, instance: str, delta: int, **kwargs: bool) -> int:
            if delta < 0 and not failed:
                failed.append(ip)
                raise RedisError("No connection available.")
            return await connect_ip(ip, instance, delta, **kwargs)

        gateway.store.connect_ip = failing_once  # type: ignore[method-assign]
        first = await connect(gateway)
        await first.register("first")
        await first.send("QUIT")
        await first.sync_closed()
        for _ in range(50):
            if failed and not gateway.roster.connections:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        second = await connect(gateway)  # the only connection its address may have
        assert commands(await second.register("second"))[0] == "001"
        await second.close()


async def test_a_join_redis_failed_before_anyone_was_told_is_undone_and_can_be_asked_again(
        pair: tuple[LineClient, LineClient], gateway: IrcServer):
    alice, bob = pair
    await bob.send("JOIN #room")
    await bob.sync()
    channel = gateway.store.channel

    async def failing(*args: object, **kwargs: object) -> NoReturn:
        raise RedisError("Timeout reading from redis")

    gateway.store.channel = failing  # type: ignore[method-assign]
    await alice.send("JOIN #room")
    assert commands(await alice.sync()) == ["400"]
    gateway.store.channel = channel  # type: ignore[method-assign]
    assert "JOIN" not in commands(await bob.sync())  # bob was never told
    await bob.send("NAMES #room")
    assert "alice" not in (await bob.sync())[0]
    await alice.send("JOIN #room")  # asked again, it is a join like any other
    got = commands(await alice.sync())
    assert got[0] == "JOIN" and "366" in got
    assert "JOIN" in commands(await bob.sync())


async def test_commands_before_registration_get_451(gateway: IrcServer):
    client = await connect(gateway)
    await client.send("JOIN #x")
    assert commands(await client.sync()) == ["451"]
    await client.close()


async def test_server_password_is_required_when_set():
    async with running_gateway(irc_password="sesame") as gateway:
        client = await connect(gateway)
        await client.send("NICK bob", "USER bob 0 * :Bob")
        lines = await client.sync()
        assert "464" in commands(lines) and any(line.startswith("ERROR") for line in lines)
        good = await connect(gateway)
        await good.send("PASS sesame")
        assert "001" in commands(await good.register("carol"))
        await client.close()
        await good.close()


async def test_nick_errors(pair: tuple[LineClient, LineClient]):
    alice, _ = pair
    await alice.send("NICK", "NICK 1bad", "NICK BOB")
    assert commands(await alice.sync()) == ["431", "432", "433"]


async def test_nick_change_reaches_channel_members_once(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #a,#b")
    await bob.send("JOIN #a,#b")
    await alice.sync(), await bob.sync(), await alice.sync()
    await alice.send("NICK alicia")
    nick = ":alice!~alice@127.0.0.1 NICK alicia"
    assert [line for line in await alice.sync() if " NICK " in line] == [nick]
    assert [line for line in await bob.sync() if " NICK " in line] == [nick]


async def test_join_privmsg_part_and_quit(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #chat")
    assert commands(await alice.sync()) == ["JOIN", "353", "366"]
    await bob.send("JOIN #Chat")
    assert "@alice bob" in " ".join(await bob.sync())
    assert commands(await alice.sync()) == ["JOIN"]
    await alice.send("PRIVMSG #chat :hello", "NOTICE #chat :note")
    assert await alice.sync() == []  # no echo without echo-message
    assert await bob.sync() == [":alice!~alice@127.0.0.1 PRIVMSG #chat hello",
                                ":alice!~alice@127.0.0.1 NOTICE #chat note"]
    await bob.send("PART #chat :later")
    assert commands(await bob.sync()) == ["PART"]
    assert await alice.sync() == [":bob!~bob@127.0.0.1 PART #chat later"]
    await bob.send("JOIN #chat", "QUIT :gone")
    await bob.sync()
    assert await alice.sync() == [":bob!~bob@127.0.0.1 JOIN #chat", ":bob!~bob@127.0.0.1 QUIT :Quit: gone"]


async def test_message_errors(pair: tuple[LineClient, LineClient]):
    alice, _ = pair
    await alice.send("PRIVMSG", "PRIVMSG bob", "PRIVMSG nobody :x", "PRIVMSG #nowhere :x",
                     "PRIVMSG a,b,c,d,e :x", "NOTICE nobody :x")
    assert commands(await alice.sync()) == ["411", "412", "401", "403", "407"]


async def test_no_external_messages_moderated_and_bans(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #m")
    await alice.sync()
    await bob.send("PRIVMSG #m :outside")
    assert commands(await bob.sync()) == ["404"]
    await bob.send("JOIN #m")
    await bob.sync()
    await alice.send("MODE #m +m")
    await alice.sync()
    await bob.send("PRIVMSG #m :muted")
    assert commands(await bob.sync()) == ["MODE", "404"]
    await alice.send("MODE #m +v bob")
    await alice.sync()
    await bob.sync()
    await bob.send("PRIVMSG #m :voiced")
    await bob.sync()
    assert any("voiced" in line for line in await alice.sync())
    await alice.send("MODE #m -mv+b bob bob")
    await alice.sync()
    await bob.send("PRIVMSG #m :banned", "PART #m", "JOIN #m")
    assert commands(await bob.sync()) == ["MODE", "404", "PART", "474"]


async def test_channel_key_limit_and_invite_only(gateway: IrcServer, pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #k", "MODE #k +k secret")
    await alice.sync()
    channel = await gateway.store.channel("#k")
    assert channel is not None and channel.modes == "knt"  # the JOIN and leave scripts read them
    await bob.send("JOIN #k", "JOIN #k wrong", "JOIN #k secret")
    assert commands(await bob.sync()) == ["475", "475", "JOIN", "353", "366"]
    await alice.send("JOIN #l", "MODE #l +l 1", "JOIN #i", "MODE #i +i")
    await alice.sync()
    await bob.send("JOIN #l", "JOIN #i")
    assert commands(await bob.sync()) == ["471", "473"]
    await alice.send("INVITE bob #i")
    assert commands(await alice.sync()) == ["341"]
    await bob.send("JOIN #i")
    assert commands(await bob.sync()) == ["INVITE", "JOIN", "353", "366"]


async def test_mode_query_and_errors(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #q", "MODE #q", "MODE #q +z", "MODE #q +o nobody", "MODE #q +o bob")
    got = await alice.sync()
    assert commands(got)[3:] == ["324", "329", "472", "401", "441"]
    assert ":irc.test 324 alice #q +nt" in got
    await bob.send("JOIN #q", "MODE #q +t", "MODE #nope +t", "MODE alice +i", "MODE bob +x", "MODE bob +i",
                   "MODE bob")
    assert commands(await bob.sync())[3:] == ["482", "403", "502", "501", "MODE", "221"]


async def test_topic(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #t", "TOPIC #t", "TOPIC #t :the topic", "TOPIC #t")
    assert commands(await alice.sync())[3:] == ["331", "TOPIC", "332", "333"]
    await bob.send("TOPIC #t :x", "JOIN #t", "TOPIC #t :mine")
    got = await bob.sync()
    assert commands(got) == ["442", "JOIN", "332", "333", "353", "366", "482"]


async def test_kick(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #k")
    await alice.sync()
    await bob.send("JOIN #k", "KICK #k alice")
    assert commands(await bob.sync())[-1] == "482"
    await alice.send("KICK #k bob :out", "KICK #k bob", "KICK #k ghost")
    assert commands(await alice.sync())[-3:] == ["KICK", "441", "401"]
    assert await bob.sync() == [":alice!~alice@127.0.0.1 KICK #k bob out"]
    await alice.send("PRIVMSG #k :after")
    await alice.sync()
    assert await bob.sync() == []


async def test_who_whois_whowas_ison_userhost(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #w", "AWAY :lunch")
    await alice.sync()
    await bob.send("WHO #w", "WHOIS alice", "ISON alice nobody", "USERHOST alice bob")
    got = await bob.sync()
    assert ":irc.test 352 bob #w ~alice 127.0.0.1 irc.test alice G@ :0 Real alice" in got
    assert ":irc.test 319 bob alice @#w" in got and ":irc.test 301 bob alice lunch" in got
    assert ":irc.test 303 bob alice" in got
    assert ":irc.test 302 bob :alice=-~alice@127.0.0.1 bob=+~bob@127.0.0.1" in got
    await alice.send("QUIT")
    await alice.sync()  # the connection ends once its state is freed
    await bob.send("WHOWAS alice", "WHOWAS nobody", "WHOIS alice")
    assert commands(await bob.sync()) == ["314", "312", "369", "406", "369", "401", "318"]


async def test_away_notify_and_privmsg_to_away_user():
    async with running_gateway() as gateway:
        alice, bob = await connect(gateway), await connect(gateway)
        await alice.register("alice")
        await bob.register("bob", caps="away-notify")
        await alice.send("JOIN #a")
        await bob.send("JOIN #a")
        await alice.sync(), await bob.sync()
        await alice.send("AWAY :brb")
        assert commands(await alice.sync())[-1] == "306"
        assert await bob.sync() == [":alice!~alice@127.0.0.1 AWAY brb"]
        await bob.send("PRIVMSG alice :there?")
        assert commands(await bob.sync()) == ["301"]
        await alice.close(), await bob.close()


async def test_echo_message_server_time_and_message_tags():
    clock = Clock(1_800_000_000.5)
    async with running_gateway(clock=clock) as gateway:
        alice, bob = await connect(gateway), await connect(gateway)
        await alice.register("alice", caps="echo-message server-time message-tags")
        await bob.register("bob", caps="message-tags")
        await alice.send("JOIN #e")
        await bob.send("JOIN #e")
        await alice.sync(), await bob.sync()
        await alice.send("@+draft/react=1 PRIVMSG #e :tagged", "@+typing=active TAGMSG bob")
        echo = await alice.sync()
        assert echo[0].startswith("@+draft/react=1;msgid=")
        msgid = echo[0].split("msgid=")[1].split(";")[0]  # a stored message's time is its id's
        assert f"time={server_time(int(msgid.split('-')[0]) / 1000)}" in echo[0]
        await alice.send("@+typing=active TAGMSG #e")  # not stored: the gateway's own clock
        assert "time=2027-01-15T08:00:00.500Z" in (await alice.sync())[0]
        got = await bob.sync()
        assert got[0].startswith("@+draft/react=1;msgid=") and got[0].endswith("PRIVMSG #e tagged")
        assert got[1].startswith("@+typing=active;msgid=") and got[1].endswith("TAGMSG bob")
        await alice.close(), await bob.close()


async def test_cap_negotiation(gateway: IrcServer):
    client = await connect(gateway)
    await client.send("CAP LS 302", "CAP REQ :server-time nonsense", "CAP REQ :server-time",
                      "CAP LIST", "CAP BOGUS", "NICK c", "USER c 0 * :C")
    got = await client.sync()
    assert "NAK" in got[1] and "ACK" in got[2] and "server-time" in got[3]
    assert commands(got)[4] == "410" and "001" not in commands(got)  # waits for CAP END
    await client.send("CAP END")
    assert "001" in commands(await client.sync())
    await client.close()


async def test_monitor(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("MONITOR + bob,carol", "MONITOR L")
    got = await alice.sync()
    assert ":irc.test 730 alice bob!~bob@127.0.0.1" in got and ":irc.test 731 alice carol" in got
    assert commands(got)[-2:] == ["732", "733"]
    await bob.send("QUIT")
    await bob.sync()
    assert await alice.sync() == [":irc.test 731 alice bob"]


async def test_chathistory_replays_a_batch_with_the_live_msgids():
    async with running_gateway() as gateway:
        alice = await connect(gateway)
        await alice.register("alice", caps="batch server-time message-tags draft/chathistory echo-message")
        await alice.send("JOIN #h", *[f"PRIVMSG #h :m{i}" for i in range(5)])
        live = [line for line in await alice.sync() if "PRIVMSG" in line]
        await alice.send("CHATHISTORY LATEST #h * 3", "CHATHISTORY LATEST #nope * 3")
        got = await alice.sync()
        assert got[0].startswith(":irc.test BATCH +") and got[0].endswith("chathistory #h")
        replayed = got[1:4]
        assert [line.rsplit(" ", 1)[1] for line in replayed] == ["m2", "m3", "m4"]
        msgid = live[2].split("msgid=")[1].split(";")[0].split(" ")[0]
        assert f"msgid={msgid}" in replayed[0]
        assert got[4].startswith(":irc.test BATCH -")
        assert "INVALID_TARGET" in got[5]
        await alice.send(f"CHATHISTORY BEFORE #h msgid={msgid} 10", f"CHATHISTORY AFTER #h msgid={msgid} 1")
        got = await alice.sync()
        assert [line.rsplit(" ", 1)[1] for line in got if "PRIVMSG" in line] == ["m0", "m1", "m3"]
        await alice.close()


async def test_list_and_names(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("JOIN #one,#two", "TOPIC #one :hello", "MODE #two +s")
    await alice.sync()
    await bob.send("LIST", "NAMES #two", "NAMES")
    got = await bob.sync()
    assert ":irc.test 322 bob #one 1 hello" in got and not any("#two 1" in line for line in got)
    assert commands(got)[-2:] == ["366", "366"]


async def test_too_many_channels_is_405():
    async with running_gateway(max_channels_per_user=2) as gateway:
        client = await connect(gateway)
        await client.register("c")
        await client.send("JOIN #a,#b,#c")
        assert commands(await client.sync())[-1] == "405"
        await client.close()


async def test_connections_per_ip_are_capped_across_replicas():
    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="one", max_connections_per_ip=2) as one, \
            running_gateway(shared, instance="two", max_connections_per_ip=2) as two:
        first, second = await connect(one), await connect(two)
        await first.sync(), await second.sync()
        third = await connect(two)
        line = await third.reader.readline()
        assert line.startswith(b"ERROR") and b"too many connections" in line
        await first.close(), await second.close(), await third.close()


async def test_an_address_redis_cannot_count_is_still_held_to_its_limit_by_the_replica() -> None:
    # The attack: drain Redis's pool (or wait for an outage), then open connection after
    # connection from one address, none of them counted.
    async with running_gateway(max_connections_per_ip=2) as gateway:
        async def unavailable(ip: str, instance: str, delta: int, **kwargs: bool) -> int:
            raise RedisError("No connection available.")

        gateway.store.connect_ip = unavailable  # type: ignore[method-assign]
        first, second = await connect(gateway), await connect(gateway)
        assert commands(await first.register("first"))[0] == "001"  # still served, uncounted
        assert commands(await second.register("second"))[0] == "001"
        third = await connect(gateway)
        assert any("too many connections" in line for line in await third.sync_closed())
        await first.send("QUIT")
        await first.sync_closed()
        for _ in range(50):  # its clean-up runs after the close its client sees
            if len(gateway.roster.connections) == 1:
                break
            await asyncio.sleep(0.02)
        again = await connect(gateway)  # one left of the two: room for another
        assert commands(await again.register("again"))[0] == "001"
        await second.close()
        await again.close()


BAD_INPUT = [
    (b"PRIVMSG bob :" + b"x" * 600, ["417"]),
    (b"@+t=" + b"y" * 5000 + b" PRIVMSG bob :x", ["417"]),
    (b"x" * 20000, ["417"]),
    (b"PRIVMSG bob :\xff\xfe", ["FAIL"]),
    (b"FROBNICATE", ["421"]),
    (b"MODE", ["461"]),
    (b"JOIN", ["461"]),
    (b"JOIN bad-name", ["403"]),
    (b"KICK #x", ["461"]),
    (b"PING", ["409"]),
    (b"CHATHISTORY FOO #x * 1", ["FAIL"]),
    (b":src", []),
    (b"\x00\x01", ["400"]),
]


@pytest.mark.parametrize(("raw", "expected"), BAD_INPUT, ids=range(len(BAD_INPUT)))
async def test_bad_input_gets_its_numeric_and_the_connection_stays_healthy(
        pair: tuple[LineClient, LineClient], raw: bytes, expected: list[str]):
    alice, bob = pair
    await alice.send(raw)
    assert commands(await alice.sync()) == expected
    assert await bob.sync() == []  # nothing spread
    await alice.send("PRIVMSG bob :still here")
    await alice.sync()
    assert await bob.sync() == [":alice!~alice@127.0.0.1 PRIVMSG bob :still here"]


async def test_a_flood_is_slowed_down_not_dropped():
    clock = Clock()
    async with running_gateway(clock=clock, flood_lines=5, flood_window=1.0) as gateway:
        alice, bob = await connect(gateway), await connect(gateway)
        await alice.register("alice")
        await bob.register("bob")
        await alice.send(*[f"PRIVMSG bob :{i}" for i in range(8)])
        await alice.sync()
        got = await bob.sync()
        assert [line.rsplit(" ", 1)[1] for line in got] == [str(i) for i in range(8)]
        assert gateway.counts["throttled"] >= 1  # the 6th line of the window waited for the next
        await alice.close(), await bob.close()


async def test_state_is_freed_when_clients_leave(gateway: IrcServer):
    client = await connect(gateway)
    await client.register("alice")
    await client.send("JOIN #gone", "QUIT")
    await client.sync()
    await client.close()
    store = gateway.store
    for _ in range(50):
        if not gateway.clients:
            break
        import asyncio

        await asyncio.sleep(0.02)
    assert await store.uid_of("alice") is None
    assert await store.channel("#gone") is None and (await store.counts()).users == 0
    assert gateway.roster.local == {}


async def test_sasl_plain_logs_in_and_reserves_the_accounts_nick():
    async with running_gateway(users_url="http://users") as gateway:
        await serve_accounts(gateway, {"Alice": "sesame"})
        client = await connect(gateway)
        await client.send("CAP LS 302")
        assert "sasl=PLAIN" in (await client.sync())[0]
        await client.send("CAP REQ :sasl account-tag", "AUTHENTICATE PLAIN",
                          f"AUTHENTICATE {plain('alice', 'wrong')}")
        got = await client.sync()
        assert got[-2:] == ["AUTHENTICATE +", ":irc.test 904 * :SASL authentication failed"]
        await client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'sesame')}",
                          "NICK alice", "USER a 0 * :A", "CAP END", "WHOIS alice")
        got = await client.sync()
        assert commands(got)[1:3] == ["900", "903"]
        assert ":irc.test 330 alice alice Alice :is logged in as" in got
        thief = await connect(gateway)
        await thief.send("NICK ALICE", "USER t 0 * :T")
        assert commands(await thief.sync()) == ["433"]
        await thief.send("NICK thief")
        assert "001" in commands(await thief.sync())
        await thief.send("NICK Alice")
        assert commands(await thief.sync()) == ["433"]
        await client.close(), await thief.close()
        await gateway.accounts.http.aclose()


async def test_a_refused_change_of_case_keeps_the_nick_held():
    # The guest took "bob" before an account of that name existed; renaming itself "BOB" is
    # refused (the nick is reserved now), and it keeps holding "bob" meanwhile.
    async with running_gateway(users_url="http://users") as gateway:
        guest, other = await connect(gateway), await connect(gateway)
        await guest.register("bob")
        await other.register("other")
        await serve_accounts(gateway, {"Bob": "sesame"})
        await guest.send("NICK BOB")
        assert commands(await guest.sync()) == ["433"]
        await other.send("WHOIS bob")
        assert commands(await other.sync())[0] == "311"
        await guest.close(), await other.close()
        await gateway.accounts.http.aclose()


async def test_sasl_is_not_offered_without_a_users_service(gateway: IrcServer):
    client = await connect(gateway)
    await client.send("CAP LS 302", "AUTHENTICATE PLAIN")
    got = await client.sync()
    assert "sasl" not in got[0] and commands(got)[1] == "904"
    await client.close()


async def test_the_users_of_a_dead_replica_are_swept_from_the_other():
    from apps.ircd.sweeper import Sweeper

    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="alive") as alive:
        survivor = await connect(alive)
        await survivor.register("survivor")
        await survivor.send("JOIN #both")
        await survivor.sync()
        async with running_gateway(shared, instance="doomed") as doomed:
            victim = await connect(doomed)
            await victim.register("victim")
            await victim.send("JOIN #both")
            await victim.sync()
            await survivor.sync()
            await forget_everything(doomed)
        assert await alive.store.uid_of("victim") is not None
        live = {"alive"}

        async def directory() -> set[str]:
            return live

        sweeper = Sweeper(alive.ctx, directory, 60)
        await alive.store.add_instance("doomed", 0)
        assert await sweeper.sweep_once() == set()  # missing once: maybe a late heartbeat
        assert await sweeper.sweep_once() == {"doomed"}
        assert await alive.store.uid_of("victim") is None
        assert [status.letters for status in (await alive.store.members("#both")).values()] == ["o"]
        assert await survivor.sync() == [":victim!~victim@127.0.0.1 QUIT :*.net *.split"]
        await survivor.close()
        await victim.close()


async def test_a_swept_user_leaves_as_any_user_does_watchers_and_account_included():

    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="alive", users_url="http://users") as alive:
        await serve_accounts(alive, {"Victim": "sesame"})
        watcher = await connect(alive)
        await watcher.register("watcher")
        await watcher.send("MONITOR + victim")
        assert commands(await watcher.sync()) == ["731"]
        async with running_gateway(shared, instance="doomed", users_url="http://users",
                                   always_on=False) as doomed:
            await serve_accounts(doomed, {"Victim": "sesame"})
            victim = await connect(doomed)
            await victim.send("CAP REQ :sasl", "AUTHENTICATE PLAIN",
                              f"AUTHENTICATE {plain('victim', 'sesame')}", "NICK victim",
                              "USER victim 0 * :Victim", "CAP END")
            assert "001" in commands(await victim.sync())
            online = await watcher.sync_until(lambda line: " 730 " in line)
            assert online[-1] == ":irc.test 730 watcher victim!~victim@127.0.0.1"
            await forget_everything(doomed)
            await doomed.accounts.http.aclose()
        account_connections = alive.settings.chat_keys.account_connections("victim")
        assert await alive.store.redis.scard(account_connections) == 1
        await sweep_dead(alive, "doomed")
        assert await watcher.sync() == [":irc.test 731 watcher victim"]
        assert await alive.store.redis.scard(account_connections) == 0
        await watcher.send("WHOWAS victim")
        assert commands(await watcher.sync())[:2] == ["314", "312"]
        await watcher.close(), await victim.close()
        await alive.accounts.http.aclose()


async def test_a_nick_is_free_once_its_quit_is_seen_and_the_newcomer_keeps_hearing_it():
    import asyncio

    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="one") as one, running_gateway(shared, instance="two") as two:
        leaving, bob = await connect(one), await connect(two)
        await leaving.register("alice")
        await bob.register("bob")
        for client in (leaving, bob):
            await client.send("JOIN #q")
            await client.sync()
        # The leaver's clean-up is held half-way: what follows must not wait for it.
        held, remember = asyncio.Event(), one.store.remember

        async def held_remember(*args: object, **kwargs: object) -> None:
            await held.wait()
            await remember(*args, **kwargs)  # type: ignore[arg-type]

        one.store.remember = held_remember  # type: ignore[method-assign]
        await leaving.send("QUIT :brb")
        assert any(" QUIT " in line for line in await bob.sync_until(lambda line: " QUIT " in line))
        newcomer = await connect(one)
        assert commands(await newcomer.register("alice"))[0] == "001"  # not 433
        held.set()
        await newcomer.sync()  # the leaver's clean-up, nick subscription included, is over
        await bob.send("PRIVMSG alice :welcome back")
        got = await newcomer.sync_until(lambda line: "welcome back" in line)
        assert ":bob!~bob@127.0.0.1 PRIVMSG alice :welcome back" in got
        for client in (leaving, bob, newcomer):
            await client.close()


async def test_labeled_response_ack_single_line_and_batch(pair: tuple[LineClient, LineClient]):
    alice, bob = pair
    await alice.send("CAP REQ :labeled-response batch echo-message")
    await alice.sync()
    await alice.send("@label=a1 PONG x", "@label=a2 PRIVMSG bob :hi", "@label=a3 JOIN #lr")
    got = await alice.sync()
    assert got[0] == "@label=a1 :irc.test ACK"
    assert got[1] == "@label=a2 :alice!~alice@127.0.0.1 PRIVMSG bob hi"  # the echo, labelled
    assert got[2].startswith("@label=a3 :irc.test BATCH +") and got[2].endswith(" labeled-response")
    ref = got[2].split("BATCH +")[1].split(" ")[0]
    assert all(line.startswith(f"@batch={ref} ") for line in got[3:-1]) and got[-1].endswith(f"BATCH -{ref}")
    assert await bob.sync() == [":alice!~alice@127.0.0.1 PRIVMSG bob hi"]  # no label for others


def test_every_command_has_its_help_and_no_help_outlives_its_command():
    from apps.ircd.help import TOPICS
    from apps.ircd.registry import COMMANDS

    assert set(TOPICS) == set(COMMANDS)
    assert all(lines and all(len(line) < 400 for line in lines) for lines in TOPICS.values())


async def test_help_tells_what_a_command_does_lists_them_all_and_answers_524_otherwise(
        pair: tuple[LineClient, LineClient]):
    alice, _ = pair
    await alice.send("HELP privmsg")
    assert await alice.sync() == [
        ":irc.test 704 alice PRIVMSG :PRIVMSG <target>[,<target>...] <text>",
        ":irc.test 705 alice PRIVMSG :Sends a message to a channel (@#chan, +#chan: its operators or voiced)"
        " or a nick.",
        ":irc.test 706 alice PRIVMSG :End of /HELP",
    ]
    await alice.send("HELPOP")
    listed = await alice.sync()
    assert commands(listed) == ["704", *["705"] * (len(listed) - 2), "706"]
    named = " ".join(line.split(" :", 1)[1] for line in listed[1:-1]).split()
    assert {"JOIN", "WHOWAS", "HELP"} <= set(named)
    await alice.send("HELP NOSUCHTHING")
    assert await alice.sync() == [":irc.test 524 alice NOSUCHTHING :No help available on this topic"]
