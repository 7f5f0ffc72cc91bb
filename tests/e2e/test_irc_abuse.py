"""One IRC client against everyone, on the local stack's two gateway replicas.

Two watchers, one on each replica, keep talking in a channel while an anonymous connection
floods one replica with keep-alives, and while a registered one floods the channel and then
resets its connection. The watchers' messages keep arriving within a fraction of a second
(a PONG flood held them up 1.4 to 10 s before every line counted against flood control and
each connection got one line per turn), and the flooder's QUIT goes out within a second of
its reset, its backlog dropped rather than relayed for minutes."""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import threading
import time

import pytest

from scripts.devkit.ircclient import IrcClient


def irc_ports(stack) -> list[int]:
    instances = stack.get("/directory/ircd").json()["instances"]
    return sorted(int(item["meta"]["ports"]["irc"]) for item in instances)


def talk(sender: IrcClient, receiver: IrcClient, channel: str, rounds: int) -> list[float]:
    """Seconds each of `rounds` messages took from `sender` to `receiver` (other replica)."""
    delays = []
    for i in range(rounds):
        text = f"tick {i} {secrets.token_hex(2)}"
        started = time.monotonic()
        sender.send(f"PRIVMSG {channel} :{text}")

        def arrived(line: str, text: str = text) -> bool:
            return line.endswith(text)

        receiver.until(arrived, timeout=15)
        delays.append(time.monotonic() - started)
    return delays


@contextlib.contextmanager
def pong_flood(port: int):
    """An unregistered connection writing keep-alives as fast as the replica takes them."""
    sock = socket.create_connection(("127.0.0.1", port))
    stop = threading.Event()
    chunk = b"PONG x\r\n" * 8192

    def flood() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                sock.sendall(chunk)

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        thread.join(5)


@pytest.fixture
def watchers(stack):
    ports = irc_ports(stack)
    assert len(ports) == 2, ports
    channel = f"#watch{secrets.token_hex(3)}"
    left, right = IrcClient(ports[0], timeout=20), IrcClient(ports[1], timeout=20)
    left.register(f"left{secrets.token_hex(2)}")
    right.register(f"right{secrets.token_hex(2)}")
    for client in (left, right):
        client.send(f"JOIN {channel}")
        client.sync()
    left.until(lambda line: " JOIN " in line and "right" in line, timeout=10)
    try:
        yield ports, channel, left, right
    finally:
        left.close(), right.close()


def test_a_keepalive_flood_from_an_anonymous_socket_does_not_hold_up_the_others(watchers):
    ports, channel, left, right = watchers
    quiet = talk(left, right, channel, 5) + talk(right, left, channel, 5)
    with pong_flood(ports[0]):
        time.sleep(1)  # the flood is under way
        flooded = talk(left, right, channel, 10) + talk(right, left, channel, 10)
    print(f"\nwatchers' delay: quiet max {max(quiet) * 1000:.1f} ms; "
          f"during the flood max {max(flooded) * 1000:.1f} ms, "
          f"median {sorted(flooded)[len(flooded) // 2] * 1000:.1f} ms")
    assert max(flooded) < 1.0, [round(d, 3) for d in flooded]


def test_a_flooder_that_resets_quits_at_once_and_its_backlog_is_not_relayed(watchers):
    ports, channel, _left, right = watchers
    flooder = IrcClient(ports[0], timeout=20)
    nick = f"flood{secrets.token_hex(2)}"
    flooder.register(nick)
    flooder.send(f"JOIN {channel}")
    flooder.sync()
    right.until(lambda line: " JOIN " in line and nick in line, timeout=10)
    flooder.sock.sendall(b"".join(b"PRIVMSG %s :flood %d\r\n" % (channel.encode(), i) for i in range(5000)))
    sent_at = time.monotonic()
    time.sleep(1)  # it is throttled by now: its burst went out, the rest waits
    flooder.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    flooder.sock.close()
    reset_at = time.monotonic()
    seen = right.until(lambda line: " QUIT " in line and nick in line, timeout=10)
    quit_after = time.monotonic() - reset_at
    relayed = [line for line in seen if "PRIVMSG" in line and ":flood " in line]
    print(f"\nQUIT {quit_after * 1000:.0f} ms after the reset; {len(relayed)} flood lines relayed to "
          "the other replica's watcher in all")
    assert quit_after < 2.0
    # Its burst and what the rate let through until the reset (the stack's FLOOD_LINES=50
    # per FLOOD_WINDOW=5 s: 50 at once, then 10 a second), not its thousands of lines.
    assert len(relayed) <= 50 + 10 * (reset_at - sent_at) + 10
    right.sync()
    late = [line for line in right.sync() if ":flood " in line]
    assert late == []
    again = IrcClient(ports[1])  # its nick is free on every replica
    try:
        assert any(" 001 " in line for line in again.register(nick))
    finally:
        again.close()
