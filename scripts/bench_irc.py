"""Behind scripts/bench-irc: IRC delivery latency across gateway replicas, beside ngIRCd.

Every client is a raw asyncio socket (lines parsed with irctokens), all in this one process,
so the load generator costs little next to the servers. Two scenarios, each run against our
gateways (clients spread round-robin over two replicas sharing one Redis) and, in the same
run, against Debian's ngIRCd (one process, the peer's row) when it is installed:

- "rooms": CLIENTS clients in channels of ROOM members, RATE messages/s in all, each from a
  random member to its channel;
- "hall": one channel of HALL members, HALL_RATE messages/s.

A message carries its send time (perf_counter_ns, the same clock as the receivers'); the
latency of a delivery is its arrival at a member minus that. Lost = expected deliveries (every
member but the sender) not received within DRAIN seconds after the last send. Memory per
connection = the servers' RSS growth while the clients connected and joined, divided by the
number of clients (both replicas counted for ours; Redis apart).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import irctokens

from scripts.devkit.ircstack import (
    ChatBacking,
    Gateway,
    GatewaySpec,
    has_ircd,
    ngircd_binary,
    scratch_dir,
    start_ngircd,
    stop_gateways,
)
from scripts.devkit.processes import free_port
from scripts.devkit.stats import percentile_or

#: Seconds a client may take to register or to join (the servers may be slow under load).
SETUP_TIMEOUT = 120.0


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children, in KiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Client:
    nick: str
    port: int
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    joined: set[str] = field(default_factory=set)
    registered: asyncio.Event = field(default_factory=asyncio.Event)
    join_waiters: dict[str, asyncio.Event] = field(default_factory=dict)


@dataclass
class Tally:
    """What the receivers saw."""

    latencies_ms: list[float] = field(default_factory=list)
    received: dict[int, int] = field(default_factory=dict)
    last_arrival: float = 0.0
    errors: list[str] = field(default_factory=list)


class Load:
    def __init__(self, ports: list[int], tally: Tally) -> None:
        self.ports = ports
        self.tally = tally
        self.clients: list[Client] = []
        self.tasks: list[asyncio.Task[None]] = []
        #: Registrations and joins in flight at once (a thousand clients arrive in waves of 50).
        self.gate = asyncio.Semaphore(50)

    async def _answered(self, event: asyncio.Event, what: str) -> None:
        try:
            await asyncio.wait_for(event.wait(), SETUP_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"{what}: no answer in {SETUP_TIMEOUT:.0f} s; the servers said: "
                               f"{self.tally.errors[:3]}") from None

    async def connect(self, count: int, prefix: str) -> list[Client]:
        new = [Client(f"{prefix}{i}", self.ports[i % len(self.ports)]) for i in range(count)]

        async def one(client: Client) -> None:
            async with self.gate:
                client.reader, client.writer = await asyncio.open_connection("127.0.0.1", client.port)
                client.writer.write(f"NICK {client.nick}\r\nUSER {client.nick} 0 * :bench\r\n".encode())
                self.tasks.append(asyncio.create_task(self.read(client)))
                await self._answered(client.registered, f"{client.nick} registering")

        await asyncio.gather(*(one(c) for c in new))
        self.clients += new
        return new

    async def join(self, members: list[Client], channel: str) -> None:
        async def one(client: Client) -> None:
            async with self.gate:
                done = client.join_waiters.setdefault(channel.lower(), asyncio.Event())
                assert client.writer is not None
                client.writer.write(f"JOIN {channel}\r\n".encode())
                await self._answered(done, f"{client.nick} joining {channel}")

        await asyncio.gather(*(one(c) for c in members))

    async def read(self, client: Client) -> None:
        assert client.reader is not None and client.writer is not None
        tally = self.tally
        while True:
            try:
                raw = await client.reader.readline()
            except (ConnectionError, OSError):
                raw = b""
            if not raw:
                if client.registered.is_set():
                    tally.errors.append(f"{client.nick}: connection closed")
                return
            now = time.perf_counter_ns()
            if b" PRIVMSG " in raw:
                text = raw.rsplit(b" :", 1)[-1].split()
                if len(text) == 3 and text[0] == b"bench":
                    msg_id, sent = int(text[1]), int(text[2])
                    tally.latencies_ms.append((now - sent) / 1e6)
                    tally.received[msg_id] = tally.received.get(msg_id, 0) + 1
                    tally.last_arrival = now
                continue
            line = irctokens.tokenise(raw.decode("utf-8", "replace").rstrip("\r\n"))
            if line.command == "PING":
                client.writer.write(f"PONG :{line.params[-1] if line.params else ''}\r\n".encode())
            elif line.command == "001":
                client.registered.set()
            elif line.command == "366" and len(line.params) > 1:
                client.join_waiters.setdefault(line.params[1].lower(), asyncio.Event()).set()
            elif line.command in ("433", "432", "465", "ERROR") or (
                    line.command.isdigit() and line.command.startswith(("4", "5"))):
                tally.errors.append(f"{client.nick}: {line.format()[:120]}")

    async def close(self) -> None:
        for client in self.clients:
            if client.writer is not None:
                client.writer.write(b"QUIT :bench done\r\n")
        await asyncio.sleep(0.2)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            if client.writer is not None:
                client.writer.close()


@dataclass
class Row:
    scenario: str
    server: str
    clients: int
    sent: int = 0
    expected: int = 0
    received: int = 0
    p50: float = float("nan")
    p99: float = float("nan")
    max: float = float("nan")
    deliveries_per_s: float = 0.0
    kib_per_conn: float = 0.0
    cpu_pct: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.received


async def scenario(name: str, server: str, ports: list[int], pids: list[int], rooms: int, room_size: int,
                   rate: float, seconds: float, drain: float) -> Row:
    tally = Tally()
    load = Load(ports, tally)
    rss_before = sum(rss_kib(p) for p in pids)
    count = rooms * room_size
    phase = time.perf_counter()
    clients = await load.connect(count, prefix=f"b{name[:1]}")
    print(f"  {server}: {count} clients registered in {time.perf_counter() - phase:.1f} s", file=sys.stderr)
    channels: dict[str, list[Client]] = {}
    for r in range(rooms):
        channels[f"#bench{r}"] = clients[r * room_size:(r + 1) * room_size]
    phase = time.perf_counter()
    await asyncio.gather(*(load.join(members, ch) for ch, members in channels.items()))
    print(f"  {server}: joined {rooms} channel(s) in {time.perf_counter() - phase:.1f} s", file=sys.stderr)
    await asyncio.sleep(1.0)  # joins settle on every replica before the clock starts
    rss_after = sum(rss_kib(p) for p in pids)
    row = Row(name, server, count, kib_per_conn=(rss_after - rss_before) / count)
    cpu_before = sum(cpu_seconds(p) for p in pids)

    rng = random.Random(42)
    names = list(channels)
    total = int(rate * seconds)
    started = time.perf_counter()
    first_ns = time.perf_counter_ns()
    for msg_id in range(total):
        due = started + msg_id / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        channel = names[msg_id % len(names)] if rooms > 1 else names[0]
        sender = rng.choice(channels[channel])
        assert sender.writer is not None
        sender.writer.write(f"PRIVMSG {channel} :bench {msg_id} {time.perf_counter_ns()}\r\n".encode())
        row.expected += len(channels[channel]) - 1
    row.sent = total
    deadline = time.perf_counter() + drain
    while time.perf_counter() < deadline and sum(tally.received.values()) < row.expected:
        await asyncio.sleep(0.05)
    wall = time.perf_counter() - started
    row.cpu_pct = 100 * (sum(cpu_seconds(p) for p in pids) - cpu_before) / wall
    row.received = sum(tally.received.values())
    if tally.latencies_ms:
        row.p50 = percentile_or(tally.latencies_ms, 50, float("nan"))
        row.p99 = percentile_or(tally.latencies_ms, 99, float("nan"))
        row.max = max(tally.latencies_ms)
        span = (tally.last_arrival - first_ns) / 1e9
        row.deliveries_per_s = row.received / span if span > 0 else 0.0
    row.errors = tally.errors[:5]
    await load.close()
    return row


def table(rows: list[Row]) -> str:
    head = (f"{'scenario':<28} {'server':<22} {'clients':>7} {'sent':>6} {'deliveries':>10} {'lost':>6} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'deliv/s':>8} {'KiB/conn':>8} {'cpu %':>6}")
    lines = [head]
    for r in rows:
        lines.append(f"{r.scenario:<28} {r.server:<22} {r.clients:>7} {r.sent:>6} {r.received:>10} "
                     f"{r.lost:>6} {r.p50:>7.2f} {r.p99:>7.2f} {r.max:>7.1f} {r.deliveries_per_s:>8.0f} "
                     f"{r.kib_per_conn:>8.1f} {r.cpu_pct:>6.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="rooms scenario: clients (default 1000)")
    parser.add_argument("--room", type=int, default=20,
                        help="rooms scenario: members per channel (default 20)")
    parser.add_argument("--rate", type=float, default=200, help="rooms scenario: messages/s (default 200)")
    parser.add_argument("--hall", type=int, default=500, help="hall scenario: members (default 500)")
    parser.add_argument("--hall-rate", type=float, default=10, help="hall scenario: messages/s (default 10)")
    parser.add_argument("--seconds", type=float, default=10, help="sending time per scenario (default 10)")
    parser.add_argument("--drain", type=float, default=5, help="seconds to wait for late deliveries")
    parser.add_argument("--replicas", type=int, default=2, help="our gateway replicas (default 2)")
    parser.add_argument("--servers", default="canaduck,ngircd", help="which servers (default both)")
    args = parser.parse_args(argv)
    # A thousand sockets here, as many in each server (they inherit the limit): raise it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    servers = args.servers.split(",")
    if "canaduck" in servers and not has_ircd():
        print("bench-irc: this checkout has no IRC gateway (apps.ircd): ours is left out", file=sys.stderr)
        servers.remove("canaduck")
    if "ngircd" in servers and ngircd_binary() is None:
        print("bench-irc: ngircd is not installed (apt-get install ngircd): no peer row", file=sys.stderr)
        servers.remove("ngircd")
    if not servers:
        print("bench-irc: nothing to measure", file=sys.stderr)
        return 2

    rooms = args.clients // args.room
    scenarios = [
        (f"rooms {rooms}x{args.room} @{args.rate:g}/s", rooms, args.room, args.rate),
        (f"hall 1x{args.hall} @{args.hall_rate:g}/s", 1, args.hall, args.hall_rate),
    ]
    rows: list[Row] = []
    failures: list[str] = []
    for server in servers:
        for name, rooms, size, rate in scenarios:
            try:
                rows.append(run_one(server, name, rooms, size, rate, args))
            except RuntimeError as exc:
                failures.append(f"{server} {name}: FAILED: {exc}")
                print(failures[-1], file=sys.stderr, flush=True)
                continue
            print(table(rows[-1:]).splitlines()[1], file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(table(rows))
    for r in rows:
        for error in r.errors:
            print(f"  {r.server} {r.scenario}: {error}")
    for failure in failures:
        print(failure)
    print(f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    ours = [r for r in rows if r.server.startswith("canaduck")]
    peer = [r for r in rows if r.server.startswith("ngIRCd")]
    fields = []
    if ours:
        fields += [f"irc_p50_ms={max(r.p50 for r in ours):.2f}", f"irc_p99_ms={max(r.p99 for r in ours):.2f}",
                   f"deliveries_per_s={ours[0].deliveries_per_s:.0f}", f"lost={sum(r.lost for r in ours)}"]
    if peer:
        fields += [f"ngircd_p99_ms={max(r.p99 for r in peer):.2f}",
                   f"ngircd_lost={sum(r.lost for r in peer)}"]
    if ours and peer:
        fields.append(f"p99_ratio_to_ngircd={max(r.p99 for r in ours) / max(r.p99 for r in peer):.2f}")
    if failures:
        fields.append(f"failed_scenarios={len(failures)}")
    print("RESULT " + " ".join(fields))
    return 1 if failures else 0


def run_one(server: str, name: str, rooms: int, size: int, rate: float, args: argparse.Namespace) -> Row:
    """Fresh servers for each scenario, stopped after it."""
    workdir = scratch_dir("bench-irc")
    backing: ChatBacking | None = None
    gateways: list[Gateway] = []
    try:
        if server == "ngircd":
            gateways.append(start_ngircd(GatewaySpec(port=free_port()), workdir).wait())
            label = "ngIRCd (1 process)"
        else:
            backing = ChatBacking().start()
            for index in range(args.replicas):
                spec = GatewaySpec(port=free_port(), http_port=free_port())
                gateways.append(backing.start_ircd(spec, f"ircd-{index + 1}"))
            for gateway in gateways:
                gateway.wait(30)
            label = f"canaduck ({args.replicas} replicas)"
        ports = [g.listen_port for g in gateways]
        pids = [g.proc.pid for g in gateways]
        row = asyncio.run(scenario(name, label, ports, pids, rooms, size, rate, args.seconds, args.drain))
        return row
    finally:
        stop_gateways(gateways)
        if backing is not None:
            backing.stop()


if __name__ == "__main__":
    sys.exit(main())
