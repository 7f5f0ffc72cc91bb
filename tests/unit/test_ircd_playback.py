"""IRCv3 draft/event-playback on fakeredis over loopback sockets, on two gateways sharing one
fakeredis: what a channel keeps besides its messages (apps/ircd/operations/playback.py), who
gets it from CHATHISTORY, and the settings that choose it."""

from __future__ import annotations

from tests.unit.ircd_support import LineClient, commands, connect
from tests.unit.test_ircd_capabilities import cap_ls, joined, replicas, said, tags_of

PLAYBACK = "batch server-time message-tags draft/chathistory draft/event-playback"
HISTORY_ONLY = "batch server-time message-tags draft/chathistory"


def inside(lines: list[str]) -> list[str]:
    """The lines of a chathistory batch, tags and batch markers left out."""
    return [line.split(" ", 1)[1] for line in lines if not line.startswith(":irc.test BATCH")
            and " BATCH " not in line]


async def history(client: LineClient, target: str) -> list[str]:
    await client.send(f"CHATHISTORY LATEST {target} * 50")
    return inside(await client.sync())


async def test_event_playback_is_offered_while_events_are_kept():
    async with replicas(1) as (one,):
        assert (await cap_ls(one))["draft/event-playback"] == ""
    async with replicas(1, history_events="") as (one,):
        assert "draft/event-playback" not in await cap_ls(one)


async def test_a_channels_events_are_replayed_to_who_asks_for_them_and_only_to_them():
    """The spec's "JOIN, PART, KICK, MODE, TOPIC, QUIT, NICK" and a kept TAGMSG, in order,
    whichever replica they happened on; a client without the capability gets the messages
    alone (irctest's testChathistoryNoEventPlayback)."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#ev", PLAYBACK)
        bert = await joined(two, "bert", "#ev")
        carl = await joined(two, "carl", "#ev")
        await alice.sync_until(lambda line: line.endswith("carl@127.0.0.1 JOIN #ev"))
        await alice.send("TOPIC #ev :plans", "PRIVMSG #ev :hello", "MODE #ev +v bert",
                         "@+draft/react=1 TAGMSG #ev", "@+typing=active TAGMSG #ev", "KICK #ev carl :out")
        await alice.sync()
        await bert.send("NICK bertie", "PART #ev :later")
        await bert.sync()
        await carl.send("JOIN #ev")
        await carl.sync()
        await carl.send("QUIT :bye")
        await alice.sync_until(lambda line: "QUIT" in line)
        assert await history(alice, "#ev") == [
            ":alice!~alice@127.0.0.1 JOIN #ev",
            ":bert!~bert@127.0.0.1 JOIN #ev",
            ":carl!~carl@127.0.0.1 JOIN #ev",
            ":alice!~alice@127.0.0.1 TOPIC #ev plans",
            ":alice!~alice@127.0.0.1 PRIVMSG #ev hello",
            ":alice!~alice@127.0.0.1 MODE #ev +v bert",
            ":alice!~alice@127.0.0.1 TAGMSG #ev",  # the reaction; the typing one is not kept
            ":alice!~alice@127.0.0.1 KICK #ev carl out",
            ":bert!~bert@127.0.0.1 NICK bertie",
            ":bertie!~bert@127.0.0.1 PART #ev later",
            ":carl!~carl@127.0.0.1 JOIN #ev",
            ":carl!~carl@127.0.0.1 QUIT :Quit: bye",
        ]
        dana = await joined(one, "dana", "#ev", HISTORY_ONLY)
        assert await history(dana, "#ev") == [":alice!~alice@127.0.0.1 PRIVMSG #ev hello"]


async def test_an_event_goes_out_with_the_msgid_and_time_it_is_replayed_with():
    """What a client saw live and what CHATHISTORY replays are one event (irctest's
    testChathistoryEventPlayback compares the echo's msgid and time with the history's)."""
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#t", PLAYBACK)
        bert = await joined(two, "bert", "#t", "server-time message-tags")
        await alice.sync_until(lambda line: " JOIN " in line)
        await alice.send("TOPIC #t :one")
        [echo] = await alice.sync()
        [relayed] = await bert.sync_until(lambda line: " TOPIC " in line)
        await alice.send("CHATHISTORY LATEST #t * 10")
        [replayed] = [line for line in await alice.sync() if " TOPIC " in line]
        for got in (relayed, replayed):
            assert {key: tags_of(got)[key] for key in ("msgid", "time")} == \
                {key: tags_of(echo)[key] for key in ("msgid", "time")}


async def test_a_join_is_replayed_as_extended_join_gives_it_to_whoever_has_it():
    async with replicas(1) as (one,):
        alice = await joined(one, "alice", "#x", PLAYBACK + " extended-join")
        plain = await joined(one, "bert", "#x", PLAYBACK)
        await alice.sync_until(lambda line: "bert" in line)
        assert await history(alice, "#x") == [":alice!~alice@127.0.0.1 JOIN #x * :Real alice",
                                               ":bert!~bert@127.0.0.1 JOIN #x * :Real bert"]
        assert await history(plain, "#x") == [":alice!~alice@127.0.0.1 JOIN #x",
                                              ":bert!~bert@127.0.0.1 JOIN #x"]


async def test_a_kept_private_tagmsg_is_the_senders_and_recipients_with_the_capability():
    async with replicas() as (one, two):
        alice = await joined(one, "alice", "#p", PLAYBACK)
        bert = await joined(two, "bert", "#p", HISTORY_ONLY)
        await alice.send("@+draft/react=ok TAGMSG bert", "@+typing=active TAGMSG bert", "PRIVMSG bert :hi")
        await alice.sync()
        await bert.sync_until(lambda line: "PRIVMSG" in line)
        assert await history(alice, "bert") == [":alice!~alice@127.0.0.1 TAGMSG bert",
                                                ":alice!~alice@127.0.0.1 PRIVMSG bert hi"]
        assert await history(bert, "alice") == [":alice!~alice@127.0.0.1 PRIVMSG bert hi"]


async def test_a_reaction_taken_back_is_kept_too_so_a_replay_ends_where_the_reactions_stand():
    """The web page draws a message's reactions from its history: without the +draft/unreact,
    a reaction taken back would come back with every reload."""
    async with replicas(1) as (one,):
        alice = await joined(one, "alice", "#u", PLAYBACK + " echo-message")
        msgid = await said(alice, "#u", "ducks")
        await alice.send(f"@+draft/react=🦆;+draft/reply={msgid} TAGMSG #u",
                         f"@+draft/unreact=🦆;+draft/reply={msgid} TAGMSG #u")
        await alice.sync()
        await alice.send("CHATHISTORY LATEST #u * 10")
        kept = [tags_of(line) for line in await alice.sync() if " TAGMSG " in line]
        assert [{k: v for k, v in tags.items() if k.startswith("+")} for tags in kept] == [
            {"+draft/react": "🦆", "+draft/reply": msgid}, {"+draft/unreact": "🦆", "+draft/reply": msgid}]


async def test_only_the_events_history_events_names_are_kept():
    async with replicas(1, history_events="TOPIC") as (one,):
        alice = await joined(one, "alice", "#o", PLAYBACK)
        bert = await joined(one, "bert", "#o")
        await alice.send("TOPIC #o :t", "MODE #o +m")
        await bert.send("PART #o", "JOIN #o")
        await bert.sync()
        await alice.sync_until(lambda line: "JOIN" in line)
        assert await history(alice, "#o") == [":alice!~alice@127.0.0.1 TOPIC #o t"]


async def test_joining_and_leaving_leaves_no_history_where_nothing_was_said():
    """A channel whose history holds events only goes with its last member; one where
    something was said keeps its history, events included, for the next comer."""
    async with replicas(1) as (one,):
        alice = await joined(one, "alice", "#quiet", PLAYBACK)
        await alice.send("JOIN #said", "PRIVMSG #said :kept", "PART #quiet", "PART #said")
        await alice.sync()
        keys = {key async for key in one.store.redis.scan_iter("canaduck:chat:*:log")}
        assert keys == {b"canaduck:chat:{#said}:log"}
        await alice.send("JOIN #said")
        await alice.sync()
        assert commands(await history(alice, "#said")) == ["JOIN", "PRIVMSG", "PART", "JOIN"]


async def test_a_secret_channels_events_go_with_its_last_member():
    async with replicas(1) as (one,):
        alice = await joined(one, "alice", "#s", PLAYBACK)
        await alice.send("MODE #s +s", "PRIVMSG #s :secret", "PART #s")
        await alice.sync()
        stranger = await connect(one)
        await stranger.register("eve", caps=PLAYBACK)
        await stranger.send("JOIN #s")
        await stranger.sync()
        assert await history(stranger, "#s") == [":eve!~eve@127.0.0.1 JOIN #s"]

