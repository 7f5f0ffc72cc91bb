"""What a connection costs the gateway's memory (docs/ircd.md, "Memory per connection"): the
objects every connection has hold no instance dict, a subscription's confirmation is not kept
once Redis has answered, a registered connection in a channel stays within a budget of the
gateway's own heap, and TLS on the loop that would cost ten times uvloop's is warned of."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from pathlib import Path

import pytest

from apps.ircd.client import NOTHING, Client, Flusher
from apps.ircd.linebuffer import LineBuffer
from apps.ircd.server import IrcServer
from apps.ircd.transport import StreamTransport
from tests.unit.ircd_support import LineClient, connect, running_gateway

#: Bytes of the gateway's own heap a registered connection in one channel may take: 3.6-3.7
#: KiB measured here (asyncio's loop, fakeredis), 4.5 KiB before the shared capabilities and
#: the shorter chain of coroutines, 6.7 KiB before the slots and before each confirmation was
#: kept; what the event loop's transport and Redis hold is not counted.
BUDGET = 4 * 1024


class _Peer:
    peer_ip, secure, server_name, direct = "192.0.2.1", False, "", True


async def test_the_objects_of_every_connection_have_no_instance_dict():
    client = Client(_Peer(), "u1", server_name="irc.test", flusher=Flusher(),  # type: ignore[arg-type]
                    send_queue_bytes=1024, now=0)
    stream = StreamTransport(lambda transport: None, 512)  # type: ignore[arg-type, return-value]
    for thing in (client, stream, LineBuffer(512)):
        assert not hasattr(thing, "__dict__"), type(thing).__name__


async def test_clients_share_what_they_negotiated_and_hold_no_empty_sets():
    async with running_gateway() as gateway:
        first, second, plain = await connect(gateway), await connect(gateway), await connect(gateway)
        await first.register("first", caps="batch server-time")
        await second.register("second", caps="server-time batch")
        await plain.register("plain")
        by_nick = {c.nick: c for c in gateway.roster.connections}
        assert by_nick["first"].caps >= {"batch", "server-time"}
        assert by_nick["first"].caps is by_nick["second"].caps  # one frozenset for both
        assert by_nick["plain"].caps is NOTHING and by_nick["plain"].monitoring is NOTHING
        await first.send("MONITOR + plain")
        await first.sync()
        assert by_nick["first"].monitoring == {"plain"}
        for client in (first, second, plain):
            await client.close()


async def _arrive(gateway: IrcServer, first: int, count: int) -> list[LineClient]:
    clients = []
    for i in range(first, first + count):
        client = await connect(gateway)
        await client.register(f"m{i}")
        await client.send("JOIN #hall")
        await client.sync()
        clients.append(client)
    return clients


async def test_a_confirmed_subscription_keeps_nothing_behind():
    async with running_gateway() as gateway:
        clients = await _arrive(gateway, 0, 5)  # each follows its nick's channel, and #hall
        assert gateway.bus._confirmed == {}
        for client in clients:
            await client.close()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_registered_connection_in_a_channel_stays_within_its_budget():
    async with running_gateway() as gateway:
        clients = await _arrive(gateway, 0, 10)  # warm: what the first connections make once
        gc.collect()
        tracemalloc.start(12)
        try:
            before = tracemalloc.take_snapshot()
            clients += await _arrive(gateway, 10, 40)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        # The gateway's allocations only: not the test's clients, nor fakeredis standing in
        # for Redis.
        only = [tracemalloc.Filter(True, "*/apps/*", all_frames=True),
                tracemalloc.Filter(False, "*/tests/*", all_frames=True),
                tracemalloc.Filter(False, "*/fakeredis/*", all_frames=True)]
        grown = sum(stat.size_diff for stat in after.filter_traces(only).compare_to(
            before.filter_traces(only), "filename"))
        per_connection = grown / 40
        print(f"gateway heap per connection: {per_connection:.0f} B")
        assert per_connection < BUDGET
        for client in clients:
            await client.close()


async def test_tls_on_the_standard_librarys_loop_is_warned_of(certificate: tuple[Path, Path],
                                                              caplog: pytest.LogCaptureFixture):
    # The tests run on the standard library's loop: its TLS costs ~300 KiB per connection.
    cert, key = certificate
    with caplog.at_level(logging.WARNING, logger="canaduck.ircd"):
        async with running_gateway(tls_cert=str(cert), tls_key=str(key), irc_tls_port=0):
            pass
        async with running_gateway():  # no TLS: nothing to say
            pass
    warned = [r.getMessage() for r in caplog.records if "EVENT_LOOP=uvloop" in r.getMessage()]
    assert len(warned) == 1
