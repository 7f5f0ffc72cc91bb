"""Whose history is whose: the attacks of a next comer on a nick or on an emptied channel.

- A guest (a client without an account) is its connection: whoever takes its nick after it
  has gone reads none of its private conversations and sees none of its correspondents.
- A secret (+s), invite-only (+i) or keyed (+k) channel's history goes with the channel when
  it empties, so whoever creates it again reads nothing; an open channel's history stays.
- One rule for channel history, the same as the messages service's over HTTP: a reader in
  the channel, a connection by itself or an account through any of its connections."""

from __future__ import annotations

import pytest

from apps.ircd.server import IrcServer
from tests.unit.ircd_support import LineClient, commands, connect, plain, running_gateway, serve_accounts

CAPS = "batch server-time message-tags draft/chathistory"
EVER = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z"


def privmsgs(lines: list[str]) -> list[str]:
    """The texts of the PRIVMSG lines, tags and source aside."""
    return [line.split(" PRIVMSG ", 1)[1].split(" :", 1)[1] for line in lines if " PRIVMSG " in line]


async def guest(gateway: IrcServer, nick: str) -> LineClient:
    client = await connect(gateway)
    await client.register(nick, caps=CAPS)
    return client


async def test_a_guests_private_messages_are_not_handed_to_the_next_holder_of_its_nick():
    async with running_gateway() as gateway:
        alice, bob = await guest(gateway, "alice"), await guest(gateway, "bob")
        await alice.send("PRIVMSG bob :my secret plan")
        await alice.sync()
        await bob.send("PRIVMSG alice :safe with me")
        await bob.sync()
        await alice.sync()  # its live delivery
        await alice.send("CHATHISTORY LATEST bob * 10")
        assert privmsgs(await alice.sync()) == ["my secret plan", "safe with me"]  # while it lasts
        await alice.send("QUIT")
        await alice.close()
        mallory = None
        for _ in range(50):  # the nick is free once alice's connection is cleaned up
            mallory = await connect(gateway)
            if "001" in commands(await mallory.register("alice", caps=CAPS)):
                break
            await mallory.close()
        assert mallory is not None
        await mallory.send("CHATHISTORY LATEST bob * 10", f"CHATHISTORY TARGETS {EVER} 10")
        got = await mallory.sync()
        assert privmsgs(got) == []
        assert not [line for line in got if "CHATHISTORY TARGETS" in line]
        await bob.send("CHATHISTORY LATEST alice * 10")  # bob asks after the new alice: a new talk
        assert privmsgs(await bob.sync()) == []
        await mallory.close()
        await bob.close()


async def test_an_accounts_correspondent_who_was_a_guest_is_listed_by_its_nick():
    async with running_gateway(users_url="http://users") as gateway:
        await serve_accounts(gateway, {"Carol": "sesame"})
        carol = await connect(gateway)
        await carol.send("CAP LS 302", f"CAP REQ :sasl {CAPS}", "AUTHENTICATE PLAIN",
                         f"AUTHENTICATE {plain('carol', 'sesame')}", "NICK carol", "USER c 0 * :C", "CAP END")
        await carol.sync()
        dave = await guest(gateway, "dave")
        await dave.send("PRIVMSG carol :hello from a guest")
        await dave.sync()
        await carol.sync()  # its live delivery
        await carol.send(f"CHATHISTORY TARGETS {EVER} 10", "CHATHISTORY LATEST dave * 10")
        got = await carol.sync()
        assert any(line.split(" ")[-2:-1] == ["dave"] for line in got if "CHATHISTORY TARGETS" in line)
        assert privmsgs(got) == ["hello from a guest"]
        await carol.close()
        await dave.close()


@pytest.mark.parametrize("closing", ["+s", "+i", "+k sesame"])
async def test_a_closed_channels_history_goes_with_it_when_it_empties(closing: str):
    async with running_gateway() as gateway:
        alice = await guest(gateway, "alice")
        await alice.send("JOIN #hush", f"MODE #hush {closing}", "PRIVMSG #hush :between us")
        await alice.sync()
        log_key = gateway.settings.chat_keys.conversation_log("#hush")
        index_key = gateway.settings.chat_keys.search_index("#hush")
        assert await gateway.store.redis.exists(log_key, index_key) == 2
        await alice.send("PART #hush")
        await alice.sync()
        assert not await gateway.store.redis.exists(log_key, index_key)  # nor can it be searched
        mallory = await guest(gateway, "mallory")
        await mallory.send("JOIN #hush", "CHATHISTORY LATEST #hush * 10")
        assert privmsgs(await mallory.sync()) == []
        await alice.close()
        await mallory.close()


async def test_an_open_channels_history_stays_for_whoever_joins_it_again():
    async with running_gateway() as gateway:
        alice = await guest(gateway, "alice")
        await alice.send("JOIN #open", "PRIVMSG #open :for the record", "PART #open")
        await alice.sync()
        bob = await guest(gateway, "bob")
        await bob.send("CHATHISTORY LATEST #open * 10")  # not in it: no history
        assert "FAIL" in commands(await bob.sync())
        await bob.send("JOIN #open", "CHATHISTORY LATEST #open * 10")
        assert privmsgs(await bob.sync()) == ["for the record"]
        await alice.close()
        await bob.close()


async def test_an_account_reads_a_channel_one_of_its_connections_is_in():
    async with running_gateway(users_url="http://users") as gateway:
        await serve_accounts(gateway, {"Erin": "sesame"})
        phone, laptop = await connect(gateway), await connect(gateway)
        for client, nick in ((phone, "erin"), (laptop, "erin_")):
            await client.send("CAP LS 302", f"CAP REQ :sasl {CAPS}", "AUTHENTICATE PLAIN",
                              f"AUTHENTICATE {plain('erin', 'sesame')}", f"NICK {nick}", "USER e 0 * :E",
                              "CAP END")
            await client.sync()
        await phone.send("JOIN #team", "PRIVMSG #team :standup at ten")
        await phone.sync()
        await laptop.send("CHATHISTORY LATEST #team * 10")
        assert privmsgs(await laptop.sync()) == ["standup at ten"]
        stranger = await guest(gateway, "stranger")
        await stranger.send("CHATHISTORY LATEST #team * 10")
        got = await stranger.sync()
        assert privmsgs(got) == [] and "FAIL" in commands(got)
        for client in (phone, laptop, stranger):
            await client.close()
