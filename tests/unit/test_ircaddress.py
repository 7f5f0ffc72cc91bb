"""The checks of the one IRC address (scripts/devkit/ircaddress.py), as far as they go without a
Docker engine: a replica's /stats read from `docker exec`'s output, and a client registering
through an address as a real one does, an alternate nick included."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from apps.ircd.server import IrcServer
from scripts.devkit import ircaddress
from tests.unit.ircd_support import running_gateway


@pytest.fixture
def gateway() -> Iterator[IrcServer]:
    """A gateway on fakeredis, served by an event loop of its own: the blocking client of the
    checks talks to it from the test's thread."""
    ready: list[IrcServer] = []
    stop = threading.Event()

    async def serve() -> None:
        async with running_gateway() as server:
            ready.append(server)
            while not stop.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    for _ in range(500):
        if ready:
            break
        threading.Event().wait(0.01)
    assert ready, "the gateway did not start"
    yield ready[0]
    stop.set()
    thread.join(10)


def test_a_replicas_stats_are_read_from_the_http_answer_its_container_gives(monkeypatch):
    answers = {
        "crlf": 'HTTP/1.1 200 \r\ncontent-type: application/json\r\n\r\n{"connections": 3}',
        "lf": 'HTTP/1.1 200 \ncontent-type: application/json\n\n{"connections": 1}',
        "gone": "",
        "junk": "HTTP/1.1 500 \r\n\r\n<html>",
    }
    monkeypatch.setattr(ircaddress, "docker", lambda *args, timeout=60: answers[args[1]])
    assert ircaddress.stats("crlf") == {"connections": 3}
    assert ircaddress.stats("lf") == {"connections": 1}
    assert ircaddress.stats("gone") == {} and ircaddress.stats("junk") == {}
    containers = ircaddress.Containers(gateways=lambda: ["crlf", "gone"], balancers=list)
    assert ircaddress.connections(containers) == {"crlf": 3, "gone": -1}


def test_a_client_registers_and_whois_tells_its_host(gateway: IrcServer):
    client = ircaddress.connect(gateway.ports["irc"], "plain")
    try:
        assert ircaddress.host_of(client, "plain") == "127.0.0.1"
        assert not ircaddress.secure(client, "plain")
    finally:
        client.close()


def test_a_nick_still_held_is_answered_with_the_alternate(gateway: IrcServer):
    port = gateway.ports["irc"]
    holder = ircaddress.connect(port, "roamer")
    try:
        with pytest.raises(EOFError, match="not registered"):
            ircaddress.connect(port, "roamer")
        back = ircaddress.reconnect(port, "roamer", within=5)
        assert ircaddress.host_of(back, "roamer_") == "127.0.0.1"
        back.close()
    finally:
        holder.close()


def test_reconnect_gives_up_after_its_time():
    with pytest.raises(TimeoutError, match=r"within 0\.3 s"):
        ircaddress.reconnect(1, "nobody", within=0.3)  # port 1: nothing listens
