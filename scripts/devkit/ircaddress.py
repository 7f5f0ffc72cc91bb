"""One IRC address for every gateway replica, checked from outside a stack in containers: the
compose smoke test and the Swarm tests run the same checks against their own balancer.

Clients connect only to the balancer's published ports (IRC, and IRC over TLS). Which replica
holds a client is read from each replica's `/stats` inside its container (bash's `/dev/tcp`, as
its health check does), so no replica port needs publishing, and a replica is killed with
`docker kill`, as a crash would end it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from apps.ircd import proxyproto
from scripts.devkit.ircclient import IrcClient
from scripts.devkit.routecheck import Check

#: GET /stats on the replica's own HTTP port, from inside its container.
_STATS = ("exec 3<>/dev/tcp/127.0.0.1/${PORT:-5000} && printf 'GET /stats HTTP/1.0\\r\\n\\r\\n' >&3 "
          "&& cat <&3")
#: An address no client here has: what a forged PROXY header claims to be.
SPOOFED = "192.0.2.66"


def docker(*args: str, timeout: float = 60) -> str:
    """The docker CLI's output ("" when it fails: a container gone in between)."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    return done.stdout if done.returncode == 0 else ""


@dataclass
class Containers:
    """How to find a stack's containers: the gateway replicas' and the balancer's ids."""

    gateways: Callable[[], list[str]]
    balancers: Callable[[], list[str]]


def stats(container: str) -> dict[str, object]:
    """A replica's `/stats` ({} if it does not answer)."""
    raw = docker("exec", container, "bash", "-c", _STATS, timeout=30)
    body = raw.replace("\r\n", "\n").partition("\n\n")[2]  # the CLI's text mode may have done it
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def connections(containers: Containers) -> dict[str, int]:
    """Registered clients per replica container."""
    counts = {}
    for container in containers.gateways():
        value = stats(container).get("connections")
        counts[container] = value if isinstance(value, int) else -1
    return counts


def addresses(container: str) -> set[str]:
    """The container's addresses on its networks."""
    out = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container)
    return set(out.split())


def host_of(client: IrcClient, nick: str) -> str:
    """The host WHOIS gives for `nick`: the address its replica believes it has."""
    client.send(f"WHOIS {nick}")
    for line in client.sync():
        words = line.split(" ")
        if len(words) > 5 and words[1] == "311":
            return words[5]
    return ""


def secure(client: IrcClient, nick: str) -> bool:
    """Whether WHOIS says `nick` is on a secure connection (671)."""
    client.send(f"WHOIS {nick}")
    return any(line.split(" ")[1:2] == ["671"] for line in client.sync())


def _numeric(lines: list[str], numeric: str) -> bool:
    return any(line.split(" ")[1:2] == [numeric] for line in lines)


def connect(port: int, nick: str, *, tls: bool = False, timeout: float = 10,
            alternate: str = "") -> IrcClient:
    """A registered client through the balancer's `port` (TLS accepting its certificate).
    A nick in use (433) is answered with `alternate`, when given, as irssi and weechat do."""
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a self-signed certificate, made at start
    client = IrcClient(port, timeout=timeout, tls=context, server_name="irc.canaduck.local" if tls else None)
    lines = client.register(nick)
    if alternate and _numeric(lines, "433") and not _numeric(lines, "001"):
        client.send(f"NICK {alternate}")
        lines += client.sync()
    if not _numeric(lines, "001"):
        client.close()
        raise EOFError(f"{nick} not registered: {lines[-3:]}")
    return client


def reconnect(port: int, nick: str, within: float) -> IrcClient:
    """Connect and register as a real client does after losing its server: retrying with a
    pause growing from 0.1 s to 1 s until a replica takes it. Its nick is still held by its
    ghost on the dead replica until a survivor sweeps that replica's users (the directory's
    TTL, then two sweeps): meanwhile it takes an alternate nick, as real clients do."""
    deadline, pause = time.monotonic() + within, 0.1
    while True:
        with contextlib.suppress(OSError, EOFError):
            return connect(port, nick, alternate=f"{nick}_")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no replica took {nick} back within {within} s")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


@contextlib.contextmanager
def closing(clients: list[IrcClient]) -> Iterator[list[IrcClient]]:
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def spread_checks(containers: Containers, port: int) -> list[Check]:
    """As many clients as replicas, through the one address: one on each (leastconn)."""
    before = connections(containers)
    nicks = [f"spread{i}{secrets.token_hex(2)}" for i in range(len(before))]
    with closing([connect(port, nick) for nick in nicks]):
        after = connections(containers)
    gained = sorted(after.get(c, 0) - before.get(c, 0) for c in before)
    return [Check(f"{len(before)} clients through one address -> one on each of {len(before)} replicas",
                  len(before) >= 2 and gained == [1] * len(before), f"gained {gained}")]


def address_checks(containers: Containers, port: int, tls_port: int) -> list[Check]:
    """TLS through the same balancer, and who the replicas believe their clients are."""
    checks = []
    balancer = set().union(*(addresses(c) for c in containers.balancers()))
    nick = f"plain{secrets.token_hex(2)}"
    with closing([connect(port, nick)]) as (plain,):
        host = host_of(plain, nick)
    checks.append(Check("IRC through the balancer: the replica sees the client, not the balancer",
                        bool(host) and host not in balancer,
                        f"{host} (balancer {', '.join(sorted(balancer))})"))
    nick = f"tls{secrets.token_hex(2)}"
    with closing([connect(tls_port, nick, tls=True)]) as (over_tls,):
        ok = secure(over_tls, nick)
    checks.append(Check("IRC over TLS through the same balancer: a secure connection (671)", ok, ""))
    # The attack: a client writes a PROXY header of its own to the public port. The balancer
    # sends its own header first; the replica reads the client's as IRC (its signature holds a
    # QUIT line), so the connection ends and nobody ever has the claimed address.
    forger = IrcClient(port, timeout=10)
    forger.send(proxyproto.encode((SPOOFED, 6666)), "NICK forger", "USER f 0 * :F")
    seen = []
    with contextlib.suppress(OSError, EOFError):
        while True:
            seen.append(forger.line())
    forger.close()
    checks.append(Check("a PROXY header sent by a client names nobody",
                        not any(SPOOFED in line or " 001 " in line for line in seen), f"{len(seen)} lines"))
    return checks


def kill_checks(containers: Containers, port: int, *, within: float = 30) -> tuple[list[Check], float]:
    """A client's replica killed: the client reconnects through the same address and is heard
    by a client of another replica. Returns the checks and the seconds from kill to heard."""
    channel, nick = f"#one{secrets.token_hex(3)}", f"roam{secrets.token_hex(2)}"
    before = connections(containers)
    roamer = connect(port, nick)
    roamer.send(f"JOIN {channel}")
    roamer.sync()
    after = connections(containers)
    holder = next((c for c in after if after[c] > before.get(c, 0)), "")
    witness = None
    for attempt in range(6):  # leastconn sends the next client elsewhere; a few tries at most
        candidate = connect(port, f"see{attempt}{secrets.token_hex(2)}")
        now = connections(containers)
        if holder and now.get(holder, 0) == after.get(holder, 0):
            witness = candidate
            break
        after = now
        candidate.close()
    if not holder or witness is None:
        roamer.close()
        return [Check("a client's replica killed -> back through the same address", False,
                      f"could not place two clients on two replicas: {after}")], 0.0
    witness.send(f"JOIN {channel}")
    witness.sync()
    killed = time.monotonic()
    docker("kill", holder)
    closed_after = -1.0
    roamer.sock.settimeout(within)
    try:
        while True:  # until the balancer closes the dead replica's connection
            roamer.line()
    except TimeoutError:
        pass  # still open: the check below fails
    except (OSError, EOFError):
        closed_after = time.monotonic() - killed
    roamer.close()
    checks = [Check("replica killed -> its client's connection closed", closed_after >= 0,
                    f"{closed_after:.1f} s")]
    try:
        back = reconnect(port, nick, within)
        with closing([back, witness]):
            back.send(f"JOIN {channel}", f"PRIVMSG {channel} :back through the same address")
            back.sync()
            witness.until(lambda line: line.endswith("back through the same address"), timeout=15)
            heard = time.monotonic() - killed
    except (OSError, EOFError, TimeoutError, AssertionError) as exc:
        witness.close()
        checks.append(Check("client back through the same address, heard on another replica", False,
                            str(exc)[:80]))
        return checks, 0.0
    checks.append(Check("client back through the same address, heard on another replica", True,
                        f"kill to heard {heard:.1f} s"))
    return checks, heard
