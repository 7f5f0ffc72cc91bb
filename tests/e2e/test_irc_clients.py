"""Real IRC clients (Debian's ii and weechat-headless) on two gateway replicas.

Ours: two gateways sharing one Redis, each client on its own replica, so every line between
them crosses Redis. ngIRCd (one process, both clients on it) runs the same conversation to
check the client drivers themselves against a server nobody here wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.devkit import free_port, scratch_dir, wait_until
from scripts.devkit.ircstack import (
    ChatBacking,
    Gateway,
    GatewaySpec,
    has_ircd,
    ngircd_binary,
    start_ngircd,
    stop_gateways,
)
from tests.e2e.irc_clients import IiClient, WeechatClient, missing

pytestmark = pytest.mark.e2e

CHANNEL = "#canaduck"


@dataclass
class Replicas:
    name: str
    ports: tuple[int, int]
    workdir: Path


def _skip_without_clients() -> None:
    for binary in ("ii", "weechat-headless"):
        reason = missing(binary)
        if reason:
            pytest.skip(reason)


@pytest.fixture(scope="module", params=["canaduck", "ngircd"])
def replicas(request: pytest.FixtureRequest) -> Iterator[Replicas]:
    _skip_without_clients()
    workdir = scratch_dir("irc-clients")
    gateways: list[Gateway] = []
    backing: ChatBacking | None = None
    try:
        if request.param == "ngircd":
            if ngircd_binary() is None:
                pytest.skip("ngircd is not installed (apt-get install ngircd)")
            gateways.append(start_ngircd(GatewaySpec(port=free_port()), workdir).wait())
            ports = (gateways[0].listen_port, gateways[0].listen_port)
        else:
            if not has_ircd():
                pytest.skip("this checkout has no IRC gateway (apps.ircd)")
            backing = ChatBacking().start()
            for index in (1, 2):
                spec = GatewaySpec(port=free_port(), http_port=free_port())
                gateways.append(backing.start_ircd(spec, f"ircd-{index}"))
            for gateway in gateways:
                gateway.wait(30)
            ports = (gateways[0].listen_port, gateways[1].listen_port)
        yield Replicas(request.param, ports, workdir)
    finally:
        stop_gateways(gateways)
        if backing is not None:
            backing.stop()


@pytest.fixture
def clients() -> Iterator[list[IiClient | WeechatClient]]:
    started: list[IiClient | WeechatClient] = []
    yield started
    for client in started:
        client.stop()


def test_ii_and_weechat_on_two_replicas_talk(replicas: Replicas, clients: list) -> None:
    alice = IiClient("alice", replicas.ports[0], replicas.workdir / "ii-alice").start()
    clients.append(alice)
    bob = WeechatClient("bob", replicas.ports[1], replicas.workdir / "weechat-bob").start()
    clients.append(bob)
    alice.join(CHANNEL)
    # Her JOIN back means her replica follows the channel: a JOIN from the other replica in the
    # instant before that can be missed (docs/ircd.md, "Joining while another replica joins").
    wait_until(lambda: "alice" in alice.channel_log(CHANNEL), timeout=10)
    bob.join(CHANNEL)
    wait_until(lambda: "bob" in alice.channel_log(CHANNEL), timeout=10)  # alice saw bob join

    alice.say(CHANNEL, "hello from ii")
    bob.say(CHANNEL, "hello from weechat")

    wait_until(lambda: bob.saw(CHANNEL, "alice", "hello from ii"), timeout=10)
    wait_until(lambda: alice.saw(CHANNEL, "bob", "hello from weechat"), timeout=10)


def test_reconnect_to_the_other_replica_gets_the_backlog(replicas: Replicas, clients: list) -> None:
    if replicas.name == "ngircd":
        pytest.skip("ngIRCd keeps no history: the backlog is ours only")
    alice = IiClient("carol", replicas.ports[0], replicas.workdir / "ii-carol").start()
    clients.append(alice)
    alice.join(CHANNEL)
    alice.say(CHANNEL, "said before dave came")
    alice.say(CHANNEL, "and a second line")

    # dave never was on this channel; he connects to the other replica and asks for history.
    dave = WeechatClient("dave", replicas.ports[1], replicas.workdir / "weechat-dave").start()
    clients.append(dave)
    dave.join(CHANNEL)
    dave.command("/quote CAP REQ :draft/chathistory batch server-time")
    dave.command(f"/quote CHATHISTORY LATEST {CHANNEL} * 50")
    wait_until(lambda: dave.saw(CHANNEL, "carol", "said before dave came"), timeout=10)
    wait_until(lambda: dave.saw(CHANNEL, "carol", "and a second line"), timeout=10)

    # and after a reconnection to the first replica, what was said meanwhile.
    dave.stop()
    alice.say(CHANNEL, "while dave was away")
    dave_again = WeechatClient("dave", replicas.ports[0], replicas.workdir / "weechat-dave-2").start()
    clients.append(dave_again)
    dave_again.join(CHANNEL)
    dave_again.command("/quote CAP REQ :draft/chathistory batch server-time")
    dave_again.command(f"/quote CHATHISTORY LATEST {CHANNEL} * 50")
    wait_until(lambda: dave_again.saw(CHANNEL, "carol", "while dave was away"), timeout=10)
