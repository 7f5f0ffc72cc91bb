"""Benchmark of /fullinfo through Caddy: hot cache, cold cache (distinct cities), and baselines.

Starts its own local stack on free ports (scripts.devkit's LocalStack: embedded Redis, every
service, Caddy), plus one more Caddy on a free port whose config is the project's Caddyfile
with one extra route, `/baseline`, proxied with the same options to the aggregator's trivial
`/health` route: the same gateway, the same server stack, without any of the work. Services
log at WARNING so that no route pays for access lines.

The second baseline is the course's recipe (scripts/recipe: three Flask apps on Werkzeug's
server calling each other with `requests.get`, no cache), started here too and asked
directly, without a gateway, with the same distinct cities: every request is a miss there.
Every row runs at the same concurrency, interleaved; the cold rows run again one request at
a time.
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

from scripts.devkit import manifest
from scripts.devkit.loadgen import Result, run
from scripts.devkit.localstack import LocalStack
from scripts.devkit.processes import ROOT, free_port, scratch_dir, stop_process
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
    services = manifest.load()
    instances = manifest.plan(services, stack.port_base)
    env = {k: v for k, v in os.environ.items() if k != "CADDY_ADMIN"}
    env.update(manifest.proxy_environment(services, instances, port))
    # The baseline route goes straight to the aggregator, as the stack's Caddy would.
    aggregator = next(i for i in instances if i.spec.service_name == "aggregator")
    env["AGGREGATOR_UPSTREAM"] = f"127.0.0.1:{aggregator.port}"
    return subprocess.Popen(["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


RECIPE_APPS = ("weather", "jokes", "aggregator")


def start_recipe(workdir: Path) -> tuple[int, dict[str, subprocess.Popen]]:
    """The course's recipe on free ports: (the aggregator's port, the processes by name)."""
    ports = {name: free_port() for name in RECIPE_APPS}
    env = {**os.environ, "WEATHER_URL": f"http://127.0.0.1:{ports['weather']}",
           "JOKES_URL": f"http://127.0.0.1:{ports['jokes']}"}
    procs = {}
    for name in RECIPE_APPS:
        with open(workdir / f"recipe-{name}.log", "wb") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", f"scripts.recipe.{name}"], env={**env, "PORT": str(ports[name])},
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return ports["aggregator"], procs


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _get_ok(port: int, path: str) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class CpuMeter:
    """CPU seconds used by the services' processes (from /proc): a figure that, unlike req/s,
    hardly moves when something else loads the machine."""

    PROCS = ("aggregator", "weather", "jokes", "caddy")

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {proc: pids[proc] for proc in self.PROCS if proc in pids}
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
        used = self.used.setdefault(name, dict.fromkeys(self.pids, 0.0))
        for proc in self.pids:
            used[proc] += after[proc] - before[proc]
        return result

    def ms_per_request(self, result: Result, proc: str) -> float:
        return self.used.get(result.name, {}).get(proc, 0.0) / max(1, result.ok) * 1000


async def measure(port: int, recipe_port: int, cpu: CpuMeter, recipe_cpu: CpuMeter) -> list[Result]:
    """Warm up, then ROUNDS interleaved rounds of baseline, hot, cold and the recipe, merged
    per route; last, the cold rows one request at a time: what a miss costs when nothing queues.

    Interleaving spreads any change in the machine's load over the rows alike.
    """
    host = "127.0.0.1"
    tag = f"{int(time.time())}"
    cold_cities = (f"/fullinfo?city=Bench-{tag}-{i}" for i in itertools.count())
    # Warm-up: connections, Caddy's pools, the hot key, the joke of the moment.
    print("warming up...", flush=True)
    await run("warm-up", host, port, itertools.repeat("/fullinfo?city=Rodez"),
              requests=500, concurrency=CONCURRENCY)
    await run("warm-up", host, port, itertools.repeat("/baseline"), requests=500, concurrency=CONCURRENCY)
    await run("warm-up", host, recipe_port, cold_cities, requests=100, concurrency=CONCURRENCY)
    rows = [  # (name, port, paths, requests per round, concurrency, CPU meter)
        ("baseline /health", port, itertools.repeat("/baseline"), REQUESTS, CONCURRENCY, cpu),
        ("fullinfo hot", port, itertools.repeat("/fullinfo?city=Rodez"), REQUESTS, CONCURRENCY, cpu),
        ("fullinfo cold", port, cold_cities, COLD_REQUESTS, CONCURRENCY, cpu),
        ("recipe cold", recipe_port, cold_cities, COLD_REQUESTS, CONCURRENCY, recipe_cpu),
        ("fullinfo cold, c=1", port, cold_cities, COLD_REQUESTS // 3, 1, cpu),
        ("recipe cold, c=1", recipe_port, cold_cities, COLD_REQUESTS // 3, 1, recipe_cpu),
    ]
    totals = [Result(name) for name, *_ in rows]
    for number in range(1, ROUNDS + 1):
        print(f"round {number}/{ROUNDS}: baseline, hot, cold, recipe, then each cold one at a time...",
              flush=True)
        for total, (name, at, paths, requests, concurrency, meter) in zip(totals, rows, strict=True):
            total.merge(await meter.around(name, run(name, host, at, paths, requests=requests // ROUNDS,
                                                     concurrency=concurrency)))
    return totals


def table(results: list[Result], baseline: Result, meters: dict[str, CpuMeter]) -> str:
    """One row per route; CPU columns per process (the recipe has no gateway: no caddy)."""
    lines = [f"{'route':<18} {'requests':>8} {'failed':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
             f" {'vs baseline':>11} {'cpu ms/req: aggregator':>23} {'weather':>7} {'jokes':>6} {'caddy':>6}"]
    for r in results:
        cpu = meters[r.name]
        lines.append(f"{r.name:<18} {r.ok:>8} {r.failures:>6} {r.rps:>8.0f} {r.percentile_ms(50):>7.2f}"
                     f" {r.percentile_ms(99):>7.2f} {r.rps / baseline.rps:>10.2f}x"
                     f" {cpu.ms_per_request(r, 'aggregator'):>23.3f}"
                     f" {cpu.ms_per_request(r, 'weather'):>7.3f} {cpu.ms_per_request(r, 'jokes'):>6.3f}"
                     f" {cpu.ms_per_request(r, 'caddy'):>6.3f}")
    return "\n".join(lines)


def main() -> int:
    workdir = scratch_dir("bench")
    load_before = load_average()
    print(f"load average {load_before}; starting a local stack and the course's recipe "
          f"(concurrency {CONCURRENCY}, through Caddy)...", flush=True)
    stack = LocalStack(LOG_LEVEL="WARNING").start()
    port = free_port()
    caddy = bench_caddy(stack, port, workdir)
    recipe_port, recipe = start_recipe(workdir)
    try:
        print(f"stack ready in {stack.ready_seconds:.1f} s; waiting for the bench's own Caddy and the recipe",
              flush=True)
        wait_until(lambda: _get_ok(port, "/baseline") and _get_ok(port, "/fullinfo?city=Rodez")
                   and _get_ok(recipe_port, "/fullinfo?city=Rodez"), timeout=30, interval=0.2)
        cpu = CpuMeter({**{proc: stack.service_pid(proc) for proc in RECIPE_APPS}, "caddy": caddy.pid})
        recipe_cpu = CpuMeter({name: proc.pid for name, proc in recipe.items()})
        results = asyncio.run(measure(port, recipe_port, cpu, recipe_cpu))
    finally:
        for proc in recipe.values():
            stop_process(proc)
        stop_process(caddy)
        stack.stop()
    baseline, hot, cold, recipe_cold, alone, recipe_alone = results
    meters = {r.name: recipe_cpu if r.name.startswith("recipe") else cpu for r in results}
    print(table(results, baseline, meters))
    for r in results:
        if r.failures:
            print(f"warning: {r.name}: {r.failures} failed requests, statuses {dict(r.statuses)}")
    print(f"load average: {load_before} at start, {load_average()} at the end")
    print(f"RESULT fullinfo_hot_rps={hot.rps:.0f} baseline_rps={baseline.rps:.0f} "
          f"hot_vs_baseline={hot.rps / baseline.rps:.2f} fullinfo_cold_p50_ms={cold.percentile_ms(50):.2f} "
          f"cold_rps={cold.rps:.0f} recipe_cold_rps={recipe_cold.rps:.0f} "
          f"cold_c1_p50_ms={alone.percentile_ms(50):.2f} "
          f"recipe_c1_p50_ms={recipe_alone.percentile_ms(50):.2f} "
          f"cold_vs_recipe={cold.rps / recipe_cold.rps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
