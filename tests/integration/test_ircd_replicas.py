"""Two gateway replicas on the real server: clients on either one share channels and history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

import redis
from scripts.devkit import RedisServer, ServiceLauncher, ServiceProcess, free_ports, wait_until
from scripts.devkit.ircclient import IrcClient


def start_replica(launcher: ServiceLauncher, name: str) -> tuple[ServiceProcess, int]:
    port, http_port = free_ports(2)
    svc = launcher.start("apps.ircd", "ircd", port=http_port, INSTANCE_ID=name, IRC_PORT=str(port),
                         IRC_HOST="127.0.0.1", SERVER_NAME="irc.test", MAX_CONNECTIONS_PER_IP="1000")
    return svc, port


@pytest.fixture(scope="module")
def both(redis_server: RedisServer) -> Iterator[list[tuple[ServiceProcess, int]]]:
    """Two replicas for the module's tests (each test empties Redis and closes its clients)."""
    launcher = ServiceLauncher(redis_server)
    try:
        yield [start_replica(launcher, "ircd-a"), start_replica(launcher, "ircd-b")]
    finally:
        launcher.stop_all()


@pytest.fixture
def replicas(both: list[tuple[ServiceProcess, int]], admin: redis.Redis) -> list[tuple[ServiceProcess, int]]:
    return both


@pytest.mark.cluster
def test_clients_on_two_replicas_talk_in_a_channel_and_privately(replicas, admin: redis.Redis):
    (_, port_a), (_, port_b) = replicas
    alice, bob = IrcClient(port_a), IrcClient(port_b)
    assert "001" in " ".join(alice.register("alice", "echo-message message-tags"))
    bob.register("bob")
    alice.send("JOIN #chat")
    alice.sync()
    bob.send("JOIN #chat")
    names = bob.sync()
    assert any("353" in line and "@alice bob" in line for line in names)
    alice.until(lambda line: line.endswith("JOIN #chat"))
    alice.send("PRIVMSG #chat :hello across")
    echo = alice.until(lambda line: "hello across" in line)[-1]
    got = bob.until(lambda line: "hello across" in line)
    assert got[-1] == ":alice!~alice@127.0.0.1 PRIVMSG #chat :hello across"
    msgid = echo.split("msgid=")[1].split(" ")[0].split(";")[0]
    # `admin` decodes replies, and a stream's entries all have fields.
    entries = cast(list[tuple[str, dict[str, str]]], admin.xrange("canaduck:chat:{#chat}:log"))
    said = [e for e in entries if e[1]["command"] == "PRIVMSG"]
    assert [e[0] for e in said] == [msgid] and said[0][1]["text"] == "hello across"
    assert [e[1]["command"] for e in entries] == ["JOIN", "JOIN", "PRIVMSG"]  # draft/event-playback
    bob.send("PRIVMSG alice :psst", "NICK robert")
    assert alice.until(lambda line: "psst" in line)[-1].endswith(":bob!~bob@127.0.0.1 PRIVMSG alice psst")
    assert alice.until(lambda line: " NICK " in line)[-1] == ":bob!~bob@127.0.0.1 NICK robert"
    alice.send("MODE #chat +v robert", "TOPIC #chat :shared topic")
    bob.until(lambda line: "TOPIC" in line)
    bob.send("TOPIC #chat", "WHOIS alice")
    got = bob.sync()
    assert any(" 332 robert #chat :shared topic" in line for line in got)
    assert any(" 319 robert alice :@#chat" in line or " 319 robert alice @#chat" in line for line in got)
    bob.send("QUIT :bye")
    alice.until(lambda line: " QUIT " in line)
    alice.close()
    bob.close()


def test_a_client_reconnecting_to_the_other_replica_finds_its_channel_and_history(replicas):
    (_, port_a), (_, port_b) = replicas
    alice = IrcClient(port_a)
    alice.register("alice")
    alice.send("JOIN #log", *[f"PRIVMSG #log :line {i}" for i in range(3)], "TOPIC #log :kept")
    alice.sync()
    keeper = IrcClient(port_a)
    keeper.register("keeper")
    keeper.send("JOIN #log")
    keeper.sync()
    alice.send("QUIT")
    with pytest.raises(EOFError):
        alice.sync()
    again = IrcClient(port_b)
    again.register("alice", "batch server-time message-tags draft/chathistory")
    again.send("JOIN #log")
    joined = again.sync()
    assert any(" 332 alice #log kept" in line for line in joined)
    again.send("CHATHISTORY LATEST #log * 10")
    history = [line for line in again.sync() if "PRIVMSG" in line]
    assert [line.rsplit(" ", 2)[-1] for line in history] == ["0", "1", "2"]
    again.close()
    keeper.close()


def test_a_replica_subscribes_only_to_channels_with_local_members(replicas, admin: redis.Redis):
    (svc_a, port_a), (_, port_b) = replicas
    alice = IrcClient(port_a)
    alice.register("alice")
    alice.send("JOIN #only-a")
    alice.sync()

    def subscribers() -> int:
        return dict(admin.pubsub_numsub("canaduck:irc:fan:{#only-a}"))["canaduck:irc:fan:{#only-a}"]

    wait_until(lambda: subscribers() == 1)
    bob = IrcClient(port_b)
    bob.register("bob")
    bob.send("JOIN #only-a")
    bob.sync()
    assert subscribers() == 2
    bob.send("PART #only-a")
    bob.sync()
    wait_until(lambda: subscribers() == 1)
    assert svc_a.get("/metrics").text.count("canaduck_irc_connections") >= 1
    alice.close()
    bob.close()


def test_a_burst_of_clients_all_register_and_join(replicas):
    """More clients at once than the replica has Redis connections: commands wait for one."""
    import asyncio

    (_, port_a), (_, port_b) = replicas

    async def one(i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_a if i % 2 else port_b)
        writer.write(f"NICK burst{i}\r\nUSER b 0 * :b\r\nJOIN #burst\r\nPING done\r\n".encode())
        seen = b""
        while b"PONG" not in seen:
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                break
            seen += line
        writer.close()
        return seen

    async def burst() -> list[bytes]:
        return await asyncio.gather(*(one(i) for i in range(150)))

    failed = [seen for seen in asyncio.run(burst()) if b" 366 " not in seen or b" 001 " not in seen]
    assert failed == []


@pytest.mark.cluster
def test_who_with_a_mask_and_list_read_the_whole_network_with_the_gateways_own_credentials(replicas):
    # The scans go through SSCAN, which the gateway's ACL user must be allowed (redis/users.acl).
    (_, port_a), (_, port_b) = replicas
    alice, bob = IrcClient(port_a), IrcClient(port_b)
    alice.register("alice")
    bob.register("bob")
    alice.send("JOIN #here")
    alice.sync()
    bob.send("JOIN #there")
    bob.sync()
    bob.send("WHO *", "LIST")
    replies = bob.sync()
    assert sorted(line.split()[7] for line in replies if " 352 " in line) == ["alice", "bob"]
    assert [line.split()[3] for line in replies if " 322 " in line] == ["#here", "#there"]
    assert " 400 " not in " ".join(replies)
    alice.close()
    bob.close()
