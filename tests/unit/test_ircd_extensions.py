"""The gateway's extensions to the base protocol, each rule on fakeredis over loopback sockets:
WHOX, STATUSMSG, ban and invite exceptions (+e, +I), CHATHISTORY TARGETS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest

from apps.ircd.server import IrcServer
from tests.unit.ircd_support import (
    Clock,
    LineClient,
    commands,
    connect,
    plain,
    running_gateway,
    serve_accounts,
)


@pytest.fixture
async def gateway() -> AsyncIterator[IrcServer]:
    async with running_gateway() as server:
        yield server


@pytest.fixture
async def trio(gateway: IrcServer) -> AsyncIterator[tuple[LineClient, LineClient, LineClient]]:
    clients = [await connect(gateway) for _ in range(3)]
    for client, nick in zip(clients, ("alice", "bob", "carol"), strict=True):
        await client.register(nick)
    yield clients[0], clients[1], clients[2]
    for client in clients:
        await client.close()


def isupport(lines: list[str]) -> set[str]:
    return {word for line in lines if " 005 " in line for word in line.split(" ")[3:]}


async def test_isupport_advertises_whox_statusmsg_and_exceptions(gateway: IrcServer):
    client = await connect(gateway)
    tokens = isupport(await client.register("alice"))
    assert {"WHOX", "STATUSMSG=@+", "EXCEPTS=e", "INVEX=I", "CHANMODES=Ibe,k,l,imnst"} <= tokens
    await client.close()


# -- WHOX ------------------------------------------------------------------------------------

async def test_whox_lists_the_fields_asked_in_the_fixed_order_with_the_token(trio):
    alice, bob, _ = trio
    await alice.send("JOIN #w")
    await alice.sync()
    # asked in reverse: the reply keeps t c u i h s n f d l a o r
    await bob.send("WHO alice %roaldfnshiuct,123")
    got = await bob.sync()
    assert got == [":irc.test 354 bob 123 * ~alice 127.0.0.1 127.0.0.1 irc.test alice H 0 0 0 n/a "
                   ":Real alice", ":irc.test 315 bob alice :End of /WHO list"]


async def test_whox_on_a_channel_names_it_and_the_status(trio):
    alice, bob, _ = trio
    await alice.send("JOIN #w", "AWAY :out")
    await alice.sync()
    await bob.send("JOIN #w")
    await bob.sync()
    await bob.send("WHO #w %tcnf,7")
    got = await bob.sync()
    assert ":irc.test 354 bob 7 #w alice G@" in got and ":irc.test 354 bob 7 #w bob H" in got


async def test_whox_account_is_0_without_a_login_and_token_defaults_to_0(trio):
    _, bob, _ = trio
    await bob.send("WHO alice %na", "WHO alice %tn", "WHO alice %tn,abc")
    got = await bob.sync()
    assert got.count(":irc.test 354 bob alice 0") == 1
    assert got.count(":irc.test 354 bob 0 alice") == 2  # no token, or not digits: 0


async def test_who_without_percent_is_still_352(trio):
    _, bob, _ = trio
    await bob.send("WHO alice o")
    assert commands(await bob.sync()) == ["352", "315"]


# -- STATUSMSG -------------------------------------------------------------------------------

async def test_statusmsg_reaches_only_members_of_that_rank(trio):
    alice, bob, carol = trio
    await alice.send("JOIN #s")  # alice: operator
    await alice.sync()
    await bob.send("JOIN #s")
    await carol.send("JOIN #s")
    await bob.sync(), await carol.sync()
    await alice.send("MODE #s +v carol")
    await alice.sync(), await bob.sync(), await carol.sync()
    await bob.send("PRIVMSG @#s :ops only", "NOTICE +#s :voice and ops")
    assert await bob.sync() == []  # accepted, and no copy without echo-message
    assert await alice.sync() == [":bob!~bob@127.0.0.1 PRIVMSG @#s :ops only",
                                  ":bob!~bob@127.0.0.1 NOTICE +#s :voice and ops"]
    assert await carol.sync() == [":bob!~bob@127.0.0.1 NOTICE +#s :voice and ops"]


async def test_statusmsg_follows_the_channel_rules_and_stays_out_of_history(trio, gateway: IrcServer):
    alice, bob, _ = trio
    await alice.send("JOIN #s")
    await alice.sync()
    await bob.send("PRIVMSG @#s :from outside", "PRIVMSG @#nowhere :x")
    assert commands(await bob.sync()) == ["404", "403"]
    assert await alice.sync() == []
    assert await gateway.chatlog.latest(gateway.chatlog.channel("#s"), 10) == []


async def test_statusmsg_crosses_replicas():
    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="one") as one, running_gateway(shared, instance="two") as two:
        alice, bob = await connect(one), await connect(two)
        await alice.register("alice")
        await bob.register("bob", caps="echo-message")
        await alice.send("JOIN #x")
        await alice.sync()
        await bob.send("JOIN #x")
        await bob.sync()
        await bob.send("PRIVMSG @#x :psst")
        assert await bob.sync() == [":bob!~bob@127.0.0.1 PRIVMSG @#x psst"]
        got = await alice.sync_until(lambda line: "PRIVMSG" in line)
        assert [line for line in got if "PRIVMSG" in line] == [":bob!~bob@127.0.0.1 PRIVMSG @#x psst"]
        await alice.close()
        await bob.close()


# -- ban exceptions (+e) and invite exceptions (+I) --------------------------------------------

async def test_ban_exception_lets_a_banned_client_join_and_speak(trio):
    alice, bob, _ = trio
    await alice.send("JOIN #e", "MODE #e +b b*!*@*")
    await alice.sync()
    await bob.send("JOIN #e")
    assert commands(await bob.sync()) == ["474"]
    await alice.send("MODE #e +e bob")
    assert await alice.sync() == [":alice!~alice@127.0.0.1 MODE #e +e bob!*@*"]
    await bob.send("JOIN #e", "PRIVMSG #e :hi")
    assert commands(await bob.sync()) == ["JOIN", "353", "366"]
    assert any("PRIVMSG #e hi" in line for line in await alice.sync())
    await alice.send("MODE #e -e bob!*@*")
    await alice.sync()
    await bob.sync()
    await bob.send("PRIVMSG #e :again")  # banned and not voiced: no longer heard
    assert commands(await bob.sync()) == ["404"]


async def test_invite_exception_passes_invite_only_but_not_a_key_or_a_ban(trio):
    alice, bob, carol = trio
    await alice.send("JOIN #i", "MODE #i +i", "MODE #i +I bob!*@*")
    await alice.sync()
    await carol.send("JOIN #i")
    assert commands(await carol.sync()) == ["473"]
    await bob.send("JOIN #i", "PART #i")
    assert commands(await bob.sync()) == ["JOIN", "353", "366", "PART"]
    await alice.send("MODE #i +k sesame")
    await alice.sync()
    await bob.send("JOIN #i")
    assert commands(await bob.sync()) == ["475"]
    await alice.send("MODE #i -k+b * bob")
    await alice.sync()
    await bob.send("JOIN #i")
    assert commands(await bob.sync()) == ["474"]


async def test_list_queries_answer_with_each_lists_numerics(trio):
    alice, bob, _ = trio
    await alice.send("JOIN #l", "MODE #l +beI x!*@* y!*@* z!*@*")
    await alice.sync()
    await bob.send("MODE #l b", "MODE #l +e", "MODE #l I")
    got = await bob.sync()
    assert commands(got) == ["367", "368", "348", "349", "346", "347"]
    assert got[4].startswith(":irc.test 346 bob #l z!*@* alice!~alice@127.0.0.1 ")
    await bob.send("MODE #l +e bob")  # not an operator
    assert commands(await bob.sync()) == ["482"]


async def test_a_full_list_answers_478():
    async with running_gateway(max_list_entries=2) as gateway:
        alice = await connect(gateway)
        await alice.register("alice")
        await alice.send("JOIN #f", "MODE #f +b a", "MODE #f +b b", "MODE #f +b c", "MODE #f +e c")
        got = await alice.sync()
        assert commands(got)[3:] == ["MODE", "MODE", "478", "MODE"]
        assert ":irc.test 478 alice #f b :Channel list is full" in got
        await alice.close()


async def test_the_last_one_out_removes_the_channels_lists(trio, gateway: IrcServer):
    alice, _, _ = trio
    await alice.send("JOIN #gone", "MODE #gone +beI a b c", "PART #gone")
    await alice.sync()
    assert [key async for key in gateway.store.redis.scan_iter("*#gone*")] == []


# -- CHATHISTORY TARGETS -----------------------------------------------------------------------

def _time_of(line: str) -> str:
    return next(tag.split("=", 1)[1] for tag in line[1:].split(" ", 1)[0].split(";")
                if tag.startswith("time="))


def _targets(lines: list[str]) -> list[tuple[str, str]]:
    assert lines[0].split(" ")[2:4] == [lines[0].split(" ")[2], "draft/chathistory-targets"]
    assert lines[-1].split(" ")[1:3] == ["BATCH", "-" + lines[0].split(" ")[2][1:]]
    return [(words[-2], words[-1]) for words in (line.split(" ") for line in lines[1:-1])]


async def test_chathistory_targets_lists_channels_and_correspondents_by_last_message(trio):
    alice, bob, _ = trio
    caps = "CAP REQ :batch server-time echo-message draft/chathistory"
    await alice.send(caps, "JOIN #one,#two")
    await bob.send("JOIN #one")
    await alice.sync(), await bob.sync()
    times = {}
    for target in ("#one", "bob", "#two"):
        await alice.send(f"PRIVMSG {target} :hi")
        (echo,) = [line for line in await alice.sync() if " PRIVMSG " in line]
        times[target] = _time_of(echo)
    expected = sorted(times.items(), key=lambda item: (item[1], item[0]))
    wide = "timestamp=2020-01-01T00:00:00.000Z timestamp=2262-01-01T00:00:00.000Z"
    await alice.send(f"CHATHISTORY TARGETS {wide} 100")
    assert _targets(await alice.sync()) == expected
    await alice.send(f"CHATHISTORY TARGETS {wide} 1")
    assert _targets(await alice.sync()) == expected[:1]
    # both bounds are exclusive, and may come in either order
    first, last = expected[0][1], expected[-1][1]
    await alice.send(f"CHATHISTORY TARGETS timestamp={last} timestamp={first} 100")
    assert _targets(await alice.sync()) == [t for t in expected if first < t[1] < last]
    await bob.sync()
    await bob.send(f"CHATHISTORY TARGETS {wide} 100")  # bob sees #one and alice, not #two
    assert [name for name, _ in await _plain_targets(bob)] == sorted(
        ["#one", "alice"], key=lambda name: times["bob" if name == "alice" else name])


async def _plain_targets(client: LineClient) -> list[tuple[str, str]]:
    """TARGETS replies without the batch capability: bare CHATHISTORY lines."""
    lines = await client.sync()
    assert all(" CHATHISTORY TARGETS " in line for line in lines)
    return [(words[-2], words[-1]) for words in (line.split(" ") for line in lines)]


async def test_chathistory_targets_bad_parameters_fail(trio):
    alice, _, _ = trio
    await alice.send("CHATHISTORY TARGETS", "CHATHISTORY TARGETS msgid=1-0 timestamp=2020-01-01T00:00:00Z 5",
                     "CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00Z timestamp=x 5",
                     "CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00Z timestamp=2021-01-01T00:00:00Z 0")
    got = await alice.sync()
    assert [line.split(" ")[1:4] for line in got] == [["FAIL", "CHATHISTORY", "INVALID_PARAMS"]] * 4


# -- KICK with several targets -----------------------------------------------------------------

async def test_kick_several_users_or_channel_user_pairs(trio):
    alice, bob, carol = trio
    await alice.send("JOIN #a,#b")
    await alice.sync()
    await bob.send("JOIN #a,#b")
    await carol.send("JOIN #a")
    await bob.sync(), await carol.sync(), await alice.sync()
    await alice.send("KICK #a bob,carol :bye")
    kicks = [line for line in await alice.sync() if " KICK " in line]
    assert kicks == [":alice!~alice@127.0.0.1 KICK #a bob bye", ":alice!~alice@127.0.0.1 KICK #a carol bye"]
    await alice.send("KICK #a,#b carol,bob", "KICK #a,#b bob", "KICK #a a,b,c,d,e")
    got = await alice.sync()
    assert commands(got) == ["441", "KICK", "461", "407"]
    assert got[1] == ":alice!~alice@127.0.0.1 KICK #b bob alice"


# -- LIST filters (ELIST=CMNTU) ----------------------------------------------------------------

def _listed(lines: list[str]) -> set[str]:
    return {line.split(" ")[3] for line in lines if " 322 " in line}


async def test_list_filters_by_mask_count_and_age():
    clock = Clock()
    async with running_gateway(clock=clock) as gateway:
        alice, bob = await connect(gateway), await connect(gateway)
        await alice.register("alice")
        await bob.register("bob")
        await alice.send("JOIN #chan1", "TOPIC #chan1 :old")
        await alice.sync()
        clock.now += 600  # ten minutes later
        await alice.send("JOIN #chan2", "TOPIC #chan2 :new")
        await bob.send("JOIN #chan2")
        await alice.sync(), await bob.sync()
        expectations = {
            "*an1": {"#chan1"}, "#c*n2": {"#chan2"}, "#ch*": {"#chan1", "#chan2"}, "*an3": set(),
            "!*an1": {"#chan2"}, "!#ch*": set(), ">1": {"#chan2"}, "<2": {"#chan1"},
            "C>5": {"#chan1"}, "C<5": {"#chan2"}, "T>5": {"#chan1"}, "T<5": {"#chan2"},
            "#chan1,#chan2": {"#chan1", "#chan2"}, "#ch*,>1": {"#chan2"}, "#nowhere": set(),
        }
        for spec, expected in expectations.items():
            await bob.send(f"LIST {spec}")
            got = await bob.sync()
            assert commands(got)[0] == "321" and commands(got)[-1] == "323"
            assert _listed(got) == expected, spec
        await alice.close()
        await bob.close()


# -- SASL PLAIN over several lines, and the account tag on a logged-in client's events ----------

async def test_sasl_payload_split_in_400_byte_lines_and_an_endless_one_fails_with_904():
    long_password = "bar" * 200
    async with running_gateway(users_url="http://users") as gateway:
        await serve_accounts(gateway, {"foo": long_password})
        client = await connect(gateway)
        blob = plain("foo", long_password)
        assert len(blob) > 800  # three lines: 400, 400 and the rest
        await client.send("CAP REQ sasl", "AUTHENTICATE PLAIN", *(f"AUTHENTICATE {blob[i:i + 400]}"
                                                                  for i in range(0, len(blob), 400)))
        assert commands(await client.sync())[-2:] == ["900", "903"]
        other = await connect(gateway)
        await other.send("CAP REQ sasl", "AUTHENTICATE PLAIN", *(["AUTHENTICATE " + "x" * 400] * 5),
                         "AUTHENTICATE PLAIN", "AUTHENTICATE " + "x" * 401)
        got = await other.sync()
        assert got[-3:] == [":irc.test 904 * :SASL authentication failed: message too long",
                            "AUTHENTICATE +", ":irc.test 905 * :SASL message too long"]
        await client.close(), await other.close()
        await gateway.accounts.http.aclose()


async def test_a_logged_in_clients_events_carry_its_account():
    async with running_gateway(users_url="http://users") as gateway:
        await serve_accounts(gateway, {"jilles": "sesame"})
        bob, jilles = await connect(gateway), await connect(gateway)
        await bob.register("bob", caps="account-tag")
        await jilles.send("CAP REQ sasl", "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('jilles', 'sesame')}",
                          "NICK jilles", "USER j 0 * :J", "CAP END")
        assert "001" in commands(await jilles.sync())
        await bob.send("JOIN #a")
        await bob.sync()
        await jilles.send("JOIN #b", "INVITE bob #b", "JOIN #a", "NICK jil", "PART #a")
        await jilles.sync()
        got = await bob.sync()
        assert commands(got) == ["INVITE", "JOIN", "NICK", "PART"]
        assert [line.split(" ")[0] for line in got] == ["@account=jilles"] * 4
        await bob.close(), await jilles.close()
        await gateway.accounts.http.aclose()


# -- SETNAME and extended-monitor ---------------------------------------------------------------

async def test_setname_is_confirmed_and_told_only_to_channel_members_with_the_capability(gateway: IrcServer):
    foo, bar, baz = await connect(gateway), await connect(gateway), await connect(gateway)
    await foo.register("foo", caps="setname")
    await bar.register("bar", caps="setname")
    await baz.register("baz")
    for client in (foo, bar, baz):
        await client.send("JOIN #chan")
        await client.sync()
    await foo.sync(), await bar.sync()
    await foo.send("SETNAME :New Name", "WHOIS foo", "SETNAME :" + "x" * 391)
    got = await foo.sync()
    assert got[0] == ":foo!~foo@127.0.0.1 SETNAME :New Name"
    assert ":irc.test 311 foo foo ~foo 127.0.0.1 * :New Name" in got
    assert got[-1] == ":irc.test FAIL SETNAME INVALID_REALNAME :Realname is empty or too long"
    assert await bar.sync() == [":foo!~foo@127.0.0.1 SETNAME :New Name"]
    assert await baz.sync() == []
    for client in (foo, bar, baz):
        await client.close()


async def test_extended_monitor_tells_watchers_of_away_once_even_when_they_share_a_channel():
    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="one") as one, running_gateway(shared, instance="two") as two:
        plain_watcher, extended, neighbour, bar = (await connect(one), await connect(one),
                                                   await connect(two), await connect(two))
        await plain_watcher.register("plain", caps="away-notify")
        await extended.register("ext", caps="away-notify extended-monitor")
        await neighbour.register("nb", caps="away-notify extended-monitor")
        await bar.register("bar")
        await bar.send("JOIN #c")
        await bar.sync()
        await neighbour.send("JOIN #c")
        for client in (plain_watcher, extended, neighbour):
            await client.send("MONITOR + bar")
            assert commands(await client.sync())[-1] == "730"
        await bar.sync()
        await bar.send("AWAY :afk")
        assert commands(await bar.sync()) == ["306"]
        expected = [":bar!~bar@127.0.0.1 AWAY afk"]
        for client, wanted in ((extended, expected), (neighbour, expected), (plain_watcher, [])):
            got = await client.sync_until(lambda line: True)
            assert [line for line in got + await client.sync() if " AWAY " in line] == wanted
        for client in (plain_watcher, extended, neighbour, bar):
            await client.close()


async def test_a_channel_message_relayed_by_the_other_replica_carries_the_same_msgid():
    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="one") as one, running_gateway(shared, instance="two") as two:
        alice, bob = await connect(one), await connect(two)
        await alice.register("alice", caps="echo-message message-tags")
        await bob.register("bob", caps="message-tags")
        await alice.send("JOIN #m")
        await alice.sync()
        await bob.send("JOIN #m")
        await bob.sync()
        await alice.send("PRIVMSG #m :across")
        (echo,) = [line for line in await alice.sync() if " PRIVMSG " in line]
        got = [line for line in await bob.sync_until(lambda line: " PRIVMSG " in line) if " PRIVMSG " in line]
        msgid = echo.split("msgid=")[1].split(" ")[0].split(";")[0]
        assert got == [f"@msgid={msgid} :alice!~alice@127.0.0.1 PRIVMSG #m across"]
        await alice.close(), await bob.close()
