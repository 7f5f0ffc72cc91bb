"""A primary of the Valkey Cluster killed under load: how long its slots are unavailable, and
what every route through Caddy answers meanwhile.

    scripts/cluster-failover                         # the primary of canaduck:services
    scripts/cluster-failover --key canaduck:jokes    # the primary holding the jokes (data)
    scripts/cluster-failover --after 20 --workers 8

Starts the local stack on a cluster (3 primaries, 3 replicas, node timeout 2 s), runs chaos's
mixed request loop (GET /fullinfo, /sum, /mult, /rally; POST /messages, /jokes), SIGKILLs the
primary serving `--key`'s slot and holds it down for `--after` s, then lets it rejoin (as a
replica). Prints a table per route (failures and answers from the kill on, in seconds after
it), then last:

    RESULT failover_unavailable_s=<s> promoted_s=<s> requests=<n> failed=<n>
           lost_acknowledged_writes=<lost>/<acknowledged>          (one line)

`failover_unavailable_s`: from the kill to the first successful read of the key through a
cluster client; `promoted_s`: until another node serves the slot (the cluster's own view);
`lost_acknowledged_writes`: jokes answered 201 that cannot be read back at the end.
"""

from __future__ import annotations

import argparse
import sys

from scripts.devkit.failover import run_failover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster-failover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", default="canaduck:services", help="the key whose primary is killed")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before the kill")
    parser.add_argument("--after", type=float, default=15, help="seconds the killed primary stays down")
    parser.add_argument("--settle", type=float, default=5, help="seconds of load after it rejoined")
    parser.add_argument("--workers", type=int, default=4, help="concurrent request loops")
    args = parser.parse_args(argv)
    report = run_failover(key=args.key, warmup=args.warmup, after=args.after, settle=args.settle,
                          workers=args.workers)
    print(f"\nfrom the kill of {report.killed} (port {report.killed_port}, primary of {report.key}), "
          f"load average {report.load_average}:")
    print(report.table())
    print(f"acknowledged jokes lost: {report.lost_jokes} of {report.acknowledged_jokes}")
    print(f"heartbeat failed, then came back: {', '.join(report.heartbeats_lost) or 'none'}; "
          f"back: {', '.join(report.heartbeats_back) or 'none'}")
    print(f"service processes restarted: {', '.join(report.restarted) or 'none'}")
    print(report.result(), flush=True)
    return 0 if report.unavailable_s is not None else 1


if __name__ == "__main__":
    sys.exit(main())
