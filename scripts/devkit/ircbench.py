"""The delivery scenarios of scripts/bench-irc as data: what each load generator process does
(`Plan`, `plans`), the shape of each scenario (`Shape`, `shapes`), the rows measured, and the
tables and RESULT lines made of them. The entry point runs the servers and the generator."""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from scripts.devkit.curves import curve_order, each_round
from scripts.devkit.inspircd import client_limit

#: Registrations or joins in flight at once, per worker (a thousand clients arrive in waves).
WAVE = 50
#: Clients per generator process, below the 20,000 open files a process may have here.
PER_WORKER = 15000
#: Our clients per replica in the capacity scenario: under the open files a process may have.
PER_REPLICA = 18000


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
    #: The clients connect with TLS (the servers' certificate is not checked: it is the run's own).
    tls: bool = False
    #: The address the clients bind: one per worker, so that no (source, destination) pair needs
    #: more than this machine's ~28,000 ephemeral ports.
    source: str = "127.0.0.1"
    #: Registrations in flight at once (joins are WAVE): fewer for a server whose listen
    #: backlog is shorter than the generator's waves (ngIRCd's is 10).
    wave: int = WAVE
    #: 0: the messages go at their due times (an open loop). Else a closed loop: at most this
    #: many of the worker's messages await their echo (IRCv3 echo-message) at once, and the next
    #: goes as soon as one comes back, whatever its due time.
    window: int = 0


@dataclass
class ReplicaRow:
    """A replica's share of a scenario's sending phase."""

    name: str
    cpu_pct: float
    rss_mib: float
    lag_p99_ms: float  # the upper bound of the histogram bucket holding the 99th percentile


@dataclass
class Row:
    """One delivery scenario's figures on one server (ours: all its replicas)."""

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
    register_s: float = 0.0  # every client registered (from the first connection)
    join_s: float = 0.0  # every client joined (from the first JOIN)
    pings: int = 0  # keep-alive PINGs the clients answered
    retries: int = 0  # NICKs and JOINs asked again after a 400 "try again"
    closed: int = 0  # registered connections the server closed
    turned_away: int = 0  # connections closed before registering (the door), tried again
    errors: list[str] = field(default_factory=list)
    replicas: list[ReplicaRow] = field(default_factory=list)

    @property
    def registrations_per_s(self) -> float:
        return self.clients / self.register_s if self.register_s else 0.0

    @property
    def lost(self) -> int:
        return self.expected - self.received


def plans(count: int, room_size: int, ports: list[int], rate: float, seconds: float, workers: int,
          prefix: str, *, no_implicit_names: bool = False, tls: bool = False,
          wave: int = WAVE, window: int = 0) -> tuple[list[Plan], int]:
    """Split the clients over the workers (client i goes to worker i % workers, and to port
    i % len(ports)), channels of `room_size` consecutive clients, the send schedule; and the
    number of messages. A `window` (a closed loop: messages awaiting their echo at once, in
    all) is shared out between the workers."""
    rooms = max(1, count // room_size)
    channel_of = {i: f"#bench{i // room_size}" for i in range(rooms * room_size)}
    members: dict[str, list[int]] = {}
    for index, channel in channel_of.items():
        members.setdefault(channel, []).append(index)
    names = sorted(members, key=lambda c: int(c[6:]))
    share = math.ceil(window / workers)
    out = [Plan({}, {}, {}, [], {}, no_implicit_names, tls=tls, source=f"127.0.0.{1 + w}", wave=wave,
                window=share)
           for w in range(workers)]
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


@dataclass
class Shape:
    """One delivery scenario as run: its channels and rate, and the processes it takes."""

    kind: str  # rooms, hall, capacity or bighall
    label: str
    rooms: int
    size: int
    rate: float
    replicas: int  # ours
    workers: int  # load generator processes
    window: int = 0  # a closed loop: messages awaiting their echo at once, in all (0: open loop)

    @property
    def clients(self) -> int:
        return self.rooms * self.size


def table(rows: list[Row]) -> str:
    head = (f"{'scenario':<28} {'server':<22} {'clients':>7} {'sent':>6} {'deliveries':>10} {'lost':>6} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'x-p99 ms':>8} {'max ms':>7} {'deliv/s':>8} {'KiB/conn':>8} "
            f"{'cpu %':>6} {'gen cpu %':>9}")
    lines = [head]
    for r in rows:
        lines.append(f"{r.scenario:<28} {r.server:<22} {r.clients:>7} {r.sent:>6} {r.received:>10} "
                     f"{r.lost:>6} {r.p50:>7.2f} {r.p99:>7.2f} {_cell(r.cross_p99):>8} {r.max:>7.1f} "
                     f"{r.deliveries_per_s:>8.0f} {r.kib_per_conn:>8.1f} {r.cpu_pct:>6.0f} "
                     f"{r.gen_cpu_pct:>9.0f}")
    return "\n".join(lines)


def _cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def setup_table(rows: list[Row]) -> str:
    """How the clients came in: registrations and joins, keep-alives, connections closed."""
    lines = [f"{'scenario':<28} {'server':<22} {'clients':>7} {'registered s':>12} {'reg/s':>6} "
             f"{'joined s':>8} {'PINGs answered':>14} {'closed':>6} {'asked again (400)':>17} "
             f"{'turned away':>11}"]
    for r in rows:
        lines.append(f"{r.scenario:<28} {r.server:<22} {r.clients:>7} {r.register_s:>12.1f} "
                     f"{r.registrations_per_s:>6.0f} {r.join_s:>8.1f} {r.pings:>14} {r.closed:>6} "
                     f"{r.retries:>17} {r.turned_away:>11}")
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


#: The scenarios that measure deliveries, in the order they run.
DELIVERY_KINDS = ("rooms", "hall", "capacity", "bighall")


def shapes(wanted: list[str], args: argparse.Namespace) -> list[Shape]:
    """The delivery scenarios asked for, each with its defaults where a flag was not given.

    With `--curve`, one per replica count (and per round, `curve_order`); with `--scaled-load`
    too, N replicas get N times the rooms and the messages, each its own share as N hosts would
    (rooms and capacity only).
    With `--window K`, a closed loop: K messages a replica await their echo at once."""
    tail = (" no-names" if args.no_implicit_names else "") + (" tls" if args.tls else "")
    tail += f" w{args.window}" if args.window else ""
    held = f" q{args.quota:g}" if args.quota else ""
    scaled: bool = args.scaled_load
    out = []
    for kind in (k for k in DELIVERY_KINDS if k in wanted):
        if kind in ("rooms", "capacity"):
            clients = args.clients or (1000 if kind == "rooms" else 100_000)
            rooms, size, rate = max(1, clients // args.room), args.room, args.rate
        else:
            rooms, size = 1, args.hall or (500 if kind == "hall" else 7000)
            rate = args.hall_rate or (10 if kind == "hall" else 5)
        big = kind in ("capacity", "bighall")
        replicas = args.replicas or (max(2, math.ceil(rooms * size / PER_REPLICA)) if big else 2)
        for count in curve_order(args.curve, args.rounds) if args.curve else [replicas]:
            times = count if scaled else 1
            label = f"{kind} {rooms * times}x{size} @{rate * times:g}/s{tail}{held}"
            # A curve's rows differ by their replicas (and load) only: the label says how many.
            label += f" N={count}" if args.curve else ""
            workers = max(args.workers, math.ceil(rooms * times * size / PER_WORKER))
            out.append(Shape(kind, label, rooms * times, size, rate * times, count, workers,
                             window=args.window * count))
    return out


def holds(server: str) -> int:
    """How many clients a peer can take here: one process's open files, twice for InspIRCd's
    two linked servers; ours is not limited (it adds replicas)."""
    return {"ngircd": client_limit(), "inspircd": 2 * client_limit()}.get(server, 1 << 62)


def curve_result(rows: list[Row], quota: float, scaled: bool = False, replica_cpus: str = "") -> str:
    """One scenario's rows at N = 1, 2, 4... replicas: deliveries/s at each, and the scaling
    efficiency (deliveries/s at N over N times those at 1) where N = 1 ran. Over several rounds
    (`--rounds`), each count's figure is the median of its runs, the efficiency that of the
    medians, and `efficiency_<n>_runs` gives each round's own (its k-th run of N against its
    k-th run of 1). `replica_cpus`: the CPUs the replicas were pinned to (`--pin`), if they were."""
    by_count: dict[int, list[float]] = {}
    for r in rows:
        by_count.setdefault(len(r.replicas), []).append(r.deliveries_per_s)
    medians = {n: statistics.median(runs) for n, runs in sorted(by_count.items())}
    fields = [f"curve={rows[0].scenario.split()[0]}", f"quota_cores={quota:g}"]
    fields += ["scaled_load=yes"] if scaled else []
    fields += [f"replica_cpus={replica_cpus}"] if replica_cpus else []
    rounds = max(len(runs) for runs in by_count.values())
    fields += [f"rounds={rounds}"] if rounds > 1 else []
    fields += [f"deliveries_per_s_{n}={rate:.0f}" for n, rate in medians.items()]
    if medians.get(1):
        fields += [f"efficiency_{n}={rate / (n * medians[1]):.2f}" for n, rate in medians.items() if n > 1]
        if rounds > 1:
            ones = by_count[1]
            for n, runs in sorted(by_count.items()):
                if n > 1:
                    each = each_round(runs, ones, n)
                    fields.append(f"efficiency_{n}_runs=" + ",".join(f"{e:.2f}" for e in each))
    fields.append(f"lost={sum(r.lost for r in rows)}")
    return "RESULT " + " ".join(fields)


def _by_server(rows: list[Row]) -> tuple[list[Row], list[Row], list[Row]]:
    """Ours, ngIRCd's and InspIRCd's rows."""
    def of(name: str) -> list[Row]:
        return [r for r in rows if r.server.startswith(name)]
    return of("canaduck"), of("ngIRCd"), of("InspIRCd")


def _lag_field(rows: list[Row]) -> list[str]:
    lags = [x.lag_p99_ms for r in rows for x in r.replicas if not math.isnan(x.lag_p99_ms)]
    return [f"loop_lag_p99_ms={max(lags):g}"] if lags else []


def delivery_result(rows: list[Row]) -> str:
    """The rooms and hall scenarios' RESULT line: ours, and the peers' beside."""
    ours, peer, linked = _by_server(rows)
    fields = []
    if ours:
        fields += [f"irc_p50_ms={max(r.p50 for r in ours):.2f}", f"irc_p99_ms={max(r.p99 for r in ours):.2f}",
                   f"deliveries_per_s={ours[0].deliveries_per_s:.0f}", f"lost={sum(r.lost for r in ours)}"]
        fields += _lag_field(ours)
    if peer:
        fields += [f"ngircd_p99_ms={max(r.p99 for r in peer):.2f}",
                   f"ngircd_lost={sum(r.lost for r in peer)}"]
    if ours and peer:
        fields.append(f"p99_ratio_to_ngircd={max(r.p99 for r in ours) / max(r.p99 for r in peer):.2f}")
    if linked:
        fields += [f"inspircd_p99_ms={max(r.p99 for r in linked):.2f}",
                   f"inspircd_cross_p99_ms={max(r.cross_p99 for r in linked):.2f}",
                   f"inspircd_lost={sum(r.lost for r in linked)}"]
    return "RESULT " + " ".join(fields)


def _per_server(rows: list[Row], fields: Callable[[Row], list[str]], ours: Callable[[Row], list[str]]) -> str:
    """A RESULT line of one row per server: `fields` of each row, named as they are for ours
    and with `ngircd_` or `inspircd_` before them for the peers', and `ours` after our row's."""
    out = []
    for prefix, found in zip(("", "ngircd_", "inspircd_"), _by_server(rows), strict=True):
        for r in found:
            out += [prefix + field for field in fields(r)]
            if not prefix:
                out += ours(r)
    return "RESULT " + " ".join(out)


def capacity_result(rows: list[Row]) -> str:
    """The capacity scenario's RESULT line (the peers' where they could hold the clients)."""
    return _per_server(rows, lambda r: [
        f"capacity_clients={r.clients}", f"kib_per_conn={r.kib_per_conn:.1f}", f"capacity_p99_ms={r.p99:.2f}",
        f"registrations_per_s={r.registrations_per_s:.0f}", f"lost={r.lost}", f"pings_answered={r.pings}",
        f"closed={r.closed}", f"asked_again={r.retries}", f"turned_away={r.turned_away}",
    ], lambda r: [f"replicas={len(r.replicas)}", *_lag_field([r])])


def bighall_result(rows: list[Row]) -> str:
    """The big channel's RESULT line: ours, and the peers' beside."""
    return _per_server(rows, lambda r: [
        f"bighall_members={r.clients}", f"bighall_p99_ms={r.p99:.2f}",
        f"bighall_kib_per_conn={r.kib_per_conn:.1f}", f"bighall_join_s={r.join_s:.1f}", f"lost={r.lost}",
    ], lambda r: _lag_field([r]))
