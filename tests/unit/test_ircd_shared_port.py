"""One IRC address for every replica on a host: a shared port bound with SO_REUSEPORT."""

from __future__ import annotations

import asyncio
import socket

import fakeredis

from apps.ircd.server import IrcServer
from tests.unit.ircd_support import LineClient, commands, running_gateway


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def welcome(port: int, nick: str) -> LineClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = LineClient(reader, writer)
    assert "001" in commands(await client.register(nick))
    return client


def local_clients(gateway: IrcServer) -> int:
    return len(gateway.roster.connections)


async def test_replicas_share_one_port_and_the_survivor_takes_every_new_client():
    shared, redis = free_port(), fakeredis.FakeServer()
    async with running_gateway(redis, instance="ircd-1", irc_shared_port=shared) as first:
        async with running_gateway(redis, instance="ircd-2", irc_shared_port=shared) as second:
            assert first.ports["irc_shared"] == second.ports["irc_shared"] == shared
            assert first.ports["irc"] != second.ports["irc"]  # each keeps its own port too
            clients = [await welcome(shared, f"u{i}") for i in range(12)]
            # The kernel spreads connections by a hash of their addresses: both get some.
            assert local_clients(first) > 0 and local_clients(second) > 0
            assert local_clients(first) + local_clients(second) == 12
            for client in clients:
                await client.close()
        # The second replica is gone (its listener with it): the same address still works.
        later = [await welcome(shared, f"v{i}") for i in range(8)]
        assert local_clients(first) == 8
        for client in later:
            await client.close()


async def test_without_a_shared_port_a_replica_listens_only_on_its_own():
    async with running_gateway() as gateway:
        assert set(gateway.ports) == {"irc"}
