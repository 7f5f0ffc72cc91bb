"""Behind scripts/bench-irc: IRC delivery latency across gateway replicas, beside ngIRCd and
InspIRCd.

Two scenarios, each run against our gateways (clients spread round-robin over two replicas
sharing one Redis) and, in the same run, against Debian's ngIRCd (one process, the peer's row)
and Debian's InspIRCd (two servers linked by its spanning tree, the clients spread round-robin
over them: the scale-out peer's row; scripts/devkit/inspircd.py) when they are installed:

- "rooms": CLIENTS clients in channels of ROOM members, RATE messages/s in all, each from a
  random member to its channel;
- "hall": one channel of HALL members, HALL_RATE messages/s.

The load generator must not be what is slow: its clients live in WORKERS separate processes
(not the one that starts and watches the servers), each an asyncio Protocol per socket that
splits its lines by hand (no task, no stream reader, no tokenizer on the delivery path). Each
worker sends the messages of the clients it holds, on one schedule shared by all of them; its
own CPU time is reported (`gen cpu %`, of one core) so that a saturated generator shows.

A message carries its send time (perf_counter_ns: CLOCK_MONOTONIC, one clock for every process
of the machine); the latency of a delivery is its arrival at a member's socket minus that. Lost =
expected deliveries (every member but the sender) not received within DRAIN seconds after the
last send. `x-p99` is the p99 of the deliveries that crossed from one server (replica) to
another: the sender's and the receiver's ports differ. Memory per connection = the servers'
RSS growth while the clients connected and joined, divided by the number of clients (both
replicas counted for ours, both servers for InspIRCd; Redis apart).

A second table gives each server process's share of the sending phase: its CPU, its RSS, and
for ours the event loop's lag p99 (how late a timer ran: the wait every client of that replica
shared), read from each replica's /metrics before and after (a histogram: the bound of the
bucket that holds the 99th percentile).

`--no-implicit-names`: the clients ask for that IRCv3 capability, so no NAMES reply follows
their JOINs (a join is done when the client's own JOIN comes back); the rows say `no-names`.
Without it the clients and their lines are those of every earlier run.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from scripts.devkit.inspircd import inspircd_binary, start_network
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
from scripts.devkit.stats import histogram_buckets, histogram_quantile, percentile_or

#: Seconds a client may take to register or to join (the servers may be slow under load).
SETUP_TIMEOUT = 120.0
#: Registrations or joins in flight at once, per worker (a thousand clients arrive in waves).
WAVE = 50


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


# -- the load generator (one per worker process) ------------------------------------------------

@dataclass
class Plan:
    """What one worker does: its clients (global indexes), their ports and channels, and the
    messages it sends (msg_id, due offset in seconds, sender index, channel)."""

    nicks: dict[int, str]
    ports: dict[int, int]
    channels: dict[int, str]
    sends: list[tuple[int, float, int, str]]
    expected: dict[int, int]  # msg_id -> deliveries expected at this worker's clients
    #: The clients ask for no-implicit-names (no NAMES reply after JOIN): a join is done when
    #: its own JOIN comes back, not at its 366.
    no_implicit_names: bool = False
    #: msg_id -> the port its sender is connected to: a delivery to a client of another port
    #: crossed from one server (or replica) to another.
    origin: dict[int, int] = field(default_factory=dict)


class Tally:
    """What one worker's clients saw."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.cross_ms: list[float] = []  # the deliveries that crossed servers
        self.received: dict[int, int] = {}
        self.last_arrival = 0
        self.errors: list[str] = []


class BenchClient(asyncio.Protocol):
    """One IRC connection of the load generator: lines split by hand, bench messages timed."""

    def __init__(self, nick: str, tally: Tally, *, port: int = 0, origin: dict[int, int] | None = None,
                 no_implicit_names: bool = False) -> None:
        self.nick = nick
        self.tally = tally
        self.port = port
        self.origin = origin or {}
        self.no_implicit_names = no_implicit_names
        self._source = f":{nick}!".encode()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.registered = asyncio.get_running_loop().create_future()
        self.joined: dict[bytes, asyncio.Future[None]] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.registered.done():
            self.tally.errors.append(f"{self.nick}: connection closed")

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        tally = self.tally
        for line in lines:
            # The hot path: ":src PRIVMSG #chan :bench <id> <sent ns>" (tags or not).
            cut = line.find(b" :bench ")
            if cut > 0 and b" PRIVMSG " in line:
                parts = line[cut + 8:].split()
                if len(parts) == 2:
                    msg_id = int(parts[0])
                    latency = (now - int(parts[1])) / 1e6
                    tally.latencies_ms.append(latency)
                    if self.origin.get(msg_id, self.port) != self.port:
                        tally.cross_ms.append(latency)
                    tally.received[msg_id] = tally.received.get(msg_id, 0) + 1
                    tally.last_arrival = now
                    continue
            self._control(line.rstrip(b"\r"))

    def _control(self, line: bytes) -> None:
        words = line.split(b" ", 4)
        if words and words[0].startswith(b"@"):
            words = line.split(b" ", 5)[1:]
        source = b""
        if words and words[0].startswith(b":"):
            source, words = words[0], words[1:]
        if not words:
            return
        command = words[0]
        if command == b"PING":
            token = line.split(b" ", 1)[1] if b" " in line else b""
            self.write(b"PONG " + token + b"\r\n")
        elif command == b"001":
            if not self.registered.done():
                self.registered.set_result(None)
        elif command == b"366" and len(words) > 2 and not self.no_implicit_names:
            self._joined(words[2])
        elif command == b"JOIN" and len(words) > 1 and self.no_implicit_names and \
                source.startswith(self._source):
            self._joined(words[1].lstrip(b":"))
        elif command in (b"ERROR", b"433", b"432", b"465") or (command[:1] in b"45" and command.isdigit()):
            self.tally.errors.append(f"{self.nick}: {line[:120].decode('utf-8', 'replace')}")

    def _joined(self, channel: bytes) -> None:
        done = self.joined.get(channel.lower())
        if done is not None and not done.done():
            done.set_result(None)

    async def wait(self, future: asyncio.Future[None], what: str) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(future), SETUP_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"{self.nick} {what}: no answer in {SETUP_TIMEOUT:.0f} s; the servers "
                               f"said: {self.tally.errors[:3]}") from None


def worker_main(plan: Plan, pipe: Connection) -> None:
    """A worker process: run the plan, answering the conductor step by step."""
    try:
        asyncio.run(_work(plan, pipe))
    except Exception as exc:  # reported, not raised: the conductor is waiting on the pipe
        pipe.send(("failed", str(exc)))
    finally:
        pipe.close()


async def _work(plan: Plan, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally()
    clients: dict[int, BenchClient] = {}
    gate = asyncio.Semaphore(WAVE)
    cpu_start = time.process_time()

    async def register(index: int) -> None:
        async with gate:
            nick, port = plan.nicks[index], plan.ports[index]
            _, client = await loop.create_connection(
                lambda: BenchClient(nick, tally, port=port, origin=plan.origin,
                                    no_implicit_names=plan.no_implicit_names), "127.0.0.1", port)
            clients[index] = client
            hello = f"NICK {nick}\r\nUSER {nick} 0 * :bench\r\n"
            if plan.no_implicit_names:
                hello = f"CAP REQ :no-implicit-names\r\n{hello}CAP END\r\n"
            client.write(hello.encode())
            await client.wait(client.registered, "registering")

    async def join(index: int) -> None:
        async with gate:
            client, channel = clients[index], plan.channels[index]
            done = client.joined[channel.lower().encode()] = loop.create_future()
            client.write(f"JOIN {channel}\r\n".encode())
            await client.wait(done, f"joining {channel}")

    async def step(name: str) -> Any:
        message = await loop.run_in_executor(None, pipe.recv)
        if message[0] != name:
            raise RuntimeError(f"expected {name}, got {message[0]}")
        return message[1] if len(message) > 1 else None

    await step("register")
    await asyncio.gather(*(register(i) for i in plan.nicks))
    pipe.send(("registered",))
    await step("join")
    await asyncio.gather(*(join(i) for i in plan.nicks))
    pipe.send(("joined",))
    start_at, drain = await step("go")
    # Everything is in place: only the messages (sent and received) cost CPU from here on.
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for msg_id, offset, sender, channel in plan.sends:
        delay = start_at + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        clients[sender].write(f"PRIVMSG {channel} :bench {msg_id} {time.perf_counter_ns()}\r\n".encode())
    expected = sum(plan.expected.values())
    end = max(time.perf_counter(), start_at + (plan.sends[-1][1] if plan.sends else 0)) + drain
    while time.perf_counter() < end and sum(tally.received.values()) < expected:
        await asyncio.sleep(0.05)
    wall = max(time.perf_counter() - max(start_at, wall_start), 1e-6)
    cpu = time.process_time() - cpu_start
    got = sum(min(count, plan.expected.get(msg_id, 0)) for msg_id, count in tally.received.items())
    pipe.send(("done", {"latencies": tally.latencies_ms, "cross": tally.cross_ms, "received": got,
                        "expected": expected,
                        "last_arrival": tally.last_arrival, "errors": tally.errors[:5],
                        "cpu_pct": 100 * cpu / wall}))
    await step("quit")
    for client in clients.values():
        if not client.closed:
            client.write(b"QUIT :bench done\r\n")
    await asyncio.sleep(0.2)
    for client in clients.values():
        if client.transport is not None:
            client.transport.close()


# -- the conductor -------------------------------------------------------------------------------

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
    cross_p99: float = float("nan")  # the deliveries that crossed servers (replicas) only
    max: float = float("nan")
    deliveries_per_s: float = 0.0
    kib_per_conn: float = 0.0
    cpu_pct: float = 0.0
    gen_cpu_pct: float = 0.0
    errors: list[str] = field(default_factory=list)
    replicas: list[ReplicaRow] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.received


def plans(count: int, room_size: int, ports: list[int], rate: float, seconds: float, workers: int,
          prefix: str, *, no_implicit_names: bool = False) -> tuple[list[Plan], int]:
    """Split the clients over the workers (client i goes to worker i % workers, and to port
    i % len(ports)), channels of `room_size` consecutive clients, the send schedule; and the
    number of messages."""
    rooms = max(1, count // room_size)
    channel_of = {i: f"#bench{i // room_size}" for i in range(rooms * room_size)}
    members: dict[str, list[int]] = {}
    for index, channel in channel_of.items():
        members.setdefault(channel, []).append(index)
    names = sorted(members, key=lambda c: int(c[6:]))
    out = [Plan({}, {}, {}, [], {}, no_implicit_names) for _ in range(workers)]
    for index, channel in channel_of.items():
        plan = out[index % workers]
        plan.nicks[index] = f"{prefix}{index}"
        plan.ports[index] = ports[index % len(ports)]
        plan.channels[index] = channel
    rng = random.Random(42)
    total = int(rate * seconds)
    for msg_id in range(total):
        channel = names[msg_id % len(names)]
        sender = rng.choice(members[channel])
        out[sender % workers].sends.append((msg_id, msg_id / rate, sender, channel))
        for plan in out:
            plan.origin[msg_id] = ports[sender % len(ports)]
        for member in members[channel]:
            if member != sender:
                expected = out[member % workers].expected
                expected[msg_id] = expected.get(msg_id, 0) + 1
    return out, total


class Workers:
    """The load generator's processes and their pipes."""

    def __init__(self, plans_: list[Plan]) -> None:
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for plan in plans_:
            ours, theirs = context.Pipe()
            proc = context.Process(target=worker_main, args=(plan, theirs), daemon=True)
            proc.start()
            theirs.close()
            self.pipes.append(ours)
            self.procs.append(proc)

    def step(self, name: str, *payload: Any, expect: str | None = None, timeout: float = 600) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((name, *payload))
        if expect is None:
            return []
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError(f"a load generator did not answer {name} in {timeout:.0f} s")
            answer = pipe.recv()
            if answer[0] == "failed":
                raise RuntimeError(answer[1])
            answers.append(answer[1] if len(answer) > 1 else None)
        return answers

    def stop(self) -> None:
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()


@dataclass
class Replica:
    """One server process measured: its CPU and RSS from /proc, its event loop's lag from its
    /metrics (`canaduck_event_loop_lag_seconds`) where it has one."""

    name: str
    pid: int
    metrics_url: str | None = None

    def lag_buckets(self) -> dict[float, float]:
        if self.metrics_url is None:
            return {}
        try:
            text = httpx.get(self.metrics_url, timeout=5).text
        except httpx.HTTPError:
            return {}
        return histogram_buckets(text, "canaduck_event_loop_lag_seconds")


@dataclass
class ReplicaRow:
    """A replica's share of a scenario's sending phase."""

    name: str
    cpu_pct: float
    rss_mib: float
    lag_p99_ms: float  # the upper bound of the histogram bucket holding the 99th percentile


def scenario(name: str, server: str, ports: list[int], replicas: list[Replica], rooms: int, room_size: int,
             rate: float, args: argparse.Namespace) -> Row:
    pids = [r.pid for r in replicas]
    count = rooms * room_size
    worker_plans, total = plans(count, room_size, ports, rate, args.seconds, args.workers, f"b{name[:1]}",
                                no_implicit_names=args.no_implicit_names)
    rss_before = sum(rss_kib(p) for p in pids)
    workers = Workers(worker_plans)
    try:
        phase = time.perf_counter()
        workers.step("register", expect="registered")
        print(f"  {server}: {count} clients registered in {time.perf_counter() - phase:.1f} s",
              file=sys.stderr)
        phase = time.perf_counter()
        workers.step("join", expect="joined")
        print(f"  {server}: joined {rooms} channel(s) in {time.perf_counter() - phase:.1f} s",
              file=sys.stderr)
        time.sleep(1.0)  # joins settle on every replica before the clock starts
        rss_after = sum(rss_kib(p) for p in pids)
        row = Row(name, server, count, sent=total, kib_per_conn=(rss_after - rss_before) / count)
        cpu_before = {p: cpu_seconds(p) for p in pids}
        lag_before = [r.lag_buckets() for r in replicas]
        start_at = time.perf_counter() + 0.5
        first_ns = int(start_at * 1e9)
        reports = workers.step("go", (start_at, args.drain), expect="done")
        wall = time.perf_counter() - start_at
        cpu_used = {p: cpu_seconds(p) - cpu_before[p] for p in pids}
        row.cpu_pct = 100 * sum(cpu_used.values()) / wall
        row.replicas = [ReplicaRow(r.name, 100 * cpu_used[r.pid] / wall, rss_kib(r.pid) / 1024,
                                   1000 * histogram_quantile(before, r.lag_buckets(), 0.99))
                        for r, before in zip(replicas, lag_before, strict=True)]
        workers.step("quit")
    finally:
        workers.stop()
    latencies = [x for report in reports for x in report["latencies"]]
    row.expected = sum(r["expected"] for r in reports)
    row.received = sum(r["received"] for r in reports)
    row.gen_cpu_pct = sum(r["cpu_pct"] for r in reports)
    row.errors = [e for r in reports for e in r["errors"]][:5]
    if latencies:
        row.p50 = percentile_or(latencies, 50, float("nan"))
        row.p99 = percentile_or(latencies, 99, float("nan"))
        row.cross_p99 = percentile_or([x for report in reports for x in report["cross"]], 99, float("nan"))
        row.max = max(latencies)
        span = (max(r["last_arrival"] for r in reports) - first_ns) / 1e9
        row.deliveries_per_s = row.received / span if span > 0 else 0.0
    return row


def table(rows: list[Row]) -> str:
    head = (f"{'scenario':<28} {'server':<22} {'clients':>7} {'sent':>6} {'deliveries':>10} {'lost':>6} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'x-p99 ms':>8} {'max ms':>7} {'deliv/s':>8} {'KiB/conn':>8} "
            f"{'cpu %':>6} {'gen cpu %':>9}")
    lines = [head]
    for r in rows:
        lines.append(f"{r.scenario:<28} {r.server:<22} {r.clients:>7} {r.sent:>6} {r.received:>10} "
                     f"{r.lost:>6} {r.p50:>7.2f} {r.p99:>7.2f} {r.cross_p99:>8.2f} {r.max:>7.1f} "
                     f"{r.deliveries_per_s:>8.0f} {r.kib_per_conn:>8.1f} {r.cpu_pct:>6.0f} "
                     f"{r.gen_cpu_pct:>9.0f}")
    return "\n".join(lines)


def replica_table(rows: list[Row]) -> str:
    """Each server process's CPU, RSS and event-loop lag p99 (while sending) per scenario."""
    lines = [f"{'scenario':<28} {'replica':<22} {'cpu %':>6} {'RSS MiB':>8} {'loop lag p99 ms':>16}"]
    for r in rows:
        for replica in r.replicas:
            lag = "-" if math.isnan(replica.lag_p99_ms) else f"<= {replica.lag_p99_ms:g}"
            lines.append(f"{r.scenario:<28} {replica.name:<22} {replica.cpu_pct:>6.0f} "
                         f"{replica.rss_mib:>8.1f} {lag:>16}")
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
    parser.add_argument("--workers", type=int, default=2,
                        help="load generator processes (default 2)")
    parser.add_argument("--servers", default="canaduck,ngircd,inspircd",
                        help="which servers: canaduck, ngircd, inspircd (two linked; default all three)")
    parser.add_argument("--scenarios", default="rooms,hall", help="which scenarios (default both)")
    parser.add_argument("--no-implicit-names", action="store_true",
                        help="clients ask for the IRCv3 no-implicit-names capability: no NAMES reply "
                             "after their JOIN (a server without it sends one anyway)")
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
    if "inspircd" in servers and inspircd_binary() is None:
        print("bench-irc: inspircd is not installed (apt-get install inspircd): no scale-out peer row",
              file=sys.stderr)
        servers.remove("inspircd")
    if not servers:
        print("bench-irc: nothing to measure", file=sys.stderr)
        return 2

    rooms = args.clients // args.room
    wanted = args.scenarios.split(",")
    tail = " no-names" if args.no_implicit_names else ""
    scenarios = [s for s in [
        ("rooms", f"rooms {rooms}x{args.room} @{args.rate:g}/s{tail}", rooms, args.room, args.rate),
        ("hall", f"hall 1x{args.hall} @{args.hall_rate:g}/s{tail}", 1, args.hall, args.hall_rate),
    ] if s[0] in wanted]
    rows: list[Row] = []
    failures: list[str] = []
    loads: list[float] = []
    # Ours and the peer's alternate scenario by scenario, so both see about the same machine.
    for _, name, rooms, size, rate in scenarios:
        for server in servers:
            try:
                rows.append(run_one(server, name, rooms, size, rate, args))
            except RuntimeError as exc:
                failures.append(f"{server} {name}: FAILED: {exc}")
                print(failures[-1], file=sys.stderr, flush=True)
                continue
            finally:
                loads.append(os.getloadavg()[0])
            print(table(rows[-1:]).splitlines()[1], file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(table(rows))
    print(replica_table(rows))
    for r in rows:
        for error in r.errors:
            print(f"  {r.server} {r.scenario}: {error}")
    for failure in failures:
        print(failure)
    print(f"load average (1 min) after each row: {' '.join(f'{x:.2f}' for x in loads)}; at the end: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    ours = [r for r in rows if r.server.startswith("canaduck")]
    peer = [r for r in rows if r.server.startswith("ngIRCd")]
    linked = [r for r in rows if r.server.startswith("InspIRCd")]
    fields = []
    if ours:
        fields += [f"irc_p50_ms={max(r.p50 for r in ours):.2f}", f"irc_p99_ms={max(r.p99 for r in ours):.2f}",
                   f"deliveries_per_s={ours[0].deliveries_per_s:.0f}", f"lost={sum(r.lost for r in ours)}"]
        lags = [x.lag_p99_ms for r in ours for x in r.replicas if not math.isnan(x.lag_p99_ms)]
        if lags:
            fields.append(f"loop_lag_p99_ms={max(lags):g}")
    if peer:
        fields += [f"ngircd_p99_ms={max(r.p99 for r in peer):.2f}",
                   f"ngircd_lost={sum(r.lost for r in peer)}"]
    if ours and peer:
        fields.append(f"p99_ratio_to_ngircd={max(r.p99 for r in ours) / max(r.p99 for r in peer):.2f}")
    if linked:
        fields += [f"inspircd_p99_ms={max(r.p99 for r in linked):.2f}",
                   f"inspircd_cross_p99_ms={max(r.cross_p99 for r in linked):.2f}",
                   f"inspircd_lost={sum(r.lost for r in linked)}"]
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
        elif server == "inspircd":
            gateways += start_network(2, workdir)
            label = "InspIRCd (2 linked)"
        else:
            backing = ChatBacking().start()
            for index in range(args.replicas):
                spec = GatewaySpec(port=free_port(), http_port=free_port())
                gateways.append(backing.start_ircd(spec, f"ircd-{index + 1}"))
            for gateway in gateways:
                gateway.wait(30)
            label = f"canaduck ({args.replicas} replicas)"
        ports = [g.listen_port for g in gateways]
        replicas = [Replica(g.name, g.proc.pid, f"http://127.0.0.1:{g.spec.http_port}/metrics"
                            if g.spec.http_port else None) for g in gateways]
        return scenario(name, label, ports, replicas, rooms, size, rate, args)
    finally:
        stop_gateways(gateways)
        if backing is not None:
            backing.stop()


if __name__ == "__main__":
    sys.exit(main())
