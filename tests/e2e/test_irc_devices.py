"""One account on devices on both gateway replicas of the local stack, and always-on, when a
replica is SIGKILLed: the account's user never leaves, its device on the live replica goes on,
and the dead one's device comes back through the one IRC address as the same user."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from typing import cast

import httpx

import redis
from scripts.devkit.ircclient import IrcClient
from tests.e2e.test_irc_one_address import reconnect, replicas, stats

PASSWORD = "correct horse battery"


def account(stack, prefix: str) -> tuple[str, str]:
    name = f"{prefix}{secrets.token_hex(3)}"
    response = httpx.post(f"{stack.url}/api/users/register", json={"account": name, "password": PASSWORD},
                          timeout=10)
    assert response.status_code == 201, response.text
    return name, PASSWORD


def devices_of(inspector: redis.Redis, nick: str) -> dict[bytes, bytes]:
    # The inspector leaves replies undecoded: bytes, never str.
    uid = cast(bytes | None, inspector.get(f"canaduck:irc:nick:{{{nick.lower()}}}"))
    assert uid is not None, f"{nick} left the network"
    return cast(dict[bytes, bytes], inspector.hgetall(f"canaduck:irc:user:{{{uid.decode()}}}:devices"))


def test_an_accounts_devices_and_always_on_user_outlive_a_killed_replica(stack):
    urls = replicas(stack)
    assert len(urls) == 2, urls
    doomed, alive = sorted(urls)
    port_of = {name: int(stats(url)["ports"]["irc"]) for name, url in urls.items()}
    shared = int(stats(urls[alive])["ports"]["irc_shared"])
    inspector = redis.Redis(port=stack.redis_port, username="inspector", password="dev-only-inspector")
    alice, carol = account(stack, "dev"), account(stack, "aon")
    channel = f"#dev{secrets.token_hex(3)}"

    laptop = IrcClient(port_of[doomed], timeout=10)
    assert any(" 001 " in line for line in laptop.register(alice[0], sasl=alice))
    laptop.send(f"JOIN {channel}")
    laptop.sync()
    phone = IrcClient(port_of[alive], timeout=10)
    welcome = phone.register(alice[0], sasl=alice)
    assert any(line.endswith(f"JOIN {channel}") for line in welcome)  # its user's channel
    only_there = IrcClient(port_of[doomed], timeout=10)  # carol: one device, on the doomed one
    only_there.register(carol[0], sasl=carol)
    only_there.send(f"JOIN {channel}")
    only_there.sync()
    witness = IrcClient(port_of[alive], timeout=10)
    witness.register(f"see{secrets.token_hex(2)}", "away-notify")
    witness.send(f"JOIN {channel}")
    witness.sync()
    assert sorted(devices_of(inspector, alice[0]).values()) == sorted(name.encode() for name in urls)

    os.kill(stack.service_pid(doomed), signal.SIGKILL)
    for gone in (laptop, only_there):
        with contextlib.suppress(OSError, EOFError):
            while gone.line():  # until the dead replica's socket is closed by the kernel
                pass
        gone.close()
    # The sweeper of the live replica notices the dead one and forgets its devices.
    deadline = time.monotonic() + 40
    while set(devices_of(inspector, alice[0]).values()) != {alive.encode()}:
        assert time.monotonic() < deadline, devices_of(inspector, alice[0])
        time.sleep(0.5)
    seen = witness.until(lambda line: f"{carol[0]}!" in line and " AWAY " in line, timeout=20)
    assert not [line for line in seen if " QUIT " in line], seen  # neither alice nor carol left

    phone.send(f"PRIVMSG {channel} :still here on my phone")
    phone.sync()
    witness.until(lambda line: line.endswith("still here on my phone"), timeout=10)
    back = reconnect(shared, alice[0], within=20, sasl=alice)
    try:
        back.send(f"PRIVMSG {channel} :the laptop is back")
        back.sync()
        heard = witness.until(lambda line: line.endswith("the laptop is back"), timeout=10)
        assert heard[-1].startswith(f":{alice[0]}!")  # the same user, the same nick
        assert not [line for line in heard if " QUIT " in line or " JOIN " in line], heard
        witness.send(f"WHOIS {carol[0]}")
        assert any(" 301 " in line and "Disconnected" in line for line in witness.sync())
    finally:
        for client in (back, phone, witness):
            client.close()
        inspector.close()
