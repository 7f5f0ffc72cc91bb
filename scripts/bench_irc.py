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

`--tls`: our gateways also listen with TLS (a self-signed certificate made for the run) and
the clients connect there, so the memory per connection includes what TLS costs; the peers'
rows are left out (their configs here have no TLS), and the rows say `tls`.

`--window K`: a closed loop, ours only. The clients ask for IRCv3 echo-message, and at most K
messages a replica await their echo at once (shared out between the load generator's
processes); the next goes when one comes back (or is refused), whatever its due time, so that
a replica is never short of work nor offered more than it carries. `--rate` and `--seconds`
then say only how many messages there are; the rows say `wK`.

Two more delivery scenarios, sized for scale, not in the default run: "capacity", CLIENTS
(100,000 unless given) in rooms, on a replica per PER_REPLICA clients and a load generator
process per PER_WORKER, each binding its own source address (127.0.0.1, .2, ...) so that no
(source, destination) pair runs out of ephemeral ports; it also says how fast the clients
registered, how many keep-alive PINGs they answered and how many NICKs and JOINs were asked
again after a 400 "try again". "bighall": one channel of HALL (7,000 unless given) members at
HALL_RATE (5 unless given). Each ends with a RESULT line of its own.

"reconnect" (`--scenarios reconnect`, not in the default run): CLIENTS clients (2,000 unless
given) in rooms through one address, our REPLICAS replicas (4 unless given) sharing one port;
the first is SIGKILLed under traffic and its clients come back on their own, with backoff and
jitter, and fill their gap with CHATHISTORY (scripts/devkit/ircroam.py). Its table says how
long they took, what was lost, and how the survivors fared; InspIRCd's row kills one of its
two servers (a netsplit). See docs/ircd.md, "A replica killed under load".
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import multiprocessing
import os
import random
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from scripts.devkit import cpuquota, ircroam
from scripts.devkit.benchclient import SETUP_TIMEOUT, BenchClient, Tally
from scripts.devkit.cpuquota import CpuQuotas, cpu_list
from scripts.devkit.inspircd import client_limit, inspircd_binary, start_network
from scripts.devkit.ircbench import (
    DELIVERY_KINDS,
    PER_REPLICA,
    PER_WORKER,
    WAVE,
    Plan,
    ReplicaRow,
    Row,
    Shape,
    bighall_result,
    capacity_result,
    curve_result,
    delivery_result,
    holds,
    plans,
    replica_table,
    setup_table,
    shapes,
    table,
)
from scripts.devkit.ircroam import RoamPlan, roam_plans
from scripts.devkit.ircstack import (
    NGIRCD_LISTEN_BACKLOG,
    ChatBacking,
    Gateway,
    GatewaySpec,
    client_tls_context,
    has_ircd,
    ngircd_binary,
    scratch_dir,
    self_signed,
    start_ngircd,
    stop_gateways,
)
from scripts.devkit.loopback import connect_from
from scripts.devkit.processes import free_port
from scripts.devkit.stats import histogram_buckets, histogram_quantile, percentile_or


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
    arrivals = asyncio.Semaphore(plan.wave)
    cpu_start = time.process_time()

    context = client_tls_context() if plan.tls else None
    # A closed loop: a message takes a place in the window, and its echo gives it back.
    window = asyncio.Semaphore(plan.window) if plan.window else None
    wanted = ["no-implicit-names"] if plan.no_implicit_names else []
    wanted += ["echo-message"] if window is not None else []

    async def register(index: int) -> None:
        # A connection closed before it registers (a replica too busy to take it) is tried
        # again after a backoff, as a real client does, until SETUP_TIMEOUT.
        nick, port = plan.nicks[index], plan.ports[index]
        backoff = ircroam.Backoff(ircroam.BACKOFF_BASE, ircroam.BACKOFF_CAP, random.Random(index))
        deadline = time.perf_counter() + SETUP_TIMEOUT
        while True:
            async with arrivals:
                _, client = await connect_from(
                    lambda: BenchClient(nick, tally, port=port, origin=plan.origin,
                                        no_implicit_names=plan.no_implicit_names,
                                        echoed=window.release if window is not None else None),
                    plan.source, port, ssl=context)
                clients[index] = client
                hello = f"NICK {nick}\r\nUSER {nick} 0 * :bench\r\n"
                if wanted:
                    hello = f"CAP REQ :{' '.join(wanted)}\r\n{hello}CAP END\r\n"
                client.write(hello.encode())
                try:
                    await client.wait(client.registered, "registering")
                    return
                except ConnectionError:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"{nick} registering: closed; the servers said: "
                                           f"{tally.errors[:3]}") from None
                    tally.turned_away += 1
            await asyncio.sleep(backoff.delay())

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
        # Open loop: each message at its due time. Closed: from the start, as the window allows.
        delay = start_at + (0 if window else offset) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if window is not None:
            await window.acquire()
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
                        "pings": tally.pings, "closed": tally.closed, "retries": tally.retries,
                        "turned_away": tally.turned_away, "cpu_pct": 100 * cpu / wall}))
    await step("quit")
    for client in clients.values():
        if not client.closed:
            client.write(b"QUIT :bench done\r\n")
    await asyncio.sleep(0.2)
    for client in clients.values():
        if client.transport is not None:
            client.transport.close()


# -- the conductor -------------------------------------------------------------------------------


class Workers:
    """The load generator's processes and their pipes."""

    def __init__(self, plans_: Sequence[Plan | RoamPlan],
                 target: Callable[[Any, Connection], None] = worker_main) -> None:
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for plan in plans_:
            ours, theirs = context.Pipe()
            proc = context.Process(target=target, args=(plan, theirs), daemon=True)
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


def scenario(shape: Shape, server: str, ports: list[int], replicas: list[Replica],
             args: argparse.Namespace, wave: int = WAVE) -> Row:
    pids = [r.pid for r in replicas]
    count = shape.clients
    worker_plans, total = plans(count, shape.size, ports, shape.rate, args.seconds, shape.workers,
                                f"b{shape.kind[:1]}", no_implicit_names=args.no_implicit_names, tls=args.tls,
                                wave=wave, window=shape.window)
    rss_before = sum(rss_kib(p) for p in pids)
    workers = Workers(worker_plans)
    try:
        phase = time.perf_counter()
        workers.step("register", expect="registered")
        register_s = time.perf_counter() - phase
        at_once = f" ({wave * shape.workers} at a time)" if wave != WAVE else ""
        print(f"  {server}: {count} clients registered in {register_s:.1f} s{at_once}", file=sys.stderr)
        phase = time.perf_counter()
        workers.step("join", expect="joined")
        join_s = time.perf_counter() - phase
        print(f"  {server}: joined {shape.rooms} channel(s) in {join_s:.1f} s", file=sys.stderr)
        time.sleep(1.0)  # joins settle on every replica before the clock starts
        rss_after = sum(rss_kib(p) for p in pids)
        row = Row(shape.label, server, count, sent=total, kib_per_conn=(rss_after - rss_before) / count,
                  register_s=register_s, join_s=join_s)
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
    row.pings = sum(r["pings"] for r in reports)
    row.closed = sum(r["closed"] for r in reports)
    row.retries = sum(r["retries"] for r in reports)
    row.turned_away = sum(r["turned_away"] for r in reports)
    row.errors = [e for r in reports for e in r["errors"]][:5]
    if latencies:
        row.p50 = percentile_or(latencies, 50, float("nan"))
        row.p99 = percentile_or(latencies, 99, float("nan"))
        row.cross_p99 = percentile_or([x for report in reports for x in report["cross"]], 99, float("nan"))
        row.max = max(latencies)
        span = (max(r["last_arrival"] for r in reports) - first_ns) / 1e9
        row.deliveries_per_s = row.received / span if span > 0 else 0.0
    return row


# -- the reconnect scenario ----------------------------------------------------------------------


@dataclass
class ReconnectRow:
    """What a killed server did to its clients, and what they made of it."""

    server: str
    clients: int
    victim: str
    dropped: int = 0
    away: int = 0  # dropped and not back with their gap filled when the conductor gave up
    all_back_s: float = math.nan
    back_p50_s: float = math.nan
    filled_s: float = math.nan
    expected: int = 0
    lost: int = 0
    lost_dropped: int = 0
    lost_away: int = 0  # to the clients still not back at the end
    history_failures: int = 0
    retries: int = 0
    redrops: int = 0
    turned_away_first: int = 0
    turned_away_back: int = 0
    recovered: int = 0
    skipped: int = 0
    unacked: int = 0
    attempts: int = 0
    alternate_nicks: int = 0
    quits: int = 0
    double_quits: int = 0
    quit_span: str = "-"
    live_p99: float = math.nan
    survivor_lag_p99_ms: float = math.nan  # from the kill until every client is back
    after_lag_p99_ms: float = math.nan  # from then until the end (our sweeper's QUITs)
    survivor_cpu_pct: float = 0.0
    listen_overflows: int = 0
    gen_cpu_pct: float = 0.0
    gen_lag_p99_ms: float = math.nan  # the generators' own event-loop lag during the storm
    load: float = 0.0
    errors: list[str] = field(default_factory=list)
    closings: Counter[str] = field(default_factory=Counter)  # the servers' ERROR lines, by text
    gave_up: Counter[str] = field(default_factory=Counter)  # attempts timed out, by step
    #: p50 and p99 seconds of each step of the attempts that succeeded (connect, register, join)
    step_quantiles: list[tuple[float, float]] = field(default_factory=list)


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listener's accept queue was full
    (TcpExt ListenOverflows: the whole machine's, since boot)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()
             if line.startswith("TcpExt:")]
    return int(dict(zip(lines[0], lines[1], strict=True)).get("ListenOverflows", 0))


def reconnect_scenario(label: str, count: int, addresses: Callable[[int], list[int]], replicas: list[Replica],
                       victim: Replica, args: argparse.Namespace) -> ReconnectRow:
    """Clients in rooms with traffic; SIGKILL `victim`; until its clients are back (or the
    timeout); then traffic a little longer, and every delivery accounted for."""
    workers_count = max(args.workers, math.ceil(count / PER_WORKER))
    longest = args.kill_after + max(args.back_timeout + args.after, args.watch) + 10
    plans_ = roam_plans(count, args.room, addresses, args.rate, longest, workers_count,
                        backoff_base=args.backoff_base, backoff_cap=args.backoff_cap,
                        back_timeout=args.back_timeout, no_implicit_names=args.no_implicit_names)
    survivors = [r for r in replicas if r is not victim]
    row = ReconnectRow(label, count, victim.name)
    workers = Workers(plans_, ircroam.worker_main)
    try:
        for step in ("register", "join"):
            phase = time.perf_counter()
            workers.step(step, expect=step + "ed", timeout=args.back_timeout + 600)
            print(f"  {label}: {count} clients {step}ed in {time.perf_counter() - phase:.1f} s",
                  file=sys.stderr)
        time.sleep(1.0)  # joins settle on every server before the clock starts
        start_at = time.perf_counter() + 0.5
        workers.step("go", start_at)
        time.sleep(max(0.0, start_at + args.kill_after - time.perf_counter()))
        lag_before = [r.lag_buckets() for r in survivors]
        cpu_before = {r.pid: cpu_seconds(r.pid) for r in survivors}
        overflows = listen_overflows()
        os.killpg(victim.pid, signal.SIGKILL)
        kill_at = time.perf_counter()
        print(f"  {label}: {victim.name} killed", file=sys.stderr)
        back = workers.step("killed", kill_at, expect="back", timeout=args.back_timeout + 60)
        storm = time.perf_counter() - kill_at
        row.gen_lag_p99_ms = 1000 * percentile_or([x for b in back for x in b["lags"]], 99, math.nan)
        row.listen_overflows = listen_overflows() - overflows
        row.survivor_cpu_pct = 100 * sum(cpu_seconds(p) - c for p, c in cpu_before.items()) / storm
        lag_back = [r.lag_buckets() for r in survivors]
        row.survivor_lag_p99_ms = worst_lag(lag_before, lag_back)
        cutoff = max(time.perf_counter() + args.after, kill_at + args.watch)
        done = workers.step("stop", (cutoff, args.drain), expect="done",
                            timeout=cutoff - time.perf_counter() + args.drain + 60)
        row.after_lag_p99_ms = worst_lag(lag_back, [r.lag_buckets() for r in survivors])
        taken = sorted({m for d in done for m in d["acked"]})
        counted = workers.step("count", taken, expect="counted")
        workers.step("quit")
    finally:
        workers.stop()
    row.load = os.getloadavg()[0]
    row.skipped = sum(d["skipped"] for d in done)
    row.gen_cpu_pct = sum(d["cpu_pct"] for d in done)
    add_counts(row, counted)
    return row


def worst_lag(before: list[dict[float, float]], after: list[dict[float, float]]) -> float:
    """The worst replica's event-loop lag p99 (ms) between two readings of each; nan if none."""
    lags = [1000 * histogram_quantile(b, a, 0.99) for b, a in zip(before, after, strict=True)]
    return max((x for x in lags if not math.isnan(x)), default=math.nan)


def add_counts(row: ReconnectRow, counted: list[dict[str, Any]]) -> None:
    """The workers' counts, added up into `row`."""
    for key in ("expected", "lost", "lost_dropped", "lost_away", "history_failures", "retries", "recovered",
                "dropped", "unacked", "attempts", "alternate_nicks", "quits", "double_quits", "redrops",
                "turned_away_first", "turned_away_back"):
        setattr(row, key, sum(c[key] for c in counted))
    back = [x for c in counted for x in c["back_s"]]
    filled = [x for c in counted for x in c["filled_s"]]
    row.away = row.dropped - len(filled)
    if back and not row.away:
        row.all_back_s, row.filled_s = max(back), max(filled)
    if back:
        row.back_p50_s = percentile_or(back, 50, math.nan)
    firsts = [c["first_quit_s"] for c in counted if c["first_quit_s"] is not None]
    lasts = [c["last_quit_s"] for c in counted if c["last_quit_s"] is not None]
    if firsts:
        row.quit_span = f"{min(firsts):.1f}-{max(lasts):.1f} s"
    row.live_p99 = percentile_or([x for c in counted for x in c["latencies"]], 99, math.nan)
    row.errors = [e for c in counted for e in c["errors"] + c["lost_samples"]][:8]
    for c in counted:
        row.closings.update(c["closings"])
        row.gave_up.update(c["gave_up"])
    steps = [s for c in counted for s in c["attempt_steps"]]
    row.step_quantiles = [(percentile_or(column, 50, math.nan), percentile_or(column, 99, math.nan))
                          for column in zip(*steps, strict=True)] if steps else []


def reconnect_table(rows: list[ReconnectRow]) -> str:
    """One column per server, one line per measure."""
    measures: list[tuple[str, Callable[[ReconnectRow], object]]] = [
        ("clients", lambda r: r.clients),
        ("killed", lambda r: r.victim),
        ("its clients (dropped)", lambda r: r.dropped),
        ("all back, rejoined (s after kill)", lambda r: _num(r.all_back_s, r.away)),
        ("half back (s)", lambda r: _num(r.back_p50_s)),
        ("all gaps filled (s)", lambda r: _num(r.filled_s, r.away)),
        ("reconnect attempts", lambda r: r.attempts),
        ("  turned away before registering", lambda r: r.turned_away_back),
        ("  given up (timeout) connecting/registering/joining",
         lambda r: "/".join(str(r.gave_up[step]) for step in ircroam.ATTEMPT_STEPS)),
        ("  p50/p99 s to connect, register, join", lambda r: ", ".join(
            f"{p50:.1f}/{p99:.1f}" for p50, p99 in r.step_quantiles) or "-"),
        ("NICK, JOIN, history asked again (400)", lambda r: r.retries),
        ("back, then dropped again before filled", lambda r: r.redrops),
        ("took an alternate nick (433)", lambda r: r.alternate_nicks),
        ("deliveries owed", lambda r: r.expected),
        ("lost", lambda r: r.lost),
        ("  of them to dropped clients", lambda r: r.lost_dropped),
        ("  of them to clients not back", lambda r: r.lost_away),
        ("recovered from CHATHISTORY", lambda r: r.recovered),
        ("CHATHISTORY refused (FAIL)", lambda r: r.history_failures),
        ("sends skipped while away", lambda r: r.skipped),
        ("sent, never echoed (in flight)", lambda r: r.unacked),
        ("QUITs seen by others", lambda r: r.quits),
        ("  first-last (s after kill)", lambda r: r.quit_span),
        ("  the same nick's QUIT seen twice", lambda r: r.double_quits),
        ("live delivery p99 ms", lambda r: _num(r.live_p99)),
        ("survivors' loop lag p99 ms", lambda r: _bound(r.survivor_lag_p99_ms)),
        ("  after, to the end", lambda r: _bound(r.after_lag_p99_ms)),
        ("survivors' cpu % (storm)", lambda r: f"{r.survivor_cpu_pct:.0f}"),
        ("listen queue overflows", lambda r: r.listen_overflows),
        ("first arrivals turned away, tried again", lambda r: r.turned_away_first),
        ("gen cpu %", lambda r: f"{r.gen_cpu_pct:.0f}"),
        ("gen loop lag p99 ms (storm)", lambda r: _num(r.gen_lag_p99_ms)),
        ("load average (1 min)", lambda r: f"{r.load:.2f}"),
    ]
    width = max(28, *(len(r.server) + 2 for r in rows))
    lines = [f"{'reconnect':<34}" + "".join(f"{r.server:>{width}}" for r in rows)]
    lines += [f"{name:<34}" + "".join(f"{value(r)!s:>{width}}" for r in rows) for name, value in measures]
    return "\n".join(lines)


def _bound(value: float) -> str:
    return "-" if math.isnan(value) else f"<= {value:g}"


def _num(value: float, away: int = 0) -> str:
    if away:
        return f"{away} not back"
    return "-" if math.isnan(value) else f"{value:.2f}"


def run_reconnect(server: str, args: argparse.Namespace) -> ReconnectRow:
    """Fresh servers: ours, `--replicas` replicas sharing one port (the one address), the first
    killed; or InspIRCd, two linked servers, the second killed (its clients try the other)."""
    workdir = scratch_dir("bench-irc")
    backing: ChatBacking | None = None
    gateways: list[Gateway] = []
    try:
        if server == "inspircd":
            gateways += start_network(2, workdir)
            ports = [g.listen_port for g in gateways]
            count = min(args.clients, client_limit() - 500)  # the survivor must hold them all
            if count < args.clients:
                print(f"  InspIRCd: {count} clients, what one server may hold here (the survivor "
                      f"takes them all)", file=sys.stderr)
            replicas = [Replica(g.name, g.proc.pid) for g in gateways]
            # A client knows both servers, as a network's name resolves to all of them.
            both = [[ports[0], ports[1]], [ports[1], ports[0]]]
            return reconnect_scenario("InspIRCd (2 linked)", count, lambda i: both[i % 2], replicas,
                                      replicas[-1], args)
        survivors_hold = args.clients / max(1, args.replicas - 1)
        if args.replicas < 2 or survivors_hold > client_limit() - 500:
            raise RuntimeError(f"{args.replicas} replicas: after one is killed each survivor holds "
                               f"{survivors_hold:.0f} clients, more than a process's open files allow")
        shared = free_port()
        backing = ChatBacking().start()
        # The directory's production timing (the test launcher's is faster): how long a dead
        # replica's ghosts keep their nicks is part of what is measured.
        env = {"IRC_SHARED_PORT": str(shared), "DIRECTORY_TTL": "10", "HEARTBEAT_INTERVAL": "3"}
        for index in range(args.replicas):
            spec = GatewaySpec(port=free_port(), http_port=free_port(), env=dict(env))
            gateways.append(backing.start_ircd(spec, f"ircd-{index + 1}"))
        for gateway in gateways:
            gateway.wait(60)
        replicas = [Replica(g.name, g.proc.pid, f"http://127.0.0.1:{g.spec.http_port}/metrics")
                    for g in gateways]
        return reconnect_scenario(f"canaduck ({args.replicas} replicas)", args.clients, lambda i: [shared],
                                  replicas, replicas[0], args)
    finally:
        stop_gateways(gateways)
        if backing is not None:
            backing.stop()


def reconnect_result(rows: list[ReconnectRow]) -> str:
    """The scenario's RESULT line: ours first, the peer's figures after."""
    fields = []
    for r in rows:
        prefix = "" if r.server.startswith("canaduck") else "inspircd_"
        back = "nan" if r.away else f"{r.all_back_s:.2f}"
        fields += [f"{prefix}reconnect_clients={r.clients}", f"{prefix}reconnect_all_back_s={back}",
                   f"{prefix}reconnect_lost={r.lost}"]
        if not prefix:
            fields.append(f"survivor_lag_p99_ms={r.survivor_lag_p99_ms:g}")
    return "RESULT " + " ".join(fields)


def cores(text: str) -> float:
    """`--quota`: a positive number of cores (0: none)."""
    value = float(text)
    if not 0 <= value <= (os.cpu_count() or 1):
        raise argparse.ArgumentTypeError(f"{text}: between 0 and this machine's {os.cpu_count()} cores")
    return value


def replica_counts(text: str) -> list[int]:
    """`--curve`: replica counts, comma separated, each at least 1."""
    try:
        counts = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: replica counts, such as 1,2,4") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text}: every replica count at least 1")
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=None,
                        help="clients of the rooms scenario (default 1000), of capacity (default 100000) "
                             "and of reconnect (default 2000)")
    parser.add_argument("--room", type=int, default=20,
                        help="rooms and reconnect: members per channel (default 20)")
    parser.add_argument("--rate", type=float, default=200,
                        help="rooms and reconnect: messages/s in all (default 200)")
    parser.add_argument("--hall", type=int, default=None,
                        help="hall and bighall: members (default 500 and 7000)")
    parser.add_argument("--hall-rate", type=float, default=None,
                        help="hall and bighall: messages/s (default 10 and 5)")
    parser.add_argument("--seconds", type=float, default=10, help="sending time per scenario (default 10)")
    parser.add_argument("--drain", type=float, default=5, help="seconds to wait for late deliveries")
    parser.add_argument("--replicas", type=int, default=None,
                        help=f"our gateway replicas (default 2; reconnect: 4; capacity and bighall: one "
                             f"per {PER_REPLICA} clients, at least 2)")
    parser.add_argument("--workers", type=int, default=2,
                        help=f"load generator processes (default 2, and at least one per "
                             f"{PER_WORKER} clients)")
    parser.add_argument("--servers", default="canaduck,ngircd,inspircd",
                        help="which servers: canaduck, ngircd, inspircd (two linked; default all three)")
    parser.add_argument("--scenarios", default="rooms,hall",
                        help="which scenarios: rooms, hall, capacity, bighall, reconnect "
                             "(default rooms,hall)")
    parser.add_argument("--tls", action="store_true",
                        help="delivery scenarios: the clients connect to our gateways over TLS (a "
                             "self-signed certificate made for the run); the peers' rows are left out")
    parser.add_argument("--quota", type=cores, default=0.0,
                        help="delivery scenarios: cores of CPU each of our replicas may use (a cgroup v1 "
                             "cpu group each, as if each had a host of its own; default: no quota)")
    parser.add_argument("--curve", type=replica_counts, default=None,
                        help="delivery scenarios: ours only, once per replica count given (e.g. 1,2,4), "
                             "and the scaling efficiency of deliveries/s")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --curve: run it this many times, every other round in reverse order "
                             "(1,2,4 then 4,2,1...), and give each replica count's median (default 1)")
    parser.add_argument("--pin", action="store_true",
                        help="with --curve and --quota: our replicas on the machine's last CPU(s), as "
                             "many as their quotas add up to at the largest count, Redis and the load "
                             "generator on the others, the same at every count (no replica then shares a "
                             "core with its load generator, as none would on N hosts)")
    parser.add_argument("--scaled-load", action="store_true",
                        help="with --curve, rooms and capacity: N replicas get N times the clients and "
                             "the messages, each its own share as N hosts would")
    parser.add_argument("--window", type=int, default=0,
                        help="delivery scenarios, ours only: a closed loop, at most this many messages "
                             "per replica awaiting their echo (IRCv3 echo-message) at once, the next "
                             "sent when one comes back; --rate and --seconds then give only how many "
                             "(default 0: each message at its due time)")
    parser.add_argument("--no-implicit-names", action="store_true",
                        help="clients ask for the IRCv3 no-implicit-names capability: no NAMES reply "
                             "after their JOIN (a server without it sends one anyway)")
    group = parser.add_argument_group("reconnect")
    group.add_argument("--kill-after", type=float, default=5,
                       help="seconds of traffic before one server is SIGKILLed (default 5)")
    group.add_argument("--after", type=float, default=5,
                       help="seconds of traffic once every client is back (default 5)")
    group.add_argument("--watch", type=float, default=30,
                       help="traffic goes on at least this long after the kill, to see the dead "
                            "server's users QUIT (default 30 s: our sweeper's time, with the "
                            "directory's 10 s TTL)")
    group.add_argument("--back-timeout", type=float, default=180,
                       help="seconds after the kill to wait for every client at most (default 180)")
    group.add_argument("--backoff-base", type=float, default=ircroam.BACKOFF_BASE,
                       help="a reconnecting client's first wait is up to this, doubling "
                            "(default %(default)s s)")
    group.add_argument("--backoff-cap", type=float, default=ircroam.BACKOFF_CAP,
                       help="and never more than this (default %(default)s s)")
    return parser.parse_args(argv)


def available(servers: list[str]) -> list[str]:
    """The servers asked for that this machine has, saying why the others are left out."""
    missing = {"canaduck": (not has_ircd(), "this checkout has no IRC gateway (apps.ircd): ours is left out"),
               "ngircd": (ngircd_binary() is None,
                          "ngircd is not installed (apt-get install ngircd): no peer row"),
               "inspircd": (inspircd_binary() is None,
                            "inspircd is not installed (apt-get install inspircd): no scale-out peer row")}
    out = []
    for server in servers:
        gone, why = missing.get(server, (True, f"unknown server {server!r}"))
        if gone:
            print(f"bench-irc: {why}", file=sys.stderr)
        else:
            out.append(server)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A thousand sockets here, as many in each server (they inherit the limit): raise it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    servers = available(args.servers.split(","))
    if args.window < 0:
        print("bench-irc: --window: a number of messages, 0 or more", file=sys.stderr)
        return 2
    for flag, given, reason in (("--window", args.window, "a closed loop needs echo-message"),
                                ("--tls", args.tls, "the peers' configs here have no TLS")):
        if not given:
            continue
        if "reconnect" in args.scenarios.split(","):
            print(f"bench-irc: {flag} is for the delivery scenarios, not reconnect", file=sys.stderr)
            return 2
        if set(servers) - {"canaduck"}:
            print(f"bench-irc: {flag}: ours only ({reason})", file=sys.stderr)
        servers = [s for s in servers if s == "canaduck"]
    if (args.quota or args.curve) and "reconnect" in args.scenarios.split(","):
        print("bench-irc: --quota and --curve are for the delivery scenarios, not reconnect", file=sys.stderr)
        return 2
    if args.quota and (why := cpuquota.available()):
        print(f"bench-irc: --quota: {why}", file=sys.stderr)
        return 2
    if args.rounds < 1 or (args.rounds > 1 and not args.curve):
        print("bench-irc: --rounds: a number of rounds, 1 or more, for --curve", file=sys.stderr)
        return 2
    if args.pin:
        if not (args.curve and args.quota):
            print("bench-irc: --pin is for --curve with --quota", file=sys.stderr)
            return 2
        try:
            args.replica_cpus, others = cpuquota.step_aside(max(args.curve) * args.quota)
        except ValueError as exc:
            print(f"bench-irc: --pin: {exc}", file=sys.stderr)
            return 2
        print(f"bench-irc: --pin: our replicas on CPU {cpu_list(args.replica_cpus)}, Redis and the "
              f"load generator on CPU {cpu_list(others)}", file=sys.stderr)
    if args.scaled_load and (not args.curve or set(args.scenarios.split(",")) - {"rooms", "capacity"}):
        print("bench-irc: --scaled-load is for --curve with rooms or capacity (a hall's load grows "
              "with its members squared)", file=sys.stderr)
        return 2
    if args.curve:
        if set(servers) - {"canaduck"}:
            print("bench-irc: --curve: ours only (the peers do not add replicas)", file=sys.stderr)
        servers = [s for s in servers if s == "canaduck"]
    if not servers:
        print("bench-irc: nothing to measure", file=sys.stderr)
        return 2
    wanted = args.scenarios.split(",")
    failures: list[str] = []
    unknown = set(wanted) - {*DELIVERY_KINDS, "reconnect"}
    if unknown:
        print(f"bench-irc: unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if set(DELIVERY_KINDS) & set(wanted):
        failures += delivery(servers, wanted, args)
    if "reconnect" in wanted:
        failures += reconnect(servers, argparse.Namespace(**{
            **vars(args), "clients": args.clients or 2000, "replicas": args.replicas or 4}))
    return 1 if failures else 0


def reconnect(servers: list[str], args: argparse.Namespace) -> list[str]:
    """The reconnect scenario on each server that has a survivor to go to; its table and
    RESULT line; the failures."""
    rows: list[ReconnectRow] = []
    failures: list[str] = []
    for server in servers:
        if server == "ngircd":
            print("bench-irc: reconnect: ngIRCd is one process, with no other server to reconnect to: "
                  "no row", file=sys.stderr)
            continue
        try:
            rows.append(run_reconnect(server, args))
        except RuntimeError as exc:
            failures.append(f"{server} reconnect: FAILED: {exc}")
            print(failures[-1], file=sys.stderr, flush=True)
    if rows:
        print(reconnect_table(rows))
    for r in rows:
        for reason, count in r.closings.most_common():
            print(f"  {r.server} reconnect: ERROR :{reason} (x{count})")
        for error in r.errors:
            print(f"  {r.server} reconnect: {error}")
    for failure in failures:
        print(failure)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    if rows:
        print(reconnect_result(rows) + (f" failed_scenarios={len(failures)}" if failures else ""))
    return failures


def delivery(servers: list[str], wanted: list[str], args: argparse.Namespace) -> list[str]:
    """The delivery scenarios (rooms, hall, capacity, bighall) on each server; their tables and
    RESULT lines; the failures."""
    rows: list[Row] = []
    failures: list[str] = []
    loads: list[float] = []
    # Ours and the peers alternate scenario by scenario, so all see about the same machine.
    for shape in shapes(wanted, args):
        for server in servers:
            if shape.clients > holds(server):
                print(f"bench-irc: {shape.kind}: {server} holds at most {holds(server)} clients here "
                      f"(its open files): no row", file=sys.stderr)
                continue
            try:
                rows.append(run_one(server, shape, args))
            except RuntimeError as exc:
                failures.append(f"{server} {shape.label}: FAILED: {exc}")
                print(failures[-1], file=sys.stderr, flush=True)
                continue
            finally:
                loads.append(os.getloadavg()[0])
            print(table(rows[-1:]).splitlines()[1], file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(table(rows))
    print(setup_table(rows))
    print(replica_table(rows))
    for r in rows:
        for error in r.errors:
            print(f"  {r.server} {r.scenario}: {error}")
    for failure in failures:
        print(failure)
    print(f"load average (1 min) after each row: {' '.join(f'{x:.2f}' for x in loads)}; at the end: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    results: tuple[tuple[str, Callable[[list[Row]], str]], ...] = (
        ("rooms,hall", delivery_result), ("capacity", capacity_result), ("bighall", bighall_result))
    if args.curve:
        curve = functools.partial(curve_result, quota=args.quota, scaled=args.scaled_load,
                                  replica_cpus=cpu_list(args.replica_cpus) if args.pin else "")
        results = tuple((kind, curve) for kind in DELIVERY_KINDS)
    for kinds, result in results:
        ran = [r for r in rows if r.scenario.split()[0] in kinds.split(",")]
        if ran:
            print(result(ran) + (f" failed_scenarios={len(failures)}" if failures else ""))
    return failures


def log_warnings(gateways: list[Gateway], count: int = 3) -> list[str]:
    """The last warnings and errors of each server's log: why a run failed, kept in its output
    (the logs go with the run's scratch directory)."""
    found = []
    for gateway in gateways:
        lines = [line for line in gateway.log().splitlines() if "WARNING" in line or "ERROR" in line]
        found += [f"{gateway.name}: {line[:300]}" for line in lines[-count:]]
    return found


def run_one(server: str, shape: Shape, args: argparse.Namespace) -> Row:
    """Fresh servers for each scenario, stopped after it. With `--quota`, each of our replicas
    is held to that much CPU (a cgroup of its own); Redis and the load generator are not."""
    workdir = scratch_dir("bench-irc")
    backing: ChatBacking | None = None
    gateways: list[Gateway] = []
    quotas = CpuQuotas(args.quota) if args.quota and server == "canaduck" else None
    wave = WAVE
    try:
        if server == "ngircd":
            gateways.append(start_ngircd(GatewaySpec(port=free_port()), workdir).wait())
            label = "ngIRCd (1 process)"
            # No more handshakes at once than its accept queue holds (NGIRCD_LISTEN_BACKLOG).
            wave = max(1, NGIRCD_LISTEN_BACKLOG // shape.workers)
        elif server == "inspircd":
            gateways += start_network(2, workdir)
            label = "InspIRCd (2 linked)"
        else:
            backing = ChatBacking().start()
            cert, key = self_signed(workdir) if args.tls else (None, None)
            for index in range(shape.replicas):
                # With TLS the clients go to the TLS port (`Gateway.listen_port`).
                spec = GatewaySpec(port=free_port(), http_port=free_port(),
                                   tls_port=free_port() if args.tls else None, tls_cert=cert, tls_key=key)
                gateways.append(backing.start_ircd(spec, f"ircd-{index + 1}"))
            for gateway in gateways:
                gateway.wait(30)
            if quotas is not None:
                for gateway in gateways:
                    quotas.hold(gateway.name, [gateway.proc.pid])
                    if args.pin:
                        cpuquota.pin(gateway.proc.pid, args.replica_cpus)
            label = f"canaduck ({shape.replicas} replicas)"
        ports = [g.listen_port for g in gateways]
        replicas = [Replica(g.name, g.proc.pid, f"http://127.0.0.1:{g.spec.http_port}/metrics"
                            if g.spec.http_port else None) for g in gateways]
        try:
            return scenario(shape, label, ports, replicas, args, wave)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; the servers' logs end with: {log_warnings(gateways)}") from None
    finally:
        if quotas is not None:
            quotas.release()
        stop_gateways(gateways)
        if backing is not None:
            backing.stop()


if __name__ == "__main__":
    sys.exit(main())
