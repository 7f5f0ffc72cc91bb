"""IRCv3 chghost (ircv3.net/specs/extensions/chghost) and the operator's CHGHOST that sends it,
on fakeredis over loopback sockets: two gateways sharing one fakeredis, the user changed on
the replica the operator is not on, a user with a device on each."""

from __future__ import annotations

import fakeredis

from apps.ircd.server import IrcServer
from tests.unit.ircd_support import LineClient, commands, connect, running_gateway
from tests.unit.test_ircd_capabilities import cap_ls, joined, replicas, sasl_after_registration
from tests.unit.test_ircd_devices import device, with_users

OPERS = "root:pw"


async def operator(gateway: IrcServer, nick: str = "oper") -> LineClient:
    """A registered IRC operator of `gateway` (IRC_OPERS), in no channel."""
    client = await connect(gateway)
    await client.register(nick)
    await client.send("OPER root pw")
    assert "381" in commands(await client.sync())
    return client


def changed(line: str) -> bool:
    return " CHGHOST " in line


async def test_chghost_is_offered():
    async with replicas(1) as (one,):
        assert (await cap_ls(one))["chghost"] == ""


async def test_an_operator_changes_the_host_of_a_user_on_the_other_replica():
    """"servers MUST send the CHGHOST message to other clients who share channels with the
    target client and who have enabled the chghost capability", and "SHOULD also send" it to
    the client itself; the source is the user's old prefix. Clients without it get nothing,
    and see the new prefix on what the user says next."""
    async with replicas(irc_opers=OPERS) as (one, two):
        oper = await operator(one)
        alice = await joined(one, "alice", "#c", "chghost")
        carol = await joined(one, "carol", "#c")  # no capability
        dave = await joined(two, "dave", "#c", "chghost")
        target = await joined(two, "target", "#c", "chghost")
        watcher = await connect(one)  # in no channel: MONITOR, with extended-monitor
        await watcher.register("watcher", caps="chghost extended-monitor")
        await watcher.send("MONITOR + target")
        for member in (alice, carol):
            await member.sync_until(lambda line: "target" in line and " JOIN " in line)
        await dave.sync(), await watcher.sync()

        await oper.send("CHGHOST target ident cloak/target")
        assert await oper.sync() == [":irc.test NOTICE oper :target is now target!ident@cloak/target"]
        told = ":target!~target@127.0.0.1 CHGHOST ident cloak/target"
        for member in (alice, dave, target, watcher):
            assert await member.sync_until(changed) == [told]
            assert not any(changed(line) for line in await member.sync_until(changed, rounds=3))  # once
        assert not any(changed(line) for line in await carol.sync_until(changed, rounds=3))

        await target.send("PRIVMSG #c :the new me")
        await target.sync()
        for member in (alice, carol):
            said = await member.sync_until(lambda line: "the new me" in line)
            assert said == [":target!ident@cloak/target PRIVMSG #c :the new me"]
        await alice.send("WHOIS target", "USERHOST target", "WHO target")
        answers = await alice.sync()
        assert ":irc.test 311 alice target ident cloak/target * :Real target" in answers
        assert ":irc.test 302 alice target=+ident@cloak/target" in answers
        assert ":irc.test 352 alice * ident cloak/target irc.test target H :0 Real target" in answers
        for client in (oper, alice, carol, dave, target, watcher):
            await client.close()


async def test_both_devices_of_a_user_on_two_replicas_take_the_new_host():
    """A user with a device on each replica: the operator's change reaches both, each told
    once (the channel and its user's `Sync` both carry it), and both speak with the new host."""
    shared = fakeredis.FakeServer()
    async with (running_gateway(shared, instance="one", users_url="http://users", irc_opers=OPERS) as one,
                running_gateway(shared, instance="two", users_url="http://users", irc_opers=OPERS) as two):
        await with_users(one), await with_users(two)
        laptop, _ = await device(one, caps="chghost")
        phone, _ = await device(two, caps="chghost")
        await laptop.send("JOIN #room")
        await laptop.sync()
        await phone.sync_until(lambda line: " 366 " in line)
        bob = await joined(one, "bob", "#room")
        await laptop.sync(), await phone.sync_until(lambda line: "bob" in line)
        oper = await operator(two)

        await oper.send("CHGHOST alice alice home.example")
        await oper.sync()
        told = ":alice!~alice@127.0.0.1 CHGHOST alice home.example"
        for screen in (laptop, phone):
            assert await screen.sync_until(changed) == [told]
            assert not any(changed(line) for line in await screen.sync_until(changed, rounds=3))
        assert await bob.sync() == []  # no chghost: nothing

        for screen, name in ((laptop, "laptop"), (phone, "phone")):
            await screen.send(f"PRIVMSG #room :from the {name}")
            await screen.sync()
        said = await bob.sync_until(lambda line: "phone" in line)  # the laptop's came first
        assert said == [":alice!alice@home.example PRIVMSG #room :from the laptop",
                                ":alice!alice@home.example PRIVMSG #room :from the phone"]
        for client in (laptop, phone, bob, oper):
            await client.close()


async def test_chghost_refusals_and_a_client_cannot_change_its_own_host():
    """481 to a client that is not an IRC operator (its own host included), 461, 401, and
    FAIL INVALID_PARAMS for a user name or host a prefix or a mask could read two ways."""
    async with replicas(1, irc_opers=OPERS) as (one,):
        mallory = await connect(one)
        await mallory.register("mallory")
        await mallory.send("CHGHOST mallory mallory trusted.example", "CHGHOST oper x y.example",
                           "WHOIS mallory")
        got = await mallory.sync()
        refused = ":irc.test 481 mallory :Permission Denied- You're not an IRC operator"
        assert got[:2] == [refused, refused]
        assert ":irc.test 311 mallory mallory ~mallory 127.0.0.1 * :Real mallory" in got

        oper = await operator(one)
        await oper.send("CHGHOST", "CHGHOST mallory", "CHGHOST mallory user",
                        "CHGHOST nobody user host.example")
        assert await oper.sync() == [
            ":irc.test 461 oper CHGHOST :Not enough parameters",
            ":irc.test 461 oper CHGHOST :Not enough parameters",
            ":irc.test 461 oper CHGHOST :Not enough parameters",
            ":irc.test 401 oper nobody :No such nick/channel",
        ]
        for host in (":a host", "a!b", "a@b", "*.example", "h?st", "hôst.example", "::lead", "-lead",
                     "x" * 64, "a,b"):
            await oper.send(f"CHGHOST mallory user {host}")
            assert await oper.sync() == [":irc.test FAIL CHGHOST INVALID_PARAMS :Invalid host"], host
        for user in ("a!b", "a@b", "*", "üser", "x" * 11, "~", "u:v"):
            await oper.send(f"CHGHOST mallory {user} host.example")
            assert await oper.sync() == [":irc.test FAIL CHGHOST INVALID_PARAMS :Invalid user name"], user
        await oper.send("CHGHOST mallory :a user host.example")  # the space: one parameter too few
        assert commands(await oper.sync()) == ["461"]
        await oper.send("WHOIS mallory")
        assert ":irc.test 311 oper mallory ~mallory 127.0.0.1 * :Real mallory" in await oper.sync()

        await oper.send("CHGHOST mallory ~x" + "y" * 9 + " 2001:db8::1")  # the longest, an IPv6 host
        assert commands(await oper.sync()) == ["NOTICE"]
        await mallory.send("WHOIS mallory")
        assert ":irc.test 311 mallory mallory ~xyyyyyyyyy 2001:db8::1 * :Real mallory" in await mallory.sync()
        await mallory.close(), await oper.close()


async def test_what_a_device_saves_before_chghost_reaches_it_does_not_put_the_old_host_back() -> None:
    # CHGHOST writes the record's user and host, then tells the user's devices. A device that
    # saves a change of its own in between (AWAY, SETNAME, a user mode, NICK, a log-in) knows
    # only the old ones: writing its whole record put them back, for every replica to show.
    async with replicas(1) as (one,):
        target = await connect(one)
        await target.register("target", caps="sasl setname")
        [uid] = [client.uid for client in one.roster.connections if client.nick == "target"]
        assert await one.store.set_host(uid, "ident", "cloak/target")  # its Sync not heard yet
        for command in ("AWAY :lunch", "SETNAME :Tar Get", "MODE target +i", "NICK target2"):
            await target.send(command)
            await target.sync()
        assert any(" 900 " in line for line in await sasl_after_registration(target, "Bob"))
        record = await one.store.redis.hgetall(one.store.keys.user(uid))
        assert (record[b"user"], record[b"host"]) == (b"ident", b"cloak/target")
        assert (record[b"away"], record[b"real"], record[b"nick"], record[b"account"]) == (
            b"lunch", b"Tar Get", b"target2", b"Bob")
        assert b"i" in record[b"modes"]
        await target.close()


async def test_after_chghost_a_user_still_sees_its_own_real_address_and_others_see_the_new_host() -> None:
    # 378 (to oneself only) and WHOX's `i` name where one connects from; CHGHOST changes what
    # others see (the host), not that.
    async with replicas(1, irc_opers=OPERS) as (one,):
        oper = await operator(one)
        target = await connect(one)
        await target.register("target")
        await oper.send("CHGHOST target ident cloak/target")
        await oper.sync()
        await target.send("WHOIS target", "WHO target %tnih,7")
        replies = await target.sync()
        assert any(" 378 target target :is connecting from *@127.0.0.1 127.0.0.1" in line for line in replies)
        assert any(line.endswith(" 354 target 7 127.0.0.1 cloak/target target") for line in replies)
        await oper.send("WHO target %tnih,7")
        seen = await oper.sync()
        assert any(line.endswith(" 354 oper 7 cloak/target cloak/target target") for line in seen)
        await oper.close()
        await target.close()
