"""A primary of the Valkey Cluster killed under load, and what happens meanwhile.

The local stack runs on a cluster (`LocalStack(cluster=True)`, i.e. `scripts/up --cluster`);
chaos's mixed request loop goes through Caddy; the primary that owns a chosen key's slot (by
default `canaduck:services`, the directory's index, which every instance's heartbeat writes)
is SIGKILLed and held down. Two probes watch the cluster itself: one reads the key every 20 ms
through a cluster client (the slot is unavailable until a read succeeds again), one asks the
other nodes when a replica has been promoted. After `after` seconds the killed node is let
back: it rejoins as a replica of its successor. Every joke acknowledged during the run is read
back at the end: replication is asynchronous, so a failover may lose writes the old primary
had acknowledged.

`run_failover()` does it all and returns a FailoverReport (`unavailable_s` is what
`scripts/cluster-failover` prints as `failover_unavailable_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from scripts.devkit.chaos import Load, missing_writes, routes
from scripts.devkit.localstack import LocalStack
from scripts.devkit.stats import percentile
from scripts.devkit.waiting import eventually

INSPECTOR = ("inspector", "dev-only-inspector")


def _cluster_client(port: int) -> redis.RedisCluster:
    user, password = INSPECTOR
    return redis.RedisCluster(host="127.0.0.1", port=port, username=user, password=password,
                              decode_responses=True, socket_timeout=1, socket_connect_timeout=1)


def _node_client(port: int) -> redis.Redis:
    user, password = INSPECTOR
    return redis.Redis(host="127.0.0.1", port=port, username=user, password=password,
                       decode_responses=True, socket_timeout=1, socket_connect_timeout=1)


def slot_owner(port: int, key: str) -> int:
    """The port of the primary serving `key`'s slot now."""
    client = _cluster_client(port)
    try:
        node = client.get_node_from_key(key)
        return int(node.port)
    finally:
        client.close()


def promoted(ports: list[int], killed: int, key: str) -> bool:
    """True once a node other than `killed` says it serves `key`'s slot as a primary."""
    slot = redis.crc.key_slot(key.encode())
    for port in ports:
        if port == killed:
            continue
        with contextlib.closing(_node_client(port)) as client:
            try:
                for first, last, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if first <= slot <= last and int(primary[1]) != killed:
                        return True
            except redis.RedisError:
                continue
    return False


@dataclass
class Probe:
    """Reads `key` through a cluster client in a loop; records (monotonic time, ok)."""

    port: int
    key: str
    interval: float = 0.02
    samples: list[tuple[float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = _cluster_client(self.port)
        try:
            while not self._stop.is_set():
                try:
                    client.exists(self.key)
                    ok = True
                except (redis.RedisError, OSError):
                    ok = False
                self.samples.append((time.monotonic(), ok))
                time.sleep(self.interval)
        finally:
            client.close()

    def stop(self) -> None:
        self._stop.set()

    def back_after(self, killed_at: float) -> float | None:
        """Seconds from the kill to the first successful read that followed a failed one
        (0.0 if no read ever failed; None if none succeeded again)."""
        failed = False
        for at, ok in self.samples:
            if at < killed_at:
                continue
            if not ok:
                failed = True
            elif failed:
                return at - killed_at
        return 0.0 if not failed else None


@dataclass
class RouteOutcome:
    """What one route did around the failover."""

    route: str
    requests: int
    failed: int
    statuses: Counter[int]
    first_failure_s: float | None
    last_failure_s: float | None
    p99_ms: float


@dataclass
class FailoverReport:
    killed: str
    killed_port: int
    key: str
    promoted_s: float | None
    unavailable_s: float | None
    rejoined_s: float | None
    outcomes: list[RouteOutcome]
    acknowledged_jokes: int
    lost_jokes: int
    load_average: str
    #: From the stack's log: instances whose heartbeat failed, then came back; processes other
    #: than the nodes that were restarted (a crash) during the run.
    heartbeats_lost: list[str] = field(default_factory=list)
    heartbeats_back: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(o.requests for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outcomes)

    def table(self) -> str:
        lines = [f"{'route':<16} {'requests':>8} {'failed':>6} {'first fail s':>12} {'last fail s':>11} "
                 f"{'p99 ms':>8}  answers"]
        for o in self.outcomes:
            answers = ", ".join(f"{status or 'none'} x{n}" for status, n in sorted(o.statuses.items()))
            first = "-" if o.first_failure_s is None else f"{o.first_failure_s:.2f}"
            last = "-" if o.last_failure_s is None else f"{o.last_failure_s:.2f}"
            lines.append(f"{o.route:<16} {o.requests:>8} {o.failed:>6} {first:>12} {last:>11} "
                         f"{o.p99_ms:>8.0f}  {answers}")
        return "\n".join(lines)

    def result(self) -> str:
        def fmt(value: float | None) -> str:
            return "none" if value is None else f"{value:.2f}"

        return (f"RESULT failover_unavailable_s={fmt(self.unavailable_s)} promoted_s={fmt(self.promoted_s)} "
                f"requests={self.requests} failed={self.failed} "
                f"lost_acknowledged_writes={self.lost_jokes}/{self.acknowledged_jokes}")


def outcomes(load: Load, killed_at: float) -> list[RouteOutcome]:
    """Per route: its requests from the kill on, and when the failures came (s after the kill)."""
    found = []
    for route in dict.fromkeys(s.route for s in load.samples):
        samples = [s for s in load.samples if s.route == route and s.ended >= killed_at]
        failures = [s for s in samples if not s.ok]
        found.append(RouteOutcome(
            route, len(samples), len(failures), Counter(s.status for s in samples),
            min((s.started - killed_at for s in failures), default=None),
            max((s.ended - killed_at for s in failures), default=None),
            percentile([s.seconds * 1000 for s in samples], 99) or 0.0,
        ))
    return found


async def _under_load(stack: LocalStack, *, key: str, warmup: float, after: float, settle: float,
                      workers: int, say: Callable[[str], None]) -> FailoverReport:
    ports = [stack.redis_port + i for i in range(6)]
    load = Load(stack.url, routes(uuid.uuid4().hex[:6], chat=False), workers=workers, pause=0.02,
                timeout=15)
    running = asyncio.create_task(load.run())
    owner = slot_owner(stack.redis_port, key)
    name = f"redis-{ports.index(owner) + 1}"
    probe = Probe(next(p for p in ports if p != owner), key)
    probing = threading.Thread(target=probe.run, daemon=True)
    probing.start()
    await asyncio.sleep(warmup)
    say(f"killing {name} (port {owner}), the primary of {key}'s slot, under {workers} request loops")
    killed_at = time.monotonic()
    stack.hold_down(name)
    promoted_s = None
    if await asyncio.to_thread(eventually, lambda: promoted(ports, owner, key), 30, 0.05):
        promoted_s = time.monotonic() - killed_at
        say(f"a replica serves the slot {promoted_s:.2f} s after the kill")
    await asyncio.sleep(max(0.0, after - (time.monotonic() - killed_at)))
    stack.release(name)
    rejoined_s = None
    node = _node_client(owner)
    try:
        if await asyncio.to_thread(eventually, lambda: _is_replica(node), 30, 0.1):
            rejoined_s = time.monotonic() - killed_at
            say(f"{name} came back as a replica {rejoined_s:.2f} s after the kill")
    finally:
        node.close()
    await asyncio.sleep(settle)
    load.stop()
    await running
    probe.stop()
    probing.join(5)
    lost = await asyncio.to_thread(missing_writes, stack.url, load.written, [])
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    log = stack.log()
    return FailoverReport(name, owner, key, promoted_s, probe.back_after(killed_at), rejoined_s,
                          outcomes(load, killed_at), len(load.written), len(lost), load_average,
                          _instances(log, "heartbeat failed"), _instances(log, "Redis is back after"),
                          sorted({proc for proc in re.findall(r"(\S+)\s+\| killed \(exit", log)
                                  if not proc.startswith("redis")}))


def _instances(log: str, needle: str) -> list[str]:
    """The processes (honcho's names) with a log line containing `needle`."""
    return sorted({line.split("|", 1)[0].split()[-1] for line in log.splitlines()
                   if needle in line and "|" in line})


def _is_replica(client: redis.Redis) -> bool:
    try:
        return client.info("replication").get("role") == "slave"
    except redis.RedisError:
        return False


def run_failover(*, key: str = "canaduck:services", warmup: float = 5.0, after: float = 15.0,
                 settle: float = 5.0, workers: int = 4,
                 say: Callable[[str], None] = lambda line: print(line, flush=True)) -> FailoverReport:
    """Start the local stack on a cluster, kill the primary of `key`'s slot under load, report."""
    stack = LocalStack(cluster=True)
    say(f"starting the local stack on a Valkey Cluster (nodes on ports {stack.redis_port}-"
        f"{stack.redis_port + 5})")
    stack.start(timeout=180)
    say(f"ready in {stack.ready_seconds:.1f} s")
    try:
        return asyncio.run(_under_load(stack, key=key, warmup=warmup, after=after, settle=settle,
                                       workers=workers, say=say))
    finally:
        stack.stop()
