"""Benchmark of /fullinfo through Caddy: hot cache, cold cache (distinct cities), and a baseline.

Starts its own local stack on free ports (scripts.devkit's LocalStack: embedded Redis, every
service, Caddy), plus one more Caddy on a free port whose config is the project's Caddyfile
with one extra route, `/baseline`, proxied with the same options to the aggregator's trivial
`/health` route: the same gateway, the same server stack, without any of the work. All three
run at the same concurrency. Services log at WARNING so that no route pays for access lines.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

from scripts.devkit.loadgen import Result, run
from scripts.devkit.localstack import LocalStack
from scripts.devkit.processes import ROOT, free_port, scratch_dir, stop_process
from scripts.devkit.stack import SERVICES, StackSettings
from scripts.devkit.waiting import wait_until

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "6000"))
COLD_REQUESTS = int(os.environ.get("BENCH_COLD_REQUESTS", "3000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

BASELINE_ROUTE = """\
	handle /baseline {
		rewrite * /health
		reverse_proxy {$AGGREGATOR_UPSTREAM} {
			transport http {
				dial_timeout 1s
				response_header_timeout 5s
			}
		}
	}

"""


def bench_caddy(stack: LocalStack, port: int, workdir: Path) -> subprocess.Popen:
    """A Caddy with the project's routes plus /baseline, in front of the stack's services."""
    text = (ROOT / "proxy/Caddyfile").read_text()
    marker = "\t# Anything else is not ours"
    assert marker in text, "proxy/Caddyfile changed: update the bench's insertion point"
    config = workdir / "Caddyfile"
    config.write_text(text.replace(marker, BASELINE_ROUTE + marker, 1))
    settings = StackSettings(port_base=stack.port_base)
    env = {k: v for k, v in os.environ.items() if k != "CADDY_ADMIN"}
    env["CADDY_PORT"] = str(port)
    env.update({s.caddy_var: f"127.0.0.1:{s.port(settings)}" for s in SERVICES if s.caddy_var})
    return subprocess.Popen(["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _get_ok(port: int, path: str) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class CpuMeter:
    """CPU seconds used by the services' processes (from /proc): a figure that, unlike req/s,
    hardly moves when something else loads the machine."""

    PROCS = ("aggregator", "weather")

    def __init__(self, stack: LocalStack) -> None:
        self.pids = {proc: stack.service_pid(proc) for proc in self.PROCS}
        self.used: dict[str, dict[str, float]] = {}

    def _now(self) -> dict[str, float]:
        tick = os.sysconf("SC_CLK_TCK")
        seconds = {}
        for proc, pid in self.pids.items():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[proc] = (int(fields[11]) + int(fields[12])) / tick
        return seconds

    async def around(self, name: str, work: Awaitable[Result]) -> Result:
        before = self._now()
        result = await work
        after = self._now()
        used = self.used.setdefault(name, dict.fromkeys(self.PROCS, 0.0))
        for proc in self.PROCS:
            used[proc] += after[proc] - before[proc]
        return result

    def ms_per_request(self, result: Result, proc: str) -> float:
        return self.used.get(result.name, {}).get(proc, 0.0) / max(1, result.ok) * 1000


async def measure(port: int, cpu: CpuMeter) -> tuple[Result, Result, Result, Result]:
    """Warm up, then ROUNDS interleaved rounds of baseline, hot and cold, merged per route;
    last, cold requests one at a time: what a miss costs when nothing queues.

    Interleaving spreads any change in the machine's load over the three alike.
    """
    host = "127.0.0.1"
    tag = f"{int(time.time())}"
    cold_cities = (f"/fullinfo?city=Bench-{tag}-{i}" for i in itertools.count())
    # Warm-up: connections, Caddy's pools, the hot key, the joke of the moment.
    print("warming up...", flush=True)
    await run("warm-up", host, port, itertools.repeat("/fullinfo?city=Rodez"),
              requests=500, concurrency=CONCURRENCY)
    await run("warm-up", host, port, itertools.repeat("/baseline"), requests=500, concurrency=CONCURRENCY)
    totals = [Result("baseline /health"), Result("fullinfo hot"), Result("fullinfo cold")]
    for number in range(1, ROUNDS + 1):
        print(f"round {number}/{ROUNDS}: baseline, hot, cold...", flush=True)
        rounds = [
            await cpu.around(totals[0].name, run(
                "baseline", host, port, itertools.repeat("/baseline"),
                requests=REQUESTS // ROUNDS, concurrency=CONCURRENCY)),
            await cpu.around(totals[1].name, run(
                "hot", host, port, itertools.repeat("/fullinfo?city=Rodez"),
                requests=REQUESTS // ROUNDS, concurrency=CONCURRENCY)),
            await cpu.around(totals[2].name, run(
                "cold", host, port, cold_cities, requests=COLD_REQUESTS // ROUNDS,
                concurrency=CONCURRENCY)),
        ]
        for total, part in zip(totals, rounds, strict=True):
            total.merge(part)
    baseline, hot, cold = totals
    print("cold requests one at a time...", flush=True)
    alone = await cpu.around("fullinfo cold, c=1", run(
        "cold alone", host, port, cold_cities, requests=COLD_REQUESTS // ROUNDS, concurrency=1))
    alone.name = "fullinfo cold, c=1"
    return baseline, hot, cold, alone


def table(results: list[Result], baseline: Result, cpu: CpuMeter) -> str:
    lines = [f"{'route':<18} {'requests':>8} {'failed':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
             f" {'vs baseline':>11} {'cpu ms/req: aggregator':>23} {'weather':>7}"]
    for r in results:
        lines.append(f"{r.name:<18} {r.ok:>8} {r.failures:>6} {r.rps:>8.0f} {r.percentile_ms(50):>7.2f}"
                     f" {r.percentile_ms(99):>7.2f} {r.rps / baseline.rps:>10.2f}x"
                     f" {cpu.ms_per_request(r, 'aggregator'):>23.3f}"
                     f" {cpu.ms_per_request(r, 'weather'):>7.3f}")
    return "\n".join(lines)


def main() -> int:
    workdir = scratch_dir("bench")
    print(f"starting a local stack (concurrency {CONCURRENCY}, through Caddy)...", flush=True)
    stack = LocalStack(LOG_LEVEL="WARNING").start()
    port = free_port()
    caddy = bench_caddy(stack, port, workdir)
    try:
        print(f"stack ready in {stack.ready_seconds:.1f} s; starting the bench's own Caddy", flush=True)
        wait_until(lambda: _get_ok(port, "/baseline") and _get_ok(port, "/fullinfo?city=Rodez"),
                   timeout=30, interval=0.2)
        cpu = CpuMeter(stack)
        baseline, hot, cold, alone = asyncio.run(measure(port, cpu))
    finally:
        stop_process(caddy)
        stack.stop()
    print(table([baseline, hot, cold, alone], baseline, cpu))
    for r in (baseline, hot, cold, alone):
        if r.failures:
            print(f"warning: {r.name}: {r.failures} failed requests, statuses {dict(r.statuses)}")
    print(f"RESULT fullinfo_hot_rps={hot.rps:.0f} baseline_rps={baseline.rps:.0f} "
          f"hot_vs_baseline={hot.rps / baseline.rps:.2f} fullinfo_cold_p50_ms={cold.percentile_ms(50):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
