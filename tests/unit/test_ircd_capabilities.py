"""The IRCv3 capabilities added to the gateway, each against its specification's text, on
fakeredis over loopback sockets; two gateways sharing one fakeredis where a capability crosses
replicas. The capability table (apps/ircd/capabilities.py) is what CAP LS and ISUPPORT say."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn, Unpack

import fakeredis
import pytest
from redis.exceptions import RedisError

from apps.ircd.capabilities import Offer, offered
from apps.ircd.server import IrcServer
from apps.ircd.settings import IrcdSettings
from tests.unit.ircd_support import (
    GatewaySettings,
    LineClient,
    commands,
    connect,
    plain,
    running_gateway,
    serve_accounts,
)

#: Accounts whose names no test takes as a nick (an account's name is reserved for it).
ACCOUNTS = {"Bob": "sesame"}


@contextlib.asynccontextmanager
async def replicas(count: int = 2, **overrides: Unpack[GatewaySettings]) -> AsyncIterator[list[IrcServer]]:
    """`count` gateways on one fakeredis, each asking the same (mock) users service."""
    shared = fakeredis.FakeServer()
    async with contextlib.AsyncExitStack() as stack:
        gateways = []
        for i in range(count):
            gateway = await stack.enter_async_context(
                running_gateway(shared, instance=f"ircd-{i}", users_url="http://users", **overrides))
            await serve_accounts(gateway, ACCOUNTS)
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


def listed(line: str) -> dict[str, str]:
    """The capabilities of a CAP LS line, each with its value ("" for none)."""
    items = line.split(" :", 1)[1].split(" ")
    return {name: value for name, _, value in (item.partition("=") for item in items)}


async def cap_ls(gateway: IrcServer) -> dict[str, str]:
    """CAP LS 302's capabilities, each with its value ("" for none)."""
    client = await connect(gateway)
    await client.send("CAP LS 302")
    [line] = await client.sync()
    await client.close()
    return listed(line)


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


# -- invite-notify (ircv3.net/specs/extensions/invite-notify) ---------------------------------

async def test_invite_notify_reaches_the_members_with_the_capability_on_both_replicas():
    """":<inviter> INVITE <target> <channel>" to the channel's members with the capability;
    "other channel members are not notified" (RFC 2812) without it; the inviter gets its 341."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#i")
        carol = await joined(one, "carol", "#i", "invite-notify")
        erin = await joined(two, "erin", "#i", "invite-notify")
        frank = await joined(two, "frank", "#i")
        dave = await connect(two)
        await dave.register("dave")
        for member in (alice, carol):
            await member.sync_until(lambda line: line.endswith("frank@127.0.0.1 JOIN #i"))
        await alice.send("INVITE dave #i")
        assert await alice.sync() == [":irc.test 341 alice dave #i"]
        invite = ":alice!~alice@127.0.0.1 INVITE dave #i"
        assert await carol.sync() == [invite]
        assert (await erin.sync_until(lambda line: " INVITE " in line))[-1] == invite
        assert (await dave.sync_until(lambda line: " INVITE " in line))[-1] == invite
        assert await frank.sync_until(lambda line: " INVITE " in line, rounds=3) == []


async def test_invite_notify_on_an_invite_only_channel_goes_to_its_operators_only():
    """On +i only operators may INVITE, and only they are told (the spec lets the server send
    it "only to clients that have the privilege to do an /INVITE on the channel themselves")."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#p", "invite-notify")  # the channel's operator
        carol = await joined(two, "carol", "#p", "invite-notify")
        erin = await joined(two, "erin", "#p", "invite-notify")
        await alice.sync_until(lambda line: line.endswith("erin@127.0.0.1 JOIN #p"))
        await alice.send("MODE #p +io carol")
        await alice.sync()
        await carol.sync_until(lambda line: "+io" in line), await erin.sync_until(lambda line: "+io" in line)
        dave = await connect(one)
        await dave.register("dave")
        await carol.send("INVITE dave #p")
        assert await carol.sync() == [":irc.test 341 carol dave #p"]
        invite = ":carol!~carol@127.0.0.1 INVITE dave #p"
        assert (await alice.sync_until(lambda line: " INVITE " in line))[-1] == invite
        assert await erin.sync_until(lambda line: " INVITE " in line, rounds=3) == []
        await erin.send("INVITE dave #p")
        assert commands(await erin.sync()) == ["482"]


# -- standard-replies (ircv3.net/specs/extensions/standard-replies) ---------------------------

async def failing_store(gateway: IrcServer, error: Exception) -> None:
    """Make the store's channel look-ups fail as Redis away (or a bug) would."""

    async def broken(*args: object, **kwargs: object) -> NoReturn:
        raise error

    gateway.store.channel_and_status = broken  # type: ignore[method-assign]
    gateway.store.channel_status_masks = broken  # type: ignore[method-assign]


@pytest.mark.parametrize(("error", "code", "text"), [
    (RedisError("gone"), "TEMPORARILY_UNAVAILABLE", "Server state unavailable; try again"),
    (RuntimeError("bug"), "INTERNAL_ERROR", "Internal error"),
])
async def test_standard_replies_turns_the_catch_all_400_into_fail_with_a_code(error, code, text):
    """"servers use standard replies instead of vendor-specific error numerics ... when
    responding to a client which supports this capability"; the others keep the 400."""
    async with replicas(1) as (one,):
        with_cap, without = await connect(one), await connect(one)
        await with_cap.register("alice", caps="standard-replies")
        await without.register("carol")
        await failing_store(one, error)
        await with_cap.send("PRIVMSG #x :hi")
        await without.send("PRIVMSG #x :hi")
        assert await with_cap.sync() == [f":irc.test FAIL PRIVMSG {code} :{text}"]
        assert await without.sync() == [f":irc.test 400 carol PRIVMSG :{text}"]


async def test_standard_replies_for_a_line_rejected_and_the_standardised_numerics_unchanged():
    """A NUL in a line: FAIL * INVALID_LINE with the capability; "Servers which support this
    capability SHOULD NOT replace standardised error numerics": 403 stays 403."""
    async with replicas(1) as (one,):
        client = await connect(one)
        await client.register("alice", caps="standard-replies")
        await client.send(b"PRIVMSG #x :a\x00b", "JOIN bad-name")
        assert await client.sync() == [":irc.test FAIL * INVALID_LINE :Line rejected: NUL, CR or LF in line",
                                       ":irc.test 403 alice bad-name :No such channel"]
        assert "standard-replies" in await cap_ls(one)


# -- draft/pre-away (ircv3.net/specs/extensions/pre-away) -------------------------------------

async def test_away_before_registration_needs_pre_away():
    async with replicas(1) as (one,):
        client = await connect(one)
        await client.send("AWAY :lunch")
        assert await client.sync() == [":irc.test 451 * :You have not registered"]


async def test_pre_away_sets_the_away_message_before_registration_and_monitor_still_reports():
    """"servers MUST accept the AWAY command before connection registration has completed";
    it "sets the away message but does not inhibit reporting of the change in nickname status,
    e.g. via monitor"."""
    async with replicas() as (one, two):
        watcher = await connect(two)
        await watcher.register("watcher")
        await watcher.send("MONITOR + alice")
        await watcher.sync()
        alice = await connect(one)
        await alice.send("CAP LS 302", "CAP REQ draft/pre-away", "AWAY :Gone to lunch.  Back in 5",
                         "NICK alice", "USER alice 0 * :Alice", "CAP END")
        got = await alice.sync()
        assert ":irc.test 306 * :You have been marked as being away" in got and " 001 " in " ".join(got)
        assert commands(await watcher.sync_until(lambda line: " 730 " in line))[-1] == "730"
        await watcher.send("WHOIS alice", "WHO alice")
        got = await watcher.sync()
        assert ":irc.test 301 watcher alice :Gone to lunch.  Back in 5" in got
        assert any(" 352 watcher * ~alice 127.0.0.1 irc.test alice G " in line for line in got)


async def test_away_star_is_kept_for_pre_away_clients_and_put_in_words_for_the_others():
    """`AWAY *`: "not present for an unspecified reason"; clients with the capability get the
    `*`, the others a text ("Servers MAY substitute a human-readable message for the `*`"),
    in away-notify (on JOIN and on change) and in 301."""
    async with replicas() as (one, two):
        aware = await joined(one, "aware", "#a", "away-notify draft/pre-away")
        plain_ = await joined(two, "plain", "#a", "away-notify")
        alice = await connect(one)
        await alice.send("CAP LS 302", "CAP REQ draft/pre-away", "AWAY *", "NICK alice", "USER alice 0 * :A",
                         "CAP END", "JOIN #a")
        await alice.sync()
        assert (await aware.sync_until(lambda line: " AWAY " in line))[-1] == ":alice!~alice@127.0.0.1 AWAY *"
        assert (await plain_.sync_until(lambda line: " AWAY " in line))[-1] == \
            ":alice!~alice@127.0.0.1 AWAY Away"
        await aware.send("PRIVMSG alice :hi")
        await plain_.send("PRIVMSG alice :hi")
        assert await aware.sync() == [":irc.test 301 aware alice *"]
        assert await plain_.sync() == [":irc.test 301 plain alice Away"]
        await alice.send("AWAY")  # back: the same for everyone
        await alice.sync()
        assert (await plain_.sync_until(lambda line: " AWAY" in line))[-1] == ":alice!~alice@127.0.0.1 AWAY"


# -- sts (ircv3.net/specs/extensions/sts) -----------------------------------------------------

STS: GatewaySettings = {"sts": True, "sts_port": 6697, "sts_duration": 2592000, "sts_preload": True,
                        "irc_tls_port": 0}


async def tls_cap_ls(gateway: IrcServer, cert: Path, server_name: str) -> dict[str, str]:
    """CAP LS 302 over TLS, asking for host `server_name` (SNI; empty: none sent)."""
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["ircs"], ssl=context,
                                                   server_hostname=server_name)
    client = LineClient(reader, writer)
    await client.send("CAP LS 302", "CAP REQ sts")
    ls, nak = await client.sync()
    await client.close()
    assert nak == ":irc.test CAP * NAK sts"  # "Clients MUST NOT request this capability"
    return listed(ls)


async def test_sts_is_off_by_default_and_without_tls():
    async with replicas(1) as (one,):
        assert "sts" not in await cap_ls(one)
    async with replicas(1, sts=True) as (one,):  # no certificate: nothing to upgrade to
        assert "sts" not in await cap_ls(one)


async def test_sts_tells_a_plain_connection_the_port_and_a_tls_one_the_duration(certificate):
    """"servers MUST send [port] to insecurely connected clients"; "To enforce an STS
    persistence policy, servers MUST send [duration] to securely connected clients"; preload
    when configured. Over TLS, only for a host name asked with SNI: "If no hostname has been
    provided for the connection, an STS persistence policy SHOULD NOT be advertised"."""
    cert, key = certificate
    async with replicas(1, tls_cert=str(cert), tls_key=str(key), **STS) as (one,):
        assert (await cap_ls(one))["sts"] == "port=6697"
        assert (await tls_cap_ls(one, cert, "irc.example.net"))["sts"] == "duration=2592000,preload"
        assert "sts" not in await tls_cap_ls(one, cert, "")


async def test_sts_persistence_only_for_the_listed_host_names(certificate):
    cert, key = certificate
    async with replicas(1, tls_cert=str(cert), tls_key=str(key), sts_hostnames="irc.example.net",
                        **{**STS, "sts_preload": False, "sts_duration": 0}) as (one,):
        assert (await tls_cap_ls(one, cert, "IRC.example.net"))["sts"] == "duration=0"
        assert "sts" not in await tls_cap_ls(one, cert, "other.example.net")


def test_sts_upgrade_port_defaults_to_the_tls_port_and_no_policy_over_websockets():
    settings = IrcdSettings(sts=True, tls_cert="c.pem", tls_key="k.pem", irc_tls_port=7000)
    assert offered(Offer(settings))["sts"] == "port=7000"
    assert "sts" not in offered(Offer(settings, direct=False))
    assert "sts" not in offered(Offer(settings, secure=True, server_name="192.0.2.1"))


# -- client-only tags: +typing, +draft/reply, +draft/react (ircv3.net/specs/client-tags) --------

def tags_of(line: str) -> dict[str, str]:
    """A line's tags (escaping aside: these tests' values need none)."""
    if not line.startswith("@"):
        return {}
    items = line[1:].split(" ", 1)[0].split(";")
    return {key: value for key, _, value in (item.partition("=") for item in items)}


def client_tags(line: str) -> dict[str, str]:
    return {key: value for key, value in tags_of(line).items() if key.startswith("+")}


def sans_tags(line: str) -> str:
    return line.split(" ", 1)[1] if line.startswith("@") else line


def tagged(tags: dict[str, str], rest: str) -> str:
    return "@" + ";".join(f"{key}={value}" for key, value in tags.items()) + " " + rest


async def test_typing_reply_and_react_reach_channel_and_private_targets_across_replicas():
    """Client-only tags go to the clients that negotiated message-tags, on the other replica
    too, to a channel and to a nick; a TAGMSG only to those ("servers MUST NOT deliver TAGMSG
    to clients that have not negotiated the message-tags capability"), a PRIVMSG to the others
    without its tags."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#t", "message-tags echo-message")
        bert = await joined(two, "bert", "#t", "message-tags")
        carol = await joined(two, "carol", "#t")
        await alice.sync_until(lambda line: line.endswith("carol@127.0.0.1 JOIN #t"))
        await alice.send("PRIVMSG #t :Hello!")
        parent = tags_of((await alice.sync())[0])["msgid"]
        reply, react = {"+draft/reply": parent}, {"+draft/reply": parent, "+draft/react": "lol"}
        sent = [({"+typing": "active"}, "TAGMSG #t"), (reply, "PRIVMSG #t :Hello to you!"),
                (react, "TAGMSG #t"), ({"+typing": "done"}, "TAGMSG bert"), (react, "TAGMSG bert"),
                (reply, "PRIVMSG bert :psst")]
        await alice.send(*(tagged(tags, rest) for tags, rest in sent))
        echoes = await alice.sync()
        assert [(client_tags(line), sans_tags(line)) for line in echoes] == \
            [(tags, f":alice!~alice@127.0.0.1 {rest.replace(':psst', 'psst')}") for tags, rest in sent]
        got = await bert.sync_until(lambda line: line.endswith("PRIVMSG bert psst"))
        relayed = [line for line in got
                   if line.startswith("@") and "Hello!" not in line and " JOIN " not in line]
        assert [(client_tags(line), sans_tags(line)) for line in relayed] == \
            [(tags, f":alice!~alice@127.0.0.1 {rest.replace(':psst', 'psst')}") for tags, rest in sent]
        assert all("msgid" in tags_of(line) for line in relayed)
        plain_lines = await carol.sync_until(lambda line: "Hello to you" in line)
        assert [line for line in plain_lines if "alice!" in line][-1] == \
            ":alice!~alice@127.0.0.1 PRIVMSG #t :Hello to you!"
        assert " TAGMSG " not in " ".join(plain_lines + await carol.sync())


async def test_history_keeps_a_replys_tags_and_leaves_typing_and_reactions_out():
    """CHATHISTORY: "the server MUST NOT send any lines other than PRIVMSG and NOTICE in the
    reply batch" without draft/event-playback (not offered): a TAGMSG (+typing, a tag-only
    +draft/react) is not history; a PRIVMSG keeps its client-only tags (+draft/reply, and a
    +draft/react "sent as a PRIVMSG with an additional message body")."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#h", "message-tags echo-message")
        await alice.send("PRIVMSG #h :They won!")
        parent = tags_of((await alice.sync())[0])["msgid"]
        await alice.send("@+typing=active TAGMSG #h", f"@+draft/reply={parent};+draft/react=yay TAGMSG #h",
                         f"@+draft/reply={parent} PRIVMSG #h :Actually it was Germany",
                         f"@+draft/reply={parent};+draft/react=lol PRIVMSG #h :lol")
        await alice.sync()
        bert = await joined(two, "bert", "#h", "message-tags batch draft/chathistory")
        await bert.send("CHATHISTORY LATEST #h * 10")
        history = [line for line in await bert.sync() if "alice!" in line]
        assert [sans_tags(line) for line in history] == [
            ":alice!~alice@127.0.0.1 PRIVMSG #h :They won!",
            ":alice!~alice@127.0.0.1 PRIVMSG #h :Actually it was Germany",
            ":alice!~alice@127.0.0.1 PRIVMSG #h lol"]
        assert tags_of(history[1])["+draft/reply"] == parent
        assert tags_of(history[2])["+draft/react"] == "lol" and tags_of(history[2])["+draft/reply"] == parent


# -- draft/read-marker (ircv3.net/specs/extensions/read-marker) -------------------------------

TS = "2027-01-04T14:33:26.123Z"  # before the tests' clock (2027-01-15)


async def sasl_client(gateway: IrcServer, nick: str, caps: str) -> LineClient:
    """A client of `gateway` logged in to account Bob before registering."""
    client = await connect(gateway)
    await client.send("CAP LS 302", f"CAP REQ :sasl {caps}".rstrip(), "AUTHENTICATE PLAIN",
                      f"AUTHENTICATE {plain('Bob', 'sesame')}", f"NICK {nick}", f"USER {nick} 0 * :B",
                      "CAP END")
    assert " 001 " in " ".join(await client.sync())
    return client


async def test_markread_on_join_comes_before_the_end_of_names_and_only_with_the_capability():
    """"after the server sends a server JOIN ... the server MUST send a MARKREAD command for
    that channel ... before the RPL_ENDOFNAMES"; `*` when there is no marker."""
    async with replicas(1) as (one,):
        alice, carol = await connect(one), await connect(one)
        await alice.register("alice", caps="draft/read-marker")
        await carol.register("carol")
        await alice.send("JOIN #m")
        assert commands(await alice.sync()) == ["JOIN", "MARKREAD", "353", "366"]
        await carol.send("JOIN #m")
        assert "MARKREAD" not in commands(await carol.sync())
        await alice.send("PART #m")
        await alice.send(f"MARKREAD #m timestamp={TS}", "JOIN #m")
        got = await alice.sync()
        assert f":irc.test MARKREAD #m timestamp={TS}" in got


async def test_markread_sets_gets_only_moves_forward_and_is_clamped_to_now():
    """"The last read timestamp of a target MUST only ever increase": an older or equal value
    is answered with the stored one; a time past now is taken as now."""
    async with replicas(1) as (one,):
        alice = await connect(one)
        await alice.register("alice", caps="draft/read-marker")
        await alice.send("MARKREAD #nosuchtarget", f"MARKREAD #m timestamp={TS}", "MARKREAD #m",
                         "MARKREAD #m timestamp=2026-01-01T00:00:00.000Z",
                         "MARKREAD dave timestamp=2027-01-02T00:00:00Z", "MARKREAD dave",
                         "MARKREAD #future timestamp=2099-01-01T00:00:00.000Z")
        assert await alice.sync() == [
            ":irc.test MARKREAD #nosuchtarget *",
            f":irc.test MARKREAD #m timestamp={TS}", f":irc.test MARKREAD #m timestamp={TS}",
            f":irc.test MARKREAD #m timestamp={TS}",
            ":irc.test MARKREAD dave timestamp=2027-01-02T00:00:00.000Z",
            ":irc.test MARKREAD dave timestamp=2027-01-02T00:00:00.000Z",
            ":irc.test MARKREAD #future timestamp=2027-01-15T08:00:00.000Z"]


@pytest.mark.parametrize(("line", "answer"), [
    ("MARKREAD", "FAIL MARKREAD NEED_MORE_PARAMS :Missing parameters"),
    ("MARKREAD #m *", "FAIL MARKREAD INVALID_PARAMS #m * :Invalid parameters"),
    ("MARKREAD #m timestamp=no", "FAIL MARKREAD INVALID_PARAMS #m timestamp=no :Invalid parameters"),
    (f"MARKREAD #m {TS}", f"FAIL MARKREAD INVALID_PARAMS #m {TS} :Invalid parameters"),
    ("MARKREAD bad,target", "FAIL MARKREAD INVALID_PARAMS bad,target :Invalid parameters"),
])
async def test_markread_refusals_are_the_specs_standard_replies(line: str, answer: str):
    async with replicas(1) as (one,):
        alice = await connect(one)
        await alice.register("alice", caps="draft/read-marker")
        await alice.send(line)
        assert await alice.sync() == [f":irc.test {answer}"]


async def test_a_marker_goes_to_every_connection_of_the_account_on_every_replica_and_no_one_else():
    """"after the last read timestamp of a target changes, the server SHOULD send a MARKREAD
    command for that target to all the clients of the user"; "Servers MUST NOT leak read
    markers sent by a user to other users"."""
    async with replicas() as (one, two):
        first = await sasl_client(one, "bob1", "draft/read-marker")
        second = await sasl_client(two, "bob2", "draft/read-marker")
        third = await sasl_client(two, "bob3", "")  # without the capability: not told
        stranger = await connect(two)
        await stranger.register("stranger", caps="draft/read-marker")
        await first.send(f"MARKREAD #m timestamp={TS}")
        assert await first.sync() == [f":irc.test MARKREAD #m timestamp={TS}"]
        told = await second.sync_until(lambda line: "MARKREAD" in line)
        assert [sans_tags(line) for line in told] == [f":irc.test MARKREAD #m timestamp={TS}"]
        assert await third.sync() == [] and await stranger.sync() == []
        await first.send(f"MARKREAD #m timestamp={TS}")  # no change: only the asker hears
        await first.sync()
        assert await second.sync_until(lambda line: "MARKREAD" in line, rounds=3) == []
        await stranger.send("MARKREAD #m")
        assert await stranger.sync() == [":irc.test MARKREAD #m *"]
        await third.send("MARKREAD #m")  # the account's, whichever connection asks
        assert await third.sync() == [f":irc.test MARKREAD #m timestamp={TS}"]


async def test_a_guests_markers_are_its_connections_and_expire_with_its_conversations():
    async with replicas(1) as (one,):
        alice = await connect(one)
        await alice.register("alice", caps="draft/read-marker")
        await alice.send(f"MARKREAD #m timestamp={TS}")
        await alice.sync()
        [key] = [key async for key in one.store.redis.scan_iter("*:read")]
        assert key.decode().startswith("canaduck:chat:{~") and 0 < await one.store.redis.ttl(key) <= 86_400


# -- draft/message-redaction (ircv3.net/specs/extensions/message-redaction) -------------------

REDACTING = "message-tags echo-message draft/message-redaction draft/chathistory batch"


async def said(client: LineClient, target: str, text: str) -> str:
    """Send a PRIVMSG (the client has echo-message); its msgid."""
    await client.send(f"PRIVMSG {target} :{text}")
    [echo] = [line for line in await client.sync() if text in line]
    return tags_of(echo)["msgid"]


async def history_texts(client: LineClient, target: str) -> list[str]:
    await client.send(f"CHATHISTORY LATEST {target} * 10")
    said = [line.split(" PRIVMSG ", 1)[1] for line in await client.sync() if " PRIVMSG " in line]
    return [text.split(" ", 1)[1].removeprefix(":") for text in said]


async def test_the_author_redacts_a_message_everyone_with_the_capability_is_told_and_history_forgets():
    """"SHOULD forward this REDACT ... to the target recipients that have negotiated the
    draft/message-redaction capability"; "MUST not forward this REDACT to target recipients
    that have not"; chathistory "SHOULD ... exclude it entirely"."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#r", REDACTING)
        bert = await joined(two, "bert", "#r", REDACTING)
        carol = await joined(two, "carol", "#r", "message-tags")
        await alice.sync_until(lambda line: line.endswith("carol@127.0.0.1 JOIN #r"))
        msgid = await said(alice, "#r", "oops")
        await said(alice, "#r", "kept")
        await alice.send(f"REDACT #r {msgid}")
        assert [sans_tags(line) for line in await alice.sync()] == \
            [f":alice!~alice@127.0.0.1 REDACT #r {msgid}"]
        told = await bert.sync_until(lambda line: " REDACT " in line)
        assert sans_tags(told[-1]) == f":alice!~alice@127.0.0.1 REDACT #r {msgid}"
        assert " REDACT " not in " ".join(await carol.sync_until(lambda line: "kept" in line))
        assert await history_texts(bert, "#r") == ["kept"]


async def test_an_operator_redacts_anothers_message_and_a_member_cannot():
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#r", REDACTING)  # the channel's operator
        bert = await joined(two, "bert", "#r", REDACTING)
        await alice.sync_until(lambda line: line.endswith("bert@127.0.0.1 JOIN #r"))
        theirs = await said(alice, "#r", "from alice")
        await bert.sync_until(lambda line: "from alice" in line)
        await bert.send(f"REDACT #r {theirs}")
        assert await bert.sync() == [f":irc.test FAIL REDACT REDACT_FORBIDDEN #r {theirs} "
                                     ":You are not authorised to delete this message"]
        spam = await said(bert, "#r", "spam")
        await alice.sync_until(lambda line: "spam" in line)
        await alice.send(f"REDACT #r {spam} :spam")
        assert [sans_tags(line) for line in await alice.sync()] == \
            [f":alice!~alice@127.0.0.1 REDACT #r {spam} spam"]
        assert sans_tags((await bert.sync_until(lambda line: " REDACT " in line))[-1]) == \
            f":alice!~alice@127.0.0.1 REDACT #r {spam} spam"
        assert await history_texts(alice, "#r") == ["from alice"]


UNKNOWN = "UNKNOWN_MSGID {} :This message does not exist or is too old"
INVALID = "INVALID_TARGET {0} :You cannot delete messages from {0}"


@pytest.mark.parametrize(("line", "answer"), [
    ("REDACT #r 1-0", "FAIL REDACT " + UNKNOWN.format("#r 1-0")),
    ("REDACT #r nonexistent123", "FAIL REDACT " + UNKNOWN.format("#r nonexistent123")),
    ("REDACT #elsewhere 1-0", "FAIL REDACT " + INVALID.format("#elsewhere")),  # not a member
    ("REDACT #none 1-0", "FAIL REDACT " + INVALID.format("#none")),
    ("REDACT nobody 1-0", "FAIL REDACT " + INVALID.format("nobody")),
    ("REDACT #r", "461 alice REDACT :Not enough parameters"),
])
async def test_redact_refusals_are_the_specs_fail_codes(line: str, answer: str):
    async with replicas(1) as (one,):
        other = await joined(one, "other", "#elsewhere")
        alice = await joined(one, "alice", "#r", REDACTING)
        await alice.send(line)
        assert await alice.sync() == [f":irc.test {answer}"]
        await other.close()


async def test_a_kept_reaction_is_redacted_a_typing_tagmsg_is_not_kept_so_cannot_be():
    """A TAGMSG with a reaction is kept (draft/event-playback), so its author may redact it,
    and it leaves the history; a typing notification is never stored: "UNKNOWN_MSGID" (irctest
    accepts either answer). A JOIN is kept but is no message: UNKNOWN_MSGID too."""
    async with replicas(1) as (one,):
        alice = await joined(one, "alice", "#r", REDACTING + " draft/chathistory draft/event-playback")
        await alice.send("CHATHISTORY LATEST #r * 10")
        join_id = tags_of(next(line for line in await alice.sync() if " JOIN " in line))["msgid"]
        await alice.send("@+draft/react=1 TAGMSG #r")
        reaction = tags_of((await alice.sync())[0])["msgid"]
        await alice.send("@+typing=active TAGMSG #r")
        typing = tags_of((await alice.sync())[0])["msgid"]
        await alice.send(f"REDACT #r {typing}", f"REDACT #r {join_id}")
        assert [line.split()[:3] for line in await alice.sync()] == [[":irc.test", "FAIL", "REDACT"]] * 2
        await alice.send(f"REDACT #r {reaction}")
        assert commands(await alice.sync()) == ["REDACT"]
        await alice.send("CHATHISTORY LATEST #r * 10")
        assert [c for c in commands(await alice.sync()) if c != "BATCH"] == ["JOIN"]


async def test_a_private_message_is_redacted_by_its_author_only_across_replicas():
    async with replicas() as (one, two):
        alice, dave = await connect(one), await connect(two)
        await alice.register("alice", caps=REDACTING)
        await dave.register("dave", caps=REDACTING)
        msgid = await said(alice, "dave", "psst")
        await said(alice, "dave", "kept")
        await dave.sync_until(lambda line: "kept" in line)
        await dave.send(f"REDACT alice {msgid}")
        assert commands(await dave.sync()) == ["FAIL"]  # REDACT_FORBIDDEN: not the author
        await alice.send(f"REDACT dave {msgid}")
        assert [sans_tags(line) for line in await alice.sync()] == \
            [f":alice!~alice@127.0.0.1 REDACT dave {msgid}"]
        assert sans_tags((await dave.sync_until(lambda line: " REDACT " in line))[-1]) == \
            f":alice!~alice@127.0.0.1 REDACT dave {msgid}"
        assert await history_texts(dave, "alice") == ["kept"]


async def test_a_guest_who_takes_the_nick_of_a_gone_author_cannot_redact_its_messages():
    """A guest is its connection: the next holder of its nick is someone else."""
    async with replicas(1) as (one,):
        keeper = await joined(one, "keeper", "#r", REDACTING)
        alice = await joined(one, "alice", "#r", REDACTING)
        msgid = await said(alice, "#r", "mine")
        await alice.send("QUIT")
        await alice.close()
        await keeper.sync_until(lambda line: " QUIT " in line)
        again = await joined(one, "alice", "#r", REDACTING)
        await again.send(f"REDACT #r {msgid}")
        assert (await again.sync())[-1].startswith(":irc.test FAIL REDACT REDACT_FORBIDDEN")
