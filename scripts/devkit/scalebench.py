"""`scripts/bench-scale`'s rows and report: what one route measured at N replicas, each N's
median over the rounds (`--rounds`), the scaling efficiencies and the table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from scripts.devkit.curves import each_round
from scripts.devkit.loadgen import Result

#: The groups of processes whose CPU is shown, by instance-name prefix.
GROUPS = ("caddy", "calc", "aggregator", "weather", "jokes", "redis", "loadgen")


@dataclass
class Row:
    """One route loaded at `replicas` replicas: its requests, and the CPU each group of
    processes used meanwhile."""

    replicas: int
    route: str
    result: Result
    cpu: dict[str, float] = field(default_factory=dict)  # group -> share of one core
    per_replica: dict[str, list[float]] = field(default_factory=dict)
    load: str = ""
    concurrency: int = 0


def runs(rows: list[Row], route: str) -> dict[int, list[float]]:
    """Each replica count's req/s on `route`, one per round, in the order they ran."""
    found: dict[int, list[float]] = {}
    for row in rows:
        if row.route == route:
            found.setdefault(row.replicas, []).append(row.result.rps)
    return found


def efficiency(rows: list[Row], route: str, n: int) -> float:
    """Throughput at `n` replicas over `n` times throughput at 1, each the median of its
    rounds (nan where not measured)."""
    rps = {count: statistics.median(each) for count, each in runs(rows, route).items()}
    return rps[n] / (n * rps[1]) if n in rps and rps.get(1) else float("nan")


def efficiency_runs(rows: list[Row], route: str, n: int) -> list[float]:
    """Each round's own efficiency at `n` (`curves.each_round`)."""
    by_count = runs(rows, route)
    return each_round(by_count.get(n, []), by_count.get(1, []), n)


def table(rows: list[Row]) -> str:
    """Each run's line in the order they ran: req/s against the median of the fewest replicas'
    rounds, and (where N = 1 ran) that run's own efficiency; the CPU of each group."""
    head = (f"{'route':<10} {'N':>2} {'c':>4} {'req/s':>7} {'vs N=1':>6} {'eff.':>5} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'failed':>6}  "
            + " ".join(f"{g:>10}" for g in GROUPS) + "  load avg")
    lines = ["CPU: % of one core during the route, all replicas of the group together", head]
    fewest = min(r.replicas for r in rows)
    first = {route: statistics.median(each[fewest]) for route in {row.route for row in rows}
             if fewest in (each := runs(rows, route))}
    for row in rows:
        r = row.result
        # Against the median of the fewest replicas' rounds; the efficiency column, this run's own.
        ratio = r.rps / first[row.route] if first.get(row.route) else float("nan")
        own = ratio / row.replicas if fewest == 1 else float("nan")
        lines.append(f"{row.route:<10} {row.replicas:>2} {row.concurrency:>4} {r.rps:>7.0f} {ratio:>6.2f} "
                     f"{own:>5.2f} "
                     f"{r.percentile_ms(50):>7.1f} {r.percentile_ms(99):>7.1f} {r.failures:>6}  "
                     + " ".join(f"{row.cpu[g]:>10.0f}" for g in GROUPS) + f"  {row.load}")
    lines.append("")
    lines.append("per replica (% of a core): " + "; ".join(
        f"{row.route} x{row.replicas}: calc {'/'.join(f'{v:.0f}' for v in row.per_replica['calc'])}, "
        f"aggregator {'/'.join(f'{v:.0f}' for v in row.per_replica['aggregator'])}" for row in rows))
    return "\n".join(lines)
