"""IRCv3 capabilities that cross replicas, on two real gateway processes sharing the real
server, with the users service for SASL: what a client of one replica does reaches the clients
of the other as the capability's specification says."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

import redis
from scripts.devkit import RedisServer, ServiceLauncher, ServiceProcess, free_port
from scripts.devkit.ircclient import IrcClient

FAST = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}
PASSWORD = "sesame-long"


@dataclass
class Stack:
    users: ServiceProcess
    ports: tuple[int, int]  # the two replicas' IRC ports

    def account(self, name: str) -> None:
        body = {"account": name, "password": PASSWORD}
        response = httpx.post(f"{self.users.url}/api/users/register", json=body)
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def started(redis_server: RedisServer) -> Iterator[Stack]:
    launcher = ServiceLauncher(redis_server)
    try:
        users = launcher.start("apps.users", "users", **FAST)
        ports = []
        for name in ("ircd-a", "ircd-b"):
            port = free_port()
            launcher.start("apps.ircd", "ircd", INSTANCE_ID=name, IRC_PORT=str(port), IRC_HOST="127.0.0.1",
                           SERVER_NAME="irc.test", MAX_CONNECTIONS_PER_IP="1000", USERS_URL=users.url)
            ports.append(port)
        yield Stack(users, (ports[0], ports[1]))
    finally:
        launcher.stop_all()


@pytest.fixture
def stack(started: Stack, admin: redis.Redis) -> Stack:
    """The module's stack on an emptied server (`admin` empties it)."""
    return started


def plain(account: str, password: str) -> str:
    return base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()


def in_channel(port: int, nick: str, channel: str, caps: str) -> IrcClient:
    client = IrcClient(port)
    assert any(" 001 " in line for line in client.register(nick, caps))
    client.send(f"JOIN {channel}")
    client.sync()
    return client


def test_account_notify_crosses_replicas(stack: Stack):
    stack.account("Jilles")
    alice = in_channel(stack.ports[0], "alice", "#an", "account-notify")
    bob = in_channel(stack.ports[1], "bob", "#an", "account-notify sasl")
    alice.until(lambda line: line.endswith("JOIN #an") and line.startswith(":bob!"))
    bob.send("AUTHENTICATE PLAIN")
    assert bob.line() == "AUTHENTICATE +"
    bob.send(f"AUTHENTICATE {plain('Jilles', PASSWORD)}")
    assert bob.until(lambda line: " ACCOUNT " in line)[-1] == ":bob!~bob@127.0.0.1 ACCOUNT Jilles"
    assert alice.until(lambda line: " ACCOUNT " in line)[-1] == ":bob!~bob@127.0.0.1 ACCOUNT Jilles"
    alice.close(), bob.close()


def test_invite_notify_crosses_replicas(stack: Stack):
    alice = in_channel(stack.ports[0], "alice", "#in", "")
    carol = in_channel(stack.ports[1], "carol", "#in", "invite-notify")
    dave = IrcClient(stack.ports[0])
    dave.register("dave")
    alice.until(lambda line: line.startswith(":carol!") and line.endswith("JOIN #in"))
    alice.send("INVITE dave #in")
    invite = ":alice!~alice@127.0.0.1 INVITE dave #in"
    assert carol.until(lambda line: " INVITE " in line)[-1] == invite
    assert dave.until(lambda line: " INVITE " in line)[-1] == invite
    alice.close(), carol.close(), dave.close()
