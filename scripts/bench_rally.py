"""Behind scripts/bench-rally: every process on 127.0.0.1, bounded in count and time.

1. Raw baselines, redis-py asyncio pub/sub: A -> B -> A (two hops), then A -> B -> C -> D -> A
   (four hops through three echo processes: the broker path's shape with nothing in it but
   redis-py, the floor of any broker written on it).
2. The rally at think time 0 over http, directory and broker: the round trip of a shot to its
   answer, as the players measure it (their last N/2 shots each), shots/s and misses.
3. The broker alone: several sender processes pipeline envelopes to `canaduck:broker`; one
   subscriber drains the recipient's inbox; relayed messages per second, with and without
   batched (pipelined) relaying.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import redis
from scripts.devkit.broker_relay import broker_alone
from scripts.devkit.processes import free_port
from scripts.devkit.raw_pubsub import raw_round_trip
from scripts.devkit.redis_server import RedisServer
from scripts.devkit.services import ServiceLauncher, start_at
from scripts.devkit.stats import percentile
from scripts.devkit.waiting import wait_until

RALLY_KEY = "canaduck:rally"


# -- 2. the rally ----------------------------------------------------------------------------

def player_states(admin: redis.Redis) -> dict[str, dict]:
    raw = admin.hgetall(RALLY_KEY)
    return {name: json.loads(raw[f"{name}:state"]) for name in ("ping", "pong")
            if f"{name}:state" in raw}


def misses(admin: redis.Redis) -> int:
    return sum(int(admin.hget(RALLY_KEY, f"{name}:misses") or 0) for name in ("ping", "pong"))


def rally(server: RedisServer, transport: str, shots: int, warmup: int = 300) -> dict:
    admin = server.admin()
    admin.flushall()
    launcher = ServiceLauncher(server)
    half = shots // 2
    env = {"TRANSPORT": transport, "THINK_TIME": "0", "RALLY_WINDOW": str(half),
           "SCOREBOARD_INTERVAL": "0.2", "LOG_LEVEL": "WARNING"}
    try:
        if transport == "broker":
            launcher.start("apps.broker", "broker", LOG_LEVEL="WARNING")
        ports = {"ping": free_port(), "pong": free_port()}
        for name, peer in (("ping", "pong"), ("pong", "ping")):
            start_at(launcher, "apps.player", name, ports[name],
                     PEER_URL=f"http://127.0.0.1:{ports[peer]}", **env)

        def returned(at_least: int) -> bool:
            states = player_states(admin)
            return len(states) == 2 and all(s["returned"] >= at_least for s in states.values())

        wait_until(lambda: returned(warmup), timeout=60, interval=0.1)
        misses_before = misses(admin)
        wait_until(lambda: returned(warmup + half + 50), timeout=300, interval=0.1)
        states = player_states(admin)
        rtts = [x / 1e6 for s in states.values() for x in s["rtt_us"]]
        return {"transport": transport, "shots": len(rtts),
                "shots_per_s": sum(s["shots_per_s"] for s in states.values()),
                "p50": percentile(rtts, 50), "p99": percentile(rtts, 99),
                "misses": misses(admin) - misses_before}
    finally:
        launcher.stop_all()


# -- the report ------------------------------------------------------------------------------

_STARTED = time.monotonic()


def phase(what: str) -> None:
    """One line as each phase starts: the whole run takes a minute or more."""
    print(f"{time.monotonic() - _STARTED:6.1f} s  {what}...", flush=True)


def us(seconds: float | None) -> int:
    return round((seconds or 0) * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=2000, help="shots per transport")
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per sender")
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        server.admin().flushall()
        phase(f"raw pub/sub round trips, two and four hops, {args.shots} shots")
        rows = [raw_round_trip(server.admin_url, args.shots),
                raw_round_trip(server.admin_url, args.shots, echoes=3)]
        for transport in ("http", "directory", "broker"):
            phase(f"rally over {transport}, {args.shots} shots after a warm-up")
            rows.append(rally(server, transport, args.shots))
        relays = []
        for batch in (1, 128):
            phase(f"broker alone, batch {batch}: {args.senders} senders x {args.messages} messages")
            relays.append(broker_alone(server, args.senders, args.messages, batch))
    finally:
        server.stop()
    print()

    raw = rows[0]["p50"]
    print(f"{'transport':<12} {'shots':>6} {'shots/s':>8} {'p50 us':>7} {'p99 us':>7} "
          f"{'p50/raw':>7} {'misses':>6}")
    for row in rows:
        print(f"{row['transport']:<12} {row['shots']:>6} {row['shots_per_s']:>8.0f} {us(row['p50']):>7} "
              f"{us(row['p99']):>7} {row['p50'] / raw:>7.2f} {row['misses']:>6}")
    print()
    print(f"{'broker alone':<12} {'senders':>7} {'messages':>8} {'seconds':>7} {'msg/s':>7} {'undeliv.':>8}")
    for relay in relays:
        label = "one by one" if relay["batch"] == 1 else f"batch {relay['batch']}"
        print(f"{label:<12} {relay['senders']:>7} {relay['messages']:>8} {relay['seconds']:>7.2f} "
              f"{relay['per_s']:>7.0f} {relay['undeliverable']:>8}")
    by = {row["transport"]: row for row in rows}
    broker, http, floor = by["broker"], by["http"], rows[1]
    print(f"RESULT broker_p50_us={us(broker['p50'])} broker_p99_us={us(broker['p99'])} "
          f"raw_p50_us={us(raw)} http_p50_us={us(http['p50'])} "
          f"broker_vs_raw={broker['p50'] / raw:.2f} broker_vs_http={broker['p50'] / http['p50']:.2f} "
          f"raw4_vs_raw={floor['p50'] / raw:.2f} broker_vs_raw4={broker['p50'] / floor['p50']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
