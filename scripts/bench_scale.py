"""Behind scripts/bench-scale: throughput and latency through Caddy with 1, 2 and 4 replicas.

For each N in --replicas (1 2 4), calc and the aggregator run N replicas each, then:
- `/sum` (calc: arithmetic, no Redis) and `/fullinfo` (the aggregator: a cached answer read
  from Redis, a few cities) are loaded through Caddy at a fixed concurrency over keep-alive
  connections, one route after the other (each N once per run: changing N costs a restart
  locally, a scaling on Swarm);
- the CPU each container (Swarm) or process (local runner) used during each route is read
  from /proc, as a share of one core, and the load generator's own, so a flat curve can be
  explained: the cores are shared by the load generator, Caddy, the replicas and whatever
  else runs on the machine.
Then the broker relay (messages per second through one broker) on one Redis and on a Valkey
Cluster, and a cluster primary killed under load (scripts/cluster-failover's measurement).

`--quota CORES` holds each calc and aggregator replica to CORES of CPU (a cgroup v1 `cpu`
group per process, scripts/devkit/cpuquota.py), as if each had a host of its own: N replicas
then get N times the CPU, and the scaling efficiency, throughput at N over N times throughput
at 1, says what the design does with it (the table's `eff.` column). Local runner only.
`--scaled-load` offers each N a load scaled to it, `--concurrency` requests in flight per
replica (N times as many in all), as N hosts would each get their share: with a fixed number
in flight, four replicas each wake up for a quarter of what one did, and pay their per-turn
costs four times as often. `--pin` (with `--quota`) keeps the replicas on CPUs of their own
and Caddy, Redis, the other services and the load generator on the others, the same at every
N (`cpuquota.cpu_layout`). `--rounds R` runs the curve R times, back and forth (1 2 4, then 4 2
1...): each N's req/s and p99 are the medians of its rounds, the efficiencies those of the medians.

`--swarm` runs on Docker Swarm (`scripts/swarm`'s stack, deployed for the run and removed
after, its own stack name and port); the default is the local runner (`scripts/up --scale`).
Last line: `RESULT sum_rps_1=.. sum_rps_2=.. sum_rps_4=.. p99_ms_1=.. p99_ms_4=..
failover_unavailable_s=..`, and with `--quota`, `quota_cores=.. sum_efficiency_2=..
sum_efficiency_4=.. fullinfo_efficiency_2=.. fullinfo_efficiency_4=..`, then `replica_cpus=..`
with `--pin` and, over several rounds, `rounds=..` and each round's own
`sum_efficiency_4_runs=..` and the like (p99 of /sum; the
failover figure: seconds from the kill of the primary serving the slot of the directory's
index to the first read that succeeds again).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.devkit.broker_relay import broker_alone
from scripts.devkit.cpuquota import CpuQuotas, available, cpu_list, pin, step_aside
from scripts.devkit.curves import curve_order
from scripts.devkit.failover import run_failover
from scripts.devkit.loadgen import Result, run
from scripts.devkit.localstack import LocalStack
from scripts.devkit.processes import free_port
from scripts.devkit.redis_cluster import ValkeyCluster
from scripts.devkit.redis_server import RedisServer
from scripts.devkit.scalebench import GROUPS, Row, efficiency, efficiency_runs, table
from scripts.devkit.scaling import SUM_PATH, wait_for_instances
from scripts.devkit.swarm import SwarmStack, engine_available

CITIES = ("Rodez", "Albi", "Millau", "Figeac")
SCALED = ("calc", "aggregator")


def phase(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {what}", flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (those gone count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass
class Target:
    """Where the load goes and whose CPU is read: name -> the pids of one container/process."""

    port: int
    processes: Callable[[], dict[str, list[int]]]


def measure(target: Target, replicas: int, route: str, path: Callable[[], str], seconds: float,
            concurrency: int) -> Row:
    """Load `route` for `seconds` and read every process's CPU around it."""
    processes = target.processes()
    before = {name: cpu_seconds(pids) for name, pids in processes.items()}
    own = time.process_time()
    result = asyncio.run(run(f"{route} x{replicas}", "127.0.0.1", target.port, path,
                             requests=10**9, concurrency=concurrency, max_seconds=seconds))
    used = {name: cpu_seconds(pids) - before[name] for name, pids in processes.items()}
    used["loadgen"] = time.process_time() - own
    row = Row(replicas, route, result, load=load_average(), concurrency=concurrency)
    for group in GROUPS:
        shares = [used[name] / result.elapsed * 100 for name in sorted(used)
                  if name == group or name.startswith(f"{group}-")]
        row.cpu[group] = sum(shares)
        row.per_replica[group] = shares
    return row


# -- the two runners -----------------------------------------------------------------------------

def swarm_processes(stack: SwarmStack) -> dict[str, list[int]]:
    """Each container of the stack (named `<service>-<slot>`) -> the host pids inside it."""
    namespace = f"label=com.docker.stack.namespace={stack.name}"
    out = subprocess.run(["docker", "ps", "--filter", namespace, "--format", "{{.ID}} {{.Names}}"],
                         capture_output=True, text=True, timeout=60).stdout
    found: dict[str, list[int]] = {}
    for line in out.splitlines():
        container, _, name = line.partition(" ")
        service, _, slot = name.removeprefix(f"{stack.name}_").partition(".")
        label = "caddy" if service == "proxy" else service
        top = subprocess.run(["docker", "top", container, "-eo", "pid"], capture_output=True, text=True,
                             timeout=60).stdout.split()[1:]
        found[f"{label}-{slot.split('.')[0]}"] = [int(pid) for pid in top if pid.isdigit()]
    return found


def local_processes(stack: LocalStack) -> dict[str, list[int]]:
    """Each process of the local stack (honcho's names: calc-1, caddy, redis...) -> its pid."""
    found: dict[str, list[int]] = {}
    for proc in dict.fromkeys(re.findall(r"\| (\S+) started \(pid=\d+\)", stack.log())):
        try:
            found[proc] = [stack.service_pid(proc)]
        except (LookupError, OSError):
            try:
                found[proc] = [stack.wrapper_pid(proc)]
            except LookupError:
                continue
    return found


def warm(port: int, replicas: int) -> None:
    """Every replica routed (each answers /sum), every city's /fullinfo cached."""
    base = f"http://127.0.0.1:{port}"
    wait_for_instances(base, SUM_PATH, replicas, timeout=120)
    for city in CITIES:
        for _ in range(3):
            httpx.get(f"{base}/fullinfo?city={city}", timeout=10)


def offered(args: argparse.Namespace, replicas: int) -> int:
    """Requests in flight at `replicas` replicas: the same at every N, or N times
    `--concurrency` with `--scaled-load`."""
    return args.concurrency * replicas if args.scaled_load else args.concurrency


def bench_replicas(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    cities = itertools.cycle(CITIES)

    def routes(target: Target, n: int) -> None:
        warm(target.port, n)
        paths: list[tuple[str, Callable[[], str]]] = [
            ("/sum", lambda: SUM_PATH), ("/fullinfo", lambda: f"/fullinfo?city={next(cities)}")]
        concurrency = offered(args, n)
        for route, path in paths:
            phase(f"{route}: {n} calc and {n} aggregator replicas, c={concurrency}, {args.seconds:g} s")
            rows.append(measure(target, n, route, path, args.seconds, concurrency))

    if args.swarm:
        stack = SwarmStack(name="canaduck-bench", http_port=free_port())
        phase(f"swarm: deploying stack {stack.name} on :{stack.http_port}")
        try:
            stack.up(build=not args.no_build)
            target = Target(stack.http_port, lambda: swarm_processes(stack))
            for n in curve_order(args.replicas, args.rounds):
                for service in SCALED:
                    stack.scale_to(service, n, wait=False)
                stack.wait_ready()
                routes(target, n)
        finally:
            phase("swarm: removing the stack")
            stack.down()
    else:
        for n in curve_order(args.replicas, args.rounds):
            phase(f"local runner: scripts/up --scale calc={n},aggregator={n}")
            local = LocalStack(CANADUCK_SCALE=",".join(f"{s}={n}" for s in SCALED)).start(timeout=180)
            quotas = CpuQuotas(args.quota) if args.quota else None
            try:
                if quotas is not None:
                    for name, pids in local_processes(local).items():
                        if name.split("-")[0] in SCALED:
                            quotas.hold(name, pids)
                            for pid in pids if args.pin else ():
                                pin(pid, args.replica_cpus)
                routes(Target(local.http_port, functools.partial(local_processes, local)), n)
            finally:
                if quotas is not None:
                    quotas.release()
                local.stop()
    return rows


# -- the broker relay and the cluster's failover ----------------------------------------------------

def broker_relay(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Relayed messages per second through one broker, on one Redis and on a Valkey Cluster
    (3 primaries, 3 replicas), in the same run."""
    lines = []
    for name, target in (("one Redis", RedisServer), ("Valkey Cluster 3+3", ValkeyCluster)):
        phase(f"broker relay on {name}")
        server = target().start()
        try:
            relay = broker_alone(server, senders=2, per_sender=args.relay_messages, batch=128)
        finally:
            server.stop()
        lines.append((name, f"{relay['per_s']:,.0f} msg/s ({relay['messages']} messages, batch 128, "
                            f"{relay['undeliverable']} undeliverable, {relay['errors']} errors)"))
    return lines


def failover_unavailable() -> str:
    """Seconds a key's slot could not be read while its cluster primary was killed under load
    (the local stack on a cluster, as scripts/cluster-failover measures it)."""
    phase("cluster: a primary killed under load (the cluster-failover measurement)")
    report = run_failover(after=8, settle=3, say=phase)
    return "never_back" if report.unavailable_s is None else f"{float(report.unavailable_s):.2f}"


# -- report ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swarm", action="store_true", help="on Docker Swarm (default: the local runner)")
    parser.add_argument("--no-build", action="store_true", help="Swarm: use the images already built")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per route and N")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="requests in flight (per replica with --scaled-load)")
    parser.add_argument("--scaled-load", action="store_true",
                        help="offer N replicas N times --concurrency, as N hosts would each get their share")
    parser.add_argument("--relay-messages", type=int, default=20000, help="per sender, broker relay")
    parser.add_argument("--quota", type=float, default=0.0,
                        help="cores of CPU each calc and aggregator replica may use (default: no quota)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the curve this many times, every other round in reverse order (1 2 4, "
                             "then 4 2 1...); each N's req/s is the median of its rounds (default 1)")
    parser.add_argument("--pin", action="store_true",
                        help="with --quota: the replicas on the machine's last CPU(s), as many as their "
                             "quotas add up to at the largest N, everything else on the others")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        print("scripts/bench-scale --rounds: a number of rounds, 1 or more", file=sys.stderr)
        return 2
    if args.pin and (not args.quota or args.swarm):
        print("scripts/bench-scale --pin: with --quota, on the local runner", file=sys.stderr)
        return 2
    if args.quota and (args.swarm or (reason := available())):
        why = "local runner only (on Swarm: deploy.resources.limits.cpus)" if args.swarm else reason
        print(f"scripts/bench-scale --quota: {why}", file=sys.stderr)
        return 2
    if args.swarm and (reason := engine_available()):
        print(f"scripts/bench-scale --swarm: {reason}", file=sys.stderr)
        return 2
    everywhere = os.sched_getaffinity(0)
    if args.pin:
        try:
            # One route is loaded at a time: N replicas of one service are busy at once.
            args.replica_cpus, others = step_aside(max(args.replicas) * args.quota)
        except ValueError as exc:
            print(f"scripts/bench-scale --pin: {exc}", file=sys.stderr)
            return 2
        phase(f"--pin: the replicas on CPU {cpu_list(args.replica_cpus)}, the rest on CPU {cpu_list(others)}")
    phase(f"load average {load_average()} on {os.cpu_count()} cores")
    rows = bench_replicas(args)
    os.sched_setaffinity(0, everywhere)  # the relay and the failover below are not about replicas
    relay = broker_relay(args)
    failover = failover_unavailable()
    print()
    held = f", each replica held to {args.quota:g} core(s)" if args.quota else ""
    print(f"{'swarm' if args.swarm else 'local runner'}: calc and aggregator at 1, 2 and 4 replicas{held}; "
          f"c={args.concurrency}{' per replica' if args.scaled_load else ''}, {args.seconds:g} s per route")
    print(table(rows))
    print()
    for name, figure in relay:
        print(f"broker relay, {name}: {figure}")
    print(f"cluster failover, writes unavailable: {failover} s")
    sums: dict[int, list[Result]] = {}
    for row in rows:
        if row.route == "/sum":
            sums.setdefault(row.replicas, []).append(row.result)

    def rps(n: int) -> str:
        return f"{statistics.median(r.rps for r in sums[n]):.0f}" if n in sums else "not_measured"

    def p99(n: int) -> str:
        if n not in sums:
            return "not_measured"
        return f"{statistics.median(r.percentile_ms(99) for r in sums[n]):.1f}"

    quota = ""
    if args.quota:
        quota = f" quota_cores={args.quota:g} scaled_load={'yes' if args.scaled_load else 'no'}" + "".join(
            f" {route.strip('/')}_efficiency_{n}={efficiency(rows, route, n):.2f}"
            for route in ("/sum", "/fullinfo") for n in (2, 4))
        quota += f" replica_cpus={cpu_list(args.replica_cpus)}" if args.pin else ""
        if args.rounds > 1:
            quota += f" rounds={args.rounds}" + "".join(
                f" {route.strip('/')}_efficiency_{n}_runs=" + ",".join(
                    f"{e:.2f}" for e in efficiency_runs(rows, route, n))
                for route in ("/sum", "/fullinfo") for n in (2, 4) if efficiency_runs(rows, route, n))
    print(f"RESULT sum_rps_1={rps(1)} sum_rps_2={rps(2)} sum_rps_4={rps(4)} p99_ms_1={p99(1)} "
          f"p99_ms_4={p99(4)} failover_unavailable_s={failover}{quota}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
