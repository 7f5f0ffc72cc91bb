"""What a crash of Redis can lose, and what closing the window would cost: redis/redis.conf's
append-only file with `appendfsync everysec` (the project's choice) against `always`.

For each policy: a fresh embedded server with redis/redis.conf, `--clients` connections each
writing one joke-sized HSET after the other (every write acknowledged before the next) for
`--seconds`, then SIGKILL of the server in the middle of the writes, a restart on the same
directory, and a count of the acknowledged writes that are missing. Prints a table and last

    RESULT everysec_writes_per_s=<n> always_writes_per_s=<n> always_vs_everysec=<x>
           lost_everysec=<n> lost_always=<n>      (one line)

A killed server loses nothing acknowledged under either policy (each write reaches the kernel
before its reply leaves); what `everysec` leaves open is a crash of the machine itself, which
loses the writes of the last second or so: the `writes_per_s` column says how many that is.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import redis
from scripts.devkit import RedisServer, stop_process

KEY = "canaduck:jokes"
TEXT = "Pourquoi les canards n'ont-ils pas de portefeuille ? Parce qu'ils ont déjà des plumes." * 2


def write_until_killed(server: RedisServer, clients: int, seconds: float) -> tuple[list[str], float]:
    """Acknowledged fields, and the write rate, of `clients` writers killed after `seconds`."""
    acked: list[list[str]] = [[] for _ in range(clients)]
    stop = threading.Event()

    def writer(n: int) -> None:
        client = redis.Redis.from_url(server.admin_url)
        i = 0
        while not stop.is_set():
            field = f"w{n}-{i}"
            try:
                client.hset(KEY, field, TEXT)
            except redis.RedisError:
                return  # the server is gone: this write was not acknowledged
            acked[n].append(field)
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    assert server.proc is not None
    stop_process(server.proc, signal.SIGKILL)  # the writers are still writing
    elapsed = time.monotonic() - began
    stop.set()
    for thread in threads:
        thread.join()
    fields = [f for per_client in acked for f in per_client]
    return fields, len(fields) / elapsed


def measure(policy: str, clients: int, seconds: float) -> tuple[float, int, int]:
    """(writes/s, acknowledged writes, acknowledged writes missing after the restart)."""
    server = RedisServer(extra_config=[f"appendfsync {policy}"]).start()
    try:
        fields, rate = write_until_killed(server, clients, seconds)
        server.start()  # same directory: the append-only file is read back
        with server.admin() as client:
            present = client.hmget(KEY, fields) if fields else []
        return rate, len(fields), sum(1 for value in present if value is None)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-aof", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of both policies")
    args = parser.parse_args(argv)
    totals: dict[str, list[tuple[float, int, int]]] = {"everysec": [], "always": []}
    for _ in range(args.rounds):
        for policy in totals:
            totals[policy].append(measure(policy, args.clients, args.seconds))
    print(f"{'appendfsync':<12} {'writes/s':>9} {'acknowledged':>12} {'lost on kill -9':>15}")
    summary = {}
    for policy, runs in totals.items():
        rate = sum(r for r, _, _ in runs) / len(runs)
        acked = sum(a for _, a, _ in runs)
        lost = sum(lost for _, _, lost in runs)
        summary[policy] = (rate, lost)
        print(f"{policy:<12} {rate:9.0f} {acked:12d} {lost:15d}")
    everysec, always = summary["everysec"], summary["always"]
    print(f"RESULT everysec_writes_per_s={everysec[0]:.0f} always_writes_per_s={always[0]:.0f} "
          f"always_vs_everysec={always[0] / everysec[0]:.2f} lost_everysec={everysec[1]} "
          f"lost_always={always[1]}")
    return 0 if everysec[1] == always[1] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
