"""The kit's subscriber (apps/kit/linksub.py) against a stand-in server on loopback: its login, its
health check, and a link that is lost or never made. Against the real server:
tests/integration/test_linksub_server.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import hiredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from apps.kit.linksub import LinkSubscriber, pack
from scripts.devkit.processes import free_port


class StandIn:
    """A server that answers the login (+OK), and PING only while `answers_ping`."""

    def __init__(self) -> None:
        self.commands: list[list[bytes]] = []
        self.answers_ping = True
        self.port = 0
        self.published = 0  # messages sent on "x" right after it is subscribed
        self.links: list[asyncio.StreamWriter] = []
        self.handlers: list[asyncio.Task[None]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links.append(writer)
        self.handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        parser = hiredis.Reader()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                parser.feed(data)
                while (command := parser.gets()) is not False:
                    self.commands.append(command)
                    name = command[0].upper()
                    if name in (b"AUTH", b"CLIENT"):
                        writer.write(b"+OK\r\n")
                    elif name == b"SUBSCRIBE":
                        for n, channel in enumerate(command[1:], 1):
                            writer.write(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:%d\r\n"
                                         % (len(channel), channel, n))
                        for i in range(self.published):
                            writer.write(pack("message", "x", str(i)))
                    elif name == b"PING" and self.answers_ping:
                        writer.write(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        writer.close()


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    server = StandIn()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    yield server
    listener.close()
    for link in server.links:
        link.close()
    await asyncio.gather(*server.handlers, return_exceptions=True)
    await listener.wait_closed()


def options(port: int, **more: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "username": "ircd", "password": "secret",
            "client_name": "ircd/test", "socket_connect_timeout": 2.0, **more}


def test_a_command_is_packed_as_resp():
    assert pack("SUBSCRIBE", "a", b"\xc3\xa9") == b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$2\r\n\xc3\xa9\r\n"


async def test_it_logs_in_names_itself_then_subscribes(stand_in: StandIn):
    subscriber = LinkSubscriber(options(stand_in.port))
    try:
        await subscriber.subscribe("x")
        message = await asyncio.wait_for(subscriber.get_message(timeout=None), 2)
        assert message == {"type": "subscribe", "pattern": None, "channel": b"x", "data": 1}
        assert stand_in.commands == [[b"AUTH", b"ircd", b"secret"], [b"CLIENT", b"SETNAME", b"ircd/test"],
                                     [b"SUBSCRIBE", b"x"]]
    finally:
        await subscriber.aclose()


async def test_the_commands_of_one_turn_go_out_in_one_write(stand_in: StandIn):
    subscriber = LinkSubscriber(options(stand_in.port))
    try:
        await subscriber.subscribe("a")
        await asyncio.sleep(0)  # the turn ends: its SUBSCRIBE goes
        transport = subscriber._transport
        assert transport is not None
        writes: list[bytes] = []
        write = transport.write

        def counted(data: Any) -> None:
            writes.append(bytes(data))
            write(data)

        transport.write = counted  # type: ignore[method-assign]
        for channel in ("b", "c", "d"):
            await subscriber.subscribe(channel)  # connected already: no await gives the turn away
        await subscriber.unsubscribe("a")
        assert writes == []
        await asyncio.sleep(0)
        assert writes == [pack("SUBSCRIBE", "b") + pack("SUBSCRIBE", "c") + pack("SUBSCRIBE", "d")
                          + pack("UNSUBSCRIBE", "a")]
        confirmed = [await asyncio.wait_for(subscriber.get_message(timeout=None), 2) for _ in range(4)]
        assert [m and m["channel"] for m in confirmed] == [b"a", b"b", b"c", b"d"]
    finally:
        await subscriber.aclose()


async def test_a_link_answering_its_pings_stays_up(stand_in: StandIn):
    subscriber = LinkSubscriber(options(stand_in.port, health_check_interval=0.05),
                                ignore_subscribe_messages=True)
    try:
        await subscriber.subscribe("x")
        await asyncio.sleep(0.4)
        assert await subscriber.get_message(timeout=0) is None  # the confirmation; no error
        assert await subscriber.get_message(timeout=0) is None
        assert stand_in.commands.count([b"PING"]) >= 3
    finally:
        await subscriber.aclose()


async def test_a_silent_link_is_given_up_after_a_ping_goes_unanswered(stand_in: StandIn):
    stand_in.answers_ping = False
    subscriber = LinkSubscriber(options(stand_in.port, health_check_interval=0.05),
                                ignore_subscribe_messages=True)
    try:
        await subscriber.subscribe("x")
        with pytest.raises(RedisConnectionError, match=r"no answer to PING in 0\.05 s"):
            await asyncio.wait_for(subscriber.get_message(timeout=None), 2)
        assert [b"PING"] in stand_in.commands
    finally:
        await subscriber.aclose()


async def test_a_reader_that_falls_behind_stops_the_link_reading_and_loses_nothing(stand_in: StandIn):
    # Past `max_queued` messages not taken, the link stops reading (Redis keeps the rest, up to
    # its limit for a subscriber) and reads again as they are taken.
    stand_in.published = 50_000  # about 1.5 MB: more than one read
    subscriber = LinkSubscriber(options(stand_in.port), ignore_subscribe_messages=True, max_queued=100)
    try:
        await subscriber.subscribe("x")
        await asyncio.sleep(0.2)
        assert subscriber._transport is not None and not subscriber._transport.is_reading()
        assert subscriber._messages.qsize() < 50_000  # what one read brought, past the 100
        got = [await asyncio.wait_for(subscriber.get_message(timeout=None), 2) for _ in range(50_000)]
        assert [m["data"] for m in got if m] == [str(i).encode() for i in range(50_000)]
        assert subscriber._transport.is_reading()
    finally:
        await subscriber.aclose()


async def test_a_health_check_due_as_the_link_closes_does_nothing(stand_in: StandIn):
    subscriber = LinkSubscriber(options(stand_in.port))
    try:
        await subscriber.subscribe("x")
        assert subscriber._transport is not None
        subscriber._transport.close()
        subscriber._check_health()  # raised "link is closed" in the timer's callback before
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(subscriber.get_message(ignore_subscribe_messages=True, timeout=None), 2)
        assert [b"PING"] not in stand_in.commands
    finally:
        await subscriber.aclose()


async def test_no_server_is_a_connection_error():
    subscriber = LinkSubscriber(options(free_port()))
    with pytest.raises(RedisConnectionError):
        await subscriber.subscribe("x")
    await subscriber.aclose()


async def test_a_closed_subscriber_subscribes_no_more(stand_in: StandIn):
    subscriber = LinkSubscriber(options(stand_in.port))
    await subscriber.aclose()
    with pytest.raises(RedisConnectionError):
        await subscriber.subscribe("x")
    assert stand_in.commands == []
