"""IRCv3 capabilities that cross replicas, on two real gateway processes sharing the real
server, with the users service for SASL: what a client of one replica does reaches the clients
of the other as the capability's specification says."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import httpx
import pytest

import redis
from scripts.devkit import RedisServer, ServiceLauncher, ServiceProcess, free_ports
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
        users = launcher.launch("apps.users", "users", env=FAST)
        ports = []
        for name in ("ircd-a", "ircd-b"):
            port, http_port = free_ports(2)
            launcher.start("apps.ircd", "ircd", port=http_port, INSTANCE_ID=name, IRC_PORT=str(port),
                           IRC_HOST="127.0.0.1", SERVER_NAME="irc.test", MAX_CONNECTIONS_PER_IP="1000",
                           USERS_URL=users.url,
                           IRC_OPERS="boss:oper-secret")
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
    alice.close()
    bob.close()


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
    alice.close()
    carol.close()
    dave.close()


def test_chghost_crosses_replicas_and_event_playback_replays_what_happened(stack: Stack):
    """An operator on one replica changes the host of a user on the other: both hear CHGHOST
    with the old prefix, the user speaks with the new one, and CHATHISTORY gives a client with
    draft/event-playback the channel's JOINs and TOPIC as they went out."""
    alice = in_channel(stack.ports[0], "alice", "#host", "chghost")
    bob = in_channel(stack.ports[1], "bob", "#host",
                     "chghost batch server-time message-tags draft/chathistory draft/event-playback")
    alice.until(lambda line: ":bob!" in line and line.endswith("JOIN #host"))
    bob.send("OPER boss oper-secret")
    bob.until(lambda line: " 381 " in line)
    bob.send("CHGHOST alice guest cloak.example")
    changed = ":alice!~alice@127.0.0.1 CHGHOST guest cloak.example"
    assert alice.until(lambda line: " CHGHOST " in line)[-1].endswith(changed)
    assert bob.until(lambda line: " CHGHOST " in line)[-1].endswith(changed)
    alice.send("TOPIC #host :after")
    topic = ":alice!guest@cloak.example TOPIC #host after"
    assert bob.until(lambda line: " TOPIC " in line)[-1].endswith(topic)
    bob.send("CHATHISTORY LATEST #host * 10")
    replayed = [line.split(" ", 1)[1] for line in bob.sync() if "batch=" in line and " BATCH " not in line]
    assert replayed == [":alice!~alice@127.0.0.1 JOIN #host", ":bob!~bob@127.0.0.1 JOIN #host",
                        topic]
    alice.close()
    bob.close()


def test_typing_reply_and_react_cross_replicas_and_only_the_reply_is_history(stack: Stack):
    alice = in_channel(stack.ports[0], "alice", "#tags", "message-tags echo-message")
    bob = in_channel(stack.ports[1], "bob", "#tags", "message-tags batch draft/chathistory")
    alice.until(lambda line: ":bob!" in line and line.endswith("JOIN #tags"))
    alice.send("PRIVMSG #tags :Hello!")
    parent = alice.until(lambda line: "Hello!" in line)[-1].split("msgid=")[1].split(";")[0].split(" ")[0]
    alice.send("@+typing=active TAGMSG #tags", f"@+draft/reply={parent};+draft/react=lol TAGMSG bob",
               f"@+draft/reply={parent} PRIVMSG #tags :Hello to you!")
    # One line on the channel's feeds, one on bob's replica's own channel: each in order, but
    # the two channels may interleave either way.
    got = bob.until(lambda line: "Hello to you!" in line)
    got += [] if any(" TAGMSG bob" in line for line in got) else bob.until(lambda line: " TAGMSG bob" in line)
    assert any(line.startswith("@+typing=active;") and line.endswith(" TAGMSG #tags") for line in got)
    react = {f"+draft/reply={parent}", "+draft/react=lol"}
    private = [set(line[1:].split(" ")[0].split(";")) for line in got if line.endswith(" TAGMSG bob")]
    assert len(private) == 1 and react <= private[0]
    assert any(line.startswith(f"@+draft/reply={parent};") and "Hello to you!" in line for line in got)
    bob.send("CHATHISTORY LATEST #tags * 10")
    history = [line for line in bob.sync() if "alice!" in line]
    said = ":alice!~alice@127.0.0.1 PRIVMSG #tags "
    assert [line.split(" ", 1)[1] for line in history] == [said + "Hello!", said + ":Hello to you!"]
    assert f"+draft/reply={parent}" in history[1]
    alice.close()
    bob.close()


def test_a_read_marker_reaches_the_accounts_connection_on_the_other_replica(stack: Stack, admin: redis.Redis):
    stack.account("Jilles")
    first, second = IrcClient(stack.ports[0]), IrcClient(stack.ports[1])
    first.register("jilles", "draft/read-marker", sasl=("Jilles", PASSWORD))
    second.register("jilles2", "draft/read-marker", sasl=("Jilles", PASSWORD))
    first.send("MARKREAD #rm timestamp=2026-01-04T14:33:26.123Z")
    assert first.sync() == [":irc.test MARKREAD #rm timestamp=2026-01-04T14:33:26.123Z"]
    assert second.until(lambda line: "MARKREAD" in line)[-1].endswith(
        ":irc.test MARKREAD #rm timestamp=2026-01-04T14:33:26.123Z")
    ms = int(datetime(2026, 1, 4, 14, 33, 26, 123000, tzinfo=UTC).timestamp() * 1000)
    assert admin.hgetall("canaduck:chat:{jilles}:read") == {"#rm": str(ms)}
    first.close()
    second.close()


def test_a_guests_read_markers_expire_under_the_gateways_acl_user(stack: Stack, admin: redis.Redis):
    guest = IrcClient(stack.ports[0])
    guest.register("guest", "draft/read-marker")
    guest.send("MARKREAD #rm timestamp=2026-01-04T14:33:26.123Z")
    assert guest.sync() == [":irc.test MARKREAD #rm timestamp=2026-01-04T14:33:26.123Z"]
    [key] = admin.keys("canaduck:chat:*:read")
    assert 0 < admin.pttl(key) <= 86_400_000
    guest.close()


def test_a_redaction_crosses_replicas_and_leaves_history_under_the_gateways_acl_user(stack: Stack,
                                                                                      admin: redis.Redis):
    caps = "message-tags echo-message draft/message-redaction"
    alice = in_channel(stack.ports[0], "alice", "#red", caps)
    bob = in_channel(stack.ports[1], "bob", "#red", caps)
    alice.until(lambda line: ":bob!" in line and line.endswith("JOIN #red"))
    alice.send("PRIVMSG #red :oops")
    msgid = alice.until(lambda line: "oops" in line)[-1].split("msgid=")[1].split(";")[0].split(" ")[0]
    assert [entry[0] for entry in said_in(admin, "#red")] == [msgid]
    alice.send(f"REDACT #red {msgid} :typo")
    redacted = f":alice!~alice@127.0.0.1 REDACT #red {msgid} typo"
    assert bob.until(lambda line: " REDACT " in line)[-1].endswith(redacted)
    assert alice.until(lambda line: " REDACT " in line)[-1].endswith(redacted)
    assert said_in(admin, "#red") == []
    alice.close()
    bob.close()


def said_in(admin: redis.Redis, channel: str) -> list[tuple[str, dict[str, str]]]:
    """The messages of a channel's stream, its events (JOIN...: draft/event-playback) left out."""
    # `admin` decodes replies, and a stream's entries all have fields.
    entries = cast(list[tuple[str, dict[str, str]]], admin.xrange(f"canaduck:chat:{{{channel}}}:log"))
    return [(entry_id, fields) for entry_id, fields in entries if fields["command"] in ("PRIVMSG", "NOTICE")]


def _tags(line: str) -> dict[str, str]:
    head = line[1:].split(" ", 1)[0] if line.startswith("@") else ""
    return {k: v for k, _, v in (item.partition("=") for item in head.split(";") if item)}


def _batch(lines: list[str]) -> list[str]:
    """The lines from a multiline batch's start to its end."""
    start = next(i for i, line in enumerate(lines) if " BATCH +" in line and "draft/multiline" in line)
    end = next(i for i, line in enumerate(lines) if i > start and " BATCH -" in line)
    return lines[start:end + 1]


def test_a_multiline_message_crosses_replicas_as_one_message_and_is_history_once(stack: Stack,
                                                                                 admin: redis.Redis):
    ml = "message-tags batch echo-message server-time draft/multiline draft/chathistory"
    alice = in_channel(stack.ports[0], "alice", "#ml", ml)
    bob = in_channel(stack.ports[1], "bob", "#ml", ml)
    carol = in_channel(stack.ports[1], "carol", "#ml", "message-tags server-time")
    alice.until(lambda line: ":carol!" in line and line.endswith("JOIN #ml"))
    alice.send("@+draft/reply=1-0 BATCH +b1 draft/multiline #ml", "@batch=b1 PRIVMSG #ml :first line",
               "@batch=b1 PRIVMSG #ml :", "@batch=b1 PRIVMSG #ml :split ",
               "@batch=b1;draft/multiline-concat PRIVMSG #ml :word", "BATCH -b1")
    echo = _batch(alice.until(lambda line: " BATCH -" in line))
    msgid = _tags(echo[0])["msgid"]
    relayed = _batch(bob.until(lambda line: " BATCH -" in line))
    assert [line.split(" ", 1)[1] for line in relayed] == [line.split(" ", 1)[1] for line in echo]
    assert _tags(relayed[0])["msgid"] == msgid and _tags(relayed[0])["+draft/reply"] == "1-0"
    assert _tags(relayed[4]).get("draft/multiline-concat") == ""
    said = ":alice!~alice@127.0.0.1 PRIVMSG #ml "
    fallback = [line for line in carol.until(lambda line: "word" in line) if "PRIVMSG" in line]
    assert [line.split(" ", 1)[1] for line in fallback] == [f"{said}:first line", f"{said}:split ",
                                                            f"{said}word"]
    assert [_tags(line).get("msgid") for line in fallback] == [msgid, None, None]
    [(entry_id, fields)] = said_in(admin, "#ml")
    assert entry_id == msgid and fields["text"] == "first line\n\nsplit word"
    assert fields["lines"] == ('[{"text":"first line"},{"text":""},{"text":"split "},'
                               '{"text":"word","concat":true}]')
    bob.send("CHATHISTORY LATEST #ml * 10")
    replayed = _batch(bob.sync())
    assert _tags(replayed[0])["msgid"] == msgid and len(replayed) == 6
    alice.send("BATCH +p draft/multiline carol", "@batch=p PRIVMSG carol :one",
               "@batch=p PRIVMSG carol :two", "BATCH -p")
    heard = carol.until(lambda line: line.endswith(" carol two"))
    private = [line for line in heard if " PRIVMSG carol " in line]
    assert [line.split(" carol ", 1)[1] for line in private] == ["one", "two"]
    alice.close()
    bob.close()
    carol.close()
