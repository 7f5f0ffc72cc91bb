"""scripts/bench-scale's parts that need no stack (scripts/devkit/scalebench.py): a curve over
several rounds (each N's median, each round's own efficiency, the table) and the flags it
refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.devkit.loadgen import Result
from scripts.devkit.scalebench import GROUPS, Row, efficiency, efficiency_runs, table

ROOT = Path(__file__).resolve().parents[2]


def row(n: int, route: str, rps: int) -> Row:
    """A run of `route` at `n` replicas that answered `rps` requests in one second."""
    return Row(n, route, Result(f"{route} x{n}", latencies=[0.01] * rps, elapsed=1.0),
               cpu=dict.fromkeys(GROUPS, 0.0),
               per_replica={"calc": [15.0] * n, "aggregator": [0.0] * n}, concurrency=16 * n)


def test_a_curve_over_rounds_takes_each_counts_median_and_gives_each_rounds_own_efficiency():
    # Two rounds, in the order they ran: 1, 4, then 4, 1.
    rows = [row(1, "/sum", 200), row(4, "/sum", 720), row(4, "/sum", 880), row(1, "/sum", 240)]
    assert efficiency(rows, "/sum", 4) == pytest.approx(800 / (4 * 220))
    assert efficiency_runs(rows, "/sum", 4) == pytest.approx([720 / 800, 880 / 960])
    assert efficiency(rows, "/fullinfo", 4) != efficiency(rows, "/fullinfo", 4)  # not measured: nan
    lines = table(rows).splitlines()
    # Each run's line: its req/s over the median of N = 1's rounds, and that over N.
    assert lines[2].split()[:6] == ["/sum", "1", "16", "200", "0.91", "0.91"]
    assert lines[3].split()[:6] == ["/sum", "4", "64", "720", "3.27", "0.82"]


@pytest.mark.parametrize(("flags", "says"), [
    (["--rounds", "0"], "--rounds: a number of rounds, 1 or more"),
    (["--pin"], "--pin: with --quota, on the local runner"),
    (["--pin", "--quota", "0.15", "--swarm"], "--pin: with --quota, on the local runner"),
])
def test_bench_scale_refuses_what_it_cannot_run(flags: list[str], says: str):
    done = subprocess.run([sys.executable, "-m", "scripts.bench_scale", *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
