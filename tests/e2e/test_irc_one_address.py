"""One IRC address for the whole gateway: the local stack's replicas share one port
(SO_REUSEPORT), and a client whose replica dies reconnects through that same address."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time

import httpx

from scripts.devkit.ircclient import IrcClient


def replicas(stack) -> dict[str, str]:
    """Each gateway replica's instance id -> its own URL (from the directory)."""
    instances = stack.get("/directory/ircd").json()["instances"]
    return {item["instance"]: item["url"] for item in instances}


def stats(url: str) -> dict:
    return httpx.get(f"{url}/stats", timeout=5).json()


def reconnect(port: int, nick: str, within: float, *, sasl: tuple[str, str] | None = None) -> IrcClient:
    """Connect and register through `port` as a real client does after losing its server:
    retrying with a growing pause until a replica answers (logged in as `sasl`, if given)."""
    deadline, pause = time.monotonic() + within, 0.1
    while True:
        with contextlib.suppress(OSError, EOFError):
            client = IrcClient(port, timeout=5)
            if any(" 001 " in line for line in client.register(nick, sasl=sasl)):
                return client
            client.close()
        assert time.monotonic() < deadline, f"no replica took {nick} back within {within} s"
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def test_a_client_of_a_killed_replica_comes_back_through_the_same_address(stack):
    urls = replicas(stack)
    assert len(urls) == 2, urls
    shared = {stats(url)["ports"]["irc_shared"] for url in urls.values()}
    assert len(shared) == 1, shared  # one address for both
    port = shared.pop()
    channel, nick = f"#one{secrets.token_hex(3)}", f"roam{secrets.token_hex(2)}"

    before = {name: stats(url)["connections"] for name, url in urls.items()}
    roamer = IrcClient(port, timeout=10)
    roamer.register(nick)
    roamer.send(f"JOIN {channel}")
    roamer.sync()
    after = {name: stats(url)["connections"] for name, url in urls.items()}
    holder = next(name for name in urls if after[name] > before[name])
    other = next(name for name in urls if name != holder)
    witness = IrcClient(int(stats(urls[other])["ports"]["irc"]), timeout=10)
    witness.register(f"see{secrets.token_hex(2)}")
    witness.send(f"JOIN {channel}")
    witness.sync()

    killed = time.monotonic()
    os.kill(stack.service_pid(holder), signal.SIGKILL)
    with contextlib.suppress(OSError, EOFError):
        while roamer.line():  # until the dead replica's socket is closed by the kernel
            pass
    roamer.close()

    back = reconnect(port, nick, within=20)
    try:
        back.send(f"JOIN {channel}", f"PRIVMSG {channel} :back through the same address")
        back.sync()
        witness.until(lambda line: line.endswith("back through the same address"), timeout=15)
        print(f"\nkilled {holder}: its client heard again through the same address "
              f"{time.monotonic() - killed:.2f} s later")
    finally:
        back.close(), witness.close()
