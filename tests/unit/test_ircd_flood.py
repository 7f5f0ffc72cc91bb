"""One client against everyone: flood control on every line, one line per turn, and a
connection that goes away taking its backlog with it.

Each test fails on a gateway that exempts keep-alives or unregistered lines from flood
control, handles a connection's queued lines without giving others a turn, or keeps handling
(and relaying) what a vanished client sent."""

from __future__ import annotations

import asyncio
import socket
import struct

from tests.unit.ircd_support import LineClient, commands, connect, running_gateway


def reset(client: LineClient) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a client killed mid-flood does."""
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_backlog_of_cheap_lines_does_not_hold_up_another_connection():
    # Flood control out of the way (a huge budget): only the scheduling is under test.
    async with running_gateway(flood_lines=10_000_000) as gateway:
        watcher = await connect(gateway)
        await watcher.register("watcher")
        flooder = await connect(gateway)
        flood = 200_000
        flooder.writer.write(b"PONG x\r\n" * flood)  # unregistered, as fast as the socket takes it
        await wait_for(lambda: gateway.counts["commands"] > 1000)  # the backlog is being handled
        before = gateway.counts["commands"]
        await watcher.sync()
        handled = gateway.counts["commands"] - before
        # The watcher's PING waited for about a turn of the flooder, not for a chunk of its
        # backlog (thousands of lines arrive in one read).
        assert handled < 100, f"{handled} of the flood's lines went before the watcher's PING"
        await wait_for(lambda: gateway.counts["commands"] - before >= flood // 2, timeout=60)
        await flooder.close()
        await watcher.close()


async def test_keepalives_and_unregistered_lines_count_against_the_flood_budget():
    async with running_gateway(flood_lines=5, flood_window=1.0) as gateway:
        flooder = await connect(gateway)
        await flooder.send(*["PONG x"] * 20)  # never registered
        await wait_for(lambda: gateway.counts["throttled"] >= 1)
        registered = await connect(gateway)
        await registered.register("pinger")
        throttled = gateway.counts["throttled"]
        await registered.send(*[f"PING p{i}" for i in range(10)])
        lines = await registered.sync(timeout=10)
        assert commands(lines).count("PONG") == 10  # slowed down, nothing dropped
        assert gateway.counts["throttled"] > throttled
        await flooder.close()
        await registered.close()


async def test_a_flooder_that_resets_is_gone_at_once_with_its_backlog() -> None:
    async with running_gateway(flood_lines=10, flood_window=1.0) as gateway:
        watcher = await connect(gateway)
        await watcher.register("watcher")
        await watcher.send("JOIN #room")
        await watcher.sync()
        flooder = await connect(gateway)
        await flooder.register("flooder")
        await flooder.send("JOIN #room")
        await flooder.sync()
        await watcher.sync()
        loop = asyncio.get_running_loop()
        flooding = loop.time()
        flooder.writer.write(b"".join(b"PRIVMSG #room :flood %d\r\n" % i for i in range(5000)))
        await flooder.writer.drain()
        await wait_for(lambda: gateway.counts["throttled"] >= 1)
        reset(flooder)
        cut = loop.time()
        seen: list[str] = []
        while not any(" QUIT " in line for line in seen):
            seen += await watcher.sync()
            assert loop.time() - cut < 3, "no QUIT for the flooder"
        relayed = [line for line in seen if "PRIVMSG #room :flood" in line]
        # What its budget allowed until its QUIT (the burst of 10, then 10 a second: a loaded
        # machine takes longer to see the reset), not its backlog of 5,000.
        allowed = 10 + 10 * (loop.time() - flooding)
        assert len(relayed) <= allowed, f"{len(relayed)} lines of a gone client were relayed"
        assert gateway.counts["dropped"] >= 1
        # Its nick and its address's connection slot are free again.
        await wait_for(lambda: "flooder" not in {c.nick for cs in gateway.clients.values() for c in cs})
        assert await gateway.store.uid_of("flooder") is None
        newcomer = await connect(gateway)
        assert "001" in commands(await newcomer.register("flooder"))
        seen = await watcher.sync()
        assert not [line for line in seen if "PRIVMSG #room :flood" in line]
        await newcomer.close()
        await watcher.close()


async def test_what_a_client_sent_before_a_clean_close_is_handled_within_its_budget():
    async with running_gateway(flood_lines=10, flood_window=5.0) as gateway:
        watcher = await connect(gateway)
        await watcher.register("watcher")
        await watcher.send("JOIN #room")
        await watcher.sync()
        leaver = await connect(gateway)
        await leaver.register("leaver")
        await leaver.send("JOIN #room")
        await leaver.sync()
        # Within the budget: every line counts, the QUIT's reason included.
        leaver.writer.write(b"PRIVMSG #room :last words\r\nQUIT :bye now\r\n")
        leaver.writer.write_eof()
        lines = await watcher.sync_until(lambda line: " QUIT " in line)
        assert any(line.endswith("PRIVMSG #room :last words") for line in lines)
        assert any(line.endswith("QUIT :Quit: bye now") for line in lines)
        # Past it: the rest is dropped, not waited for (at 2 lines a second it would take minutes).
        flooder = await connect(gateway)
        await flooder.register("flooder")
        await flooder.send("JOIN #room")
        await flooder.sync()
        await watcher.sync()
        flooder.writer.write(b"".join(b"PRIVMSG #room :flood %d\r\n" % i for i in range(500)))
        flooder.writer.write_eof()
        loop = asyncio.get_running_loop()
        start = loop.time()
        lines = []
        while not any(" QUIT " in line for line in lines):
            assert loop.time() - start < 5, "the flooder's backlog was waited for"
            lines += await watcher.sync()
        assert len([line for line in lines if "flood" in line]) <= 10
        await watcher.close()

