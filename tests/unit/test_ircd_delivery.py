"""The gateway's output path: one write per client per turn, SendQ, keep-alives, tasks."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import fakeredis
import pytest

from apps.chat.conversations import ChatMessage, MessageLine, published_by
from apps.chat.events import ChannelEvent, Line
from apps.chat.keys import ChatKeys
from apps.ircd import render
from apps.ircd.client import Client, Flusher, shared_caps
from apps.ircd.delivery import Delivery
from apps.ircd.render import Fanout, Rendered, deliver
from apps.ircd.roster import Feed, LiveFeed
from apps.ircd.router import Router
from apps.ircd.server import IrcServer
from tests.unit.ircd_support import connect, running_gateway


def tasks_of(gateway: IrcServer) -> int:
    """Tasks running in this loop (the test's own included)."""
    return len(asyncio.all_tasks())


async def test_a_connection_costs_one_task_and_a_message_is_formatted_once_per_tag_set():
    async with running_gateway() as gateway:
        sender = await connect(gateway)
        await sender.register("sender", caps="server-time")
        await sender.send("JOIN #room")
        await sender.sync()
        before = tasks_of(gateway)
        members = [await connect(gateway) for _ in range(6)]
        for i, member in enumerate(members):
            await member.register(f"m{i}", caps="server-time" if i % 2 else "")
            await member.send("JOIN #room")
            await member.sync()
        assert tasks_of(gateway) - before == len(members)  # no writer, no pinger per connection
        await sender.send("PRIVMSG #room :hello all")
        await sender.sync()
        for i, member in enumerate(members):
            got = [line for line in await member.sync() if "PRIVMSG" in line]
            assert got and got[0].endswith(":sender!~sender@127.0.0.1 PRIVMSG #room :hello all")
            assert got[0].startswith("@time=") == bool(i % 2)
        for client in [sender, *members]:
            await client.close()


async def test_a_lines_alternative_is_formatted_once_for_all_its_recipients(monkeypatch: pytest.MonkeyPatch):
    # A JOIN goes as extended-join's JOIN to who negotiated it, as the plain one to the others:
    # each form formatted once, every recipient holding the same string until the write.
    made: list[str] = []
    formatted = render.format_line

    def counting(command: str, params: list[str], **kwargs: object) -> str:
        made.append(command)
        return formatted(command, params, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "format_line", counting)
    plain = Line("a!u@h", "JOIN", ["#hall"])
    extended = Line("a!u@h", "JOIN", ["#hall", "*", "A"], needs=("extended-join",), alt=plain)
    clients = [Client(StuckTransport(), f"c{i}", server_name="irc.test", flusher=Flusher(),  # type: ignore[arg-type]
                      send_queue_bytes=4096, now=0) for i in range(6)]
    clients[0].caps = frozenset({"extended-join"})
    rendered = Rendered()
    for client in clients:
        deliver(client, extended, rendered)
    assert made == ["JOIN", "JOIN"]  # the extended form once, the plain one once
    pending = [client._pending or [] for client in clients]
    assert pending[0] == [":a!u@h JOIN #hall * A"]
    assert all(lines == [":a!u@h JOIN #hall"] for lines in pending[1:])
    assert len({id(lines[0]) for lines in pending[1:]}) == 1  # one string, not one per client


def test_a_fanout_gives_every_client_what_it_would_get_alone():
    # Its forms are cached by kind of recipient: each kind must get exactly what `forms`
    # works out for one client of it, whatever else it negotiated.
    tags = {"time": "2026-01-01T00:00:00.000Z", "msgid": "m1", "account": "acc", "+draft/reply": "x"}
    plain = Line("a!u@h", "JOIN", ["#hall"], tags)
    lines = [
        Line("a!u@h", "JOIN", ["#hall", "acc", "A"], tags, needs=("extended-join",), alt=plain),
        Line("a!u@h", "TAGMSG", ["#hall"], tags),
        Line("a!u@h", "AWAY", ["gone"], tags, needs=("away-notify",)),
        Line("a!u@h", "WALLOPS", ["hi"], tags, umode="w"),
        Line("a!u@h", "PRIVMSG", ["#hall", "one\ntwo"], tags,
             lines=(MessageLine("one"), MessageLine("two"))),
    ]
    caps = ["extended-join", "server-time", "account-tag", "message-tags", "batch", "draft/multiline",
            "away-notify", "no-implicit-names"]
    clients = []
    for n, chosen in enumerate(itertools.chain.from_iterable(
            itertools.combinations(caps, k) for k in range(len(caps) + 1))):
        client = Client(StuckTransport(), f"c{n}", server_name="irc.test", flusher=Flusher(),  # type: ignore[arg-type]
                        send_queue_bytes=4096, now=0)
        client.caps = shared_caps(chosen)
        client.modes = "w" if n % 2 else ""
        clients.append(client)
    for line in lines:
        fanout = Fanout(line)
        for client in clients:
            assert fanout.forms(client) == render.forms(client, line), (line.command, client.caps)


class StuckTransport:
    """A peer that never reads: everything sent stays buffered."""

    peer_ip, secure, server_name, direct = "192.0.2.1", False, "", True

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.aborted = self.stopped = False

    def send(self, lines: list[str]) -> None:
        self.sent += lines

    def buffered(self) -> int:
        return sum(len(line) + 2 for line in self.sent)

    def stop_reading(self) -> None:
        self.stopped = True

    def abort(self) -> None:
        self.aborted = True


async def test_lines_go_out_in_one_write_per_turn_and_a_client_not_reading_is_cut():
    transport = StuckTransport()
    client = Client(transport, "c1", server_name="irc.test", flusher=Flusher(),  # type: ignore[arg-type]
                    send_queue_bytes=4096, now=0)
    client.send("one")
    client.send("two")
    assert transport.sent == []  # written at the end of this turn, together
    await asyncio.sleep(0)
    assert transport.sent == ["one", "two"]
    for _ in range(10):
        client.send("x" * 500)
    await asyncio.sleep(0)
    assert transport.aborted and client.closing and client.quit_reason == "SendQ exceeded"
    client.send("dropped")
    await asyncio.sleep(0)
    assert "dropped" not in transport.sent


async def test_keepalive_pings_a_quiet_client_and_cuts_a_silent_one():
    async with running_gateway(ping_interval=0.2, ping_timeout=0.3) as gateway:
        client = await connect(gateway)
        await client.register("quiet")
        line = await asyncio.wait_for(client.reader.readline(), 3)
        assert line == b"PING :irc.test\r\n"
        rest = await asyncio.wait_for(client.reader.read(), 3)  # no PONG: cut, then EOF
        assert b"ERROR :Closing link: Ping timeout" in rest
        assert not gateway.clients


async def test_an_unregistered_connection_is_closed_after_the_registration_timeout():
    async with running_gateway(registration_timeout=0.3) as gateway:
        client = await connect(gateway)
        rest = await asyncio.wait_for(client.reader.read(), 3)
        assert b"ERROR :Closing link: registration timeout" in rest
        assert not gateway.roster.connections


async def test_a_replica_skips_only_its_own_messages_not_a_sources_that_moved_away():
    # The same source (nick!user@host) posts through one replica, then, reconnected, through
    # the other: that second message is the other replica's, and reaches this one's members.
    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="one") as one, running_gateway(shared, instance="two") as two:
        alice, bob = await connect(one), await connect(one)
        await alice.register("alice")
        await bob.register("bob")
        for client in (alice, bob):
            await client.send("JOIN #c")
            await client.sync()
        await alice.send("PRIVMSG #c :from one", "QUIT")
        assert any("from one" in line for line in await bob.sync_until(lambda line: " QUIT " in line))
        await alice.close()
        again = await connect(two)
        await again.register("alice")
        await again.send("JOIN #c", "PRIVMSG #c :from two")
        await again.sync()
        got = await bob.sync_until(lambda line: "from two" in line)
        assert ":alice!~alice@127.0.0.1 PRIVMSG #c :from two" in got
        await again.close(), await bob.close()


async def test_a_payload_that_is_no_event_of_this_version_is_counted_and_dropped():
    async with running_gateway() as gateway:
        client = await connect(gateway)
        await client.register("alice")
        await client.send("JOIN #c")
        await client.sync()
        keys = gateway.settings.chat_keys
        redis = gateway.store.redis
        future = ChannelEvent("elsewhere", "#c", Line("x!y@z", "PRIVMSG", ["#c", "from v2"])).to_json()
        for channel, payload in [(keys.channel_events("#c"), b"not json"),
                                 (keys.channel_events("#c"), future.replace('"v":1', '"v":2').encode()),
                                 (keys.replica_events("ircd-test"), b'{"v": 1, "to": ["x"]}'),
                                 (keys.broadcast, b"[]"), (keys.live("#c"), b"{}")]:
            await redis.publish(channel, payload)
        for _ in range(50):
            if gateway.counts["malformed"] >= 5:
                break
            await asyncio.sleep(0.02)
        assert gateway.counts["malformed"] == 5
        await redis.publish(keys.channel_events("#c"), future)  # a good one still goes through
        got = await client.sync_until(lambda line: "from v2" in line)
        assert ":x!y@z PRIVMSG #c :from v2" in got
        await client.close()


async def test_lines_that_can_wait_go_out_after_the_delay_unless_one_that_cannot_takes_them_along():
    transport = StuckTransport()
    client = Client(transport, "c1", server_name="irc.test", flusher=Flusher(0.05),  # type: ignore[arg-type]
                    send_queue_bytes=4096, now=0)
    client.send("JOIN 1", can_wait=True)
    await asyncio.sleep(0)
    assert transport.sent == []  # not at the end of the turn
    await asyncio.sleep(0.1)
    assert transport.sent == ["JOIN 1"]
    client.send("JOIN 2", can_wait=True)
    client.send("PRIVMSG")
    client.send("JOIN 3", can_wait=True)
    await asyncio.sleep(0)
    assert transport.sent == ["JOIN 1", "JOIN 2", "PRIVMSG", "JOIN 3"]  # in one write, in order
    await asyncio.sleep(0.1)
    assert transport.sent == ["JOIN 1", "JOIN 2", "PRIVMSG", "JOIN 3"]  # and not again


@pytest.mark.parametrize("members", [2, 3])
async def test_in_a_big_channel_others_comings_and_goings_wait_and_the_ones_own_does_not(members: int):
    # From `wait_from` members here, a JOIN, PART or QUIT can wait for the flusher's delay,
    # but not for whoever came or went; in a smaller channel nothing waits; a message never.
    clients = [Client(StuckTransport(), f"c{i}", server_name="irc.test", flusher=Flusher(60),  # type: ignore[arg-type]
                      send_queue_bytes=4096, now=0) for i in range(members)]
    for i, client in enumerate(clients):
        client.nick = f"n{i}"
    roster = SimpleNamespace(local={"#hall": set(clients)})
    delivery = Delivery(None, None, "ircd-test", roster, Counter(), lambda: "id",  # type: ignore[arg-type]
                        wait_from=3)
    delivery.local(["#hall"], Line("n0!u@h", "JOIN", ["#hall"]))
    await asyncio.sleep(0)
    big = members >= 3
    assert clients[0].transport.sent == [":n0!u@h JOIN #hall"]  # type: ignore[attr-defined]
    assert all(c.transport.sent == ([] if big else [":n0!u@h JOIN #hall"])  # type: ignore[attr-defined]
               for c in clients[1:])
    delivery.local(["#hall"], Line("n0!u@h", "PRIVMSG", ["#hall", "hi"]))
    await asyncio.sleep(0)
    for c in clients[1:]:
        assert c.transport.sent == [":n0!u@h JOIN #hall", ":n0!u@h PRIVMSG #hall hi"]  # type: ignore[attr-defined]


async def test_a_big_channels_joins_that_wait_still_all_arrive():
    async def line_with(member: object, *words: str) -> str:
        # Read without a PING: its PONG would take the waiting lines along.
        while True:
            raw = await asyncio.wait_for(member.reader.readline(), 3)  # type: ignore[attr-defined]
            if all(word in raw.decode() for word in words):
                return raw.decode().rstrip()

    async with running_gateway(presence_wait_members=2, presence_delay=0.05) as gateway:
        members = [await connect(gateway) for _ in range(4)]
        for i, member in enumerate(members):
            await member.register(f"m{i}")
            await member.send("JOIN #hall")
            await line_with(member, " 366 ")
        for member in members[:3]:
            assert await line_with(member, "JOIN #hall", ":m3!")
        await members[3].send("PART #hall")
        for member in members[:3]:
            assert await line_with(member, "PART #hall", ":m3!")
        for member in members:
            await member.close()


async def test_a_replica_passes_over_its_own_messages_unparsed_and_delivers_the_others() -> None:
    # Its own message came back from the bus after its members had it: by the payload's ending
    # alone (even one that would not parse), where another replica's is parsed and delivered.
    member = Client(StuckTransport(), "c1", server_name="irc.test", flusher=Flusher(),  # type: ignore[arg-type]
                    send_queue_bytes=4096, now=0)
    live = "canaduck:chat:{#c}:live"
    roster = SimpleNamespace(local={"#c": {member}}, live={live: LiveFeed(Feed.CHANNEL, "#c")})
    counts: Counter[str] = Counter()
    delivery = Delivery(None, None, "ircd-1", roster, counts, lambda: "id")  # type: ignore[arg-type]
    router = Router(ChatKeys(), "ircd-1", roster, delivery, counts)  # type: ignore[arg-type]
    await router(live, b'{"not parsed":' + published_by("ircd-1"))
    assert counts["malformed"] == 0
    await router(live, b'{"not parsed":' + published_by("ircd-2"))
    assert counts["malformed"] == 1
    said = ChatMessage("PRIVMSG", "a!u@h", "#c", "hi", id="1000-0")
    await router(live, replace(said, origin="ircd-1").to_json().encode())
    await router(live, replace(said, origin="ircd-2").to_json().encode())
    await asyncio.sleep(0)
    assert member.transport.sent == [":a!u@h PRIVMSG #c hi"]  # type: ignore[attr-defined]
