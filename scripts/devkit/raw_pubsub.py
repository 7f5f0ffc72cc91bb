"""The raw pub/sub baselines of scripts/bench-rally: round trips with redis-py and nothing else.

A -> B -> A through one echo process (two hops), or A -> B -> C -> D -> A through three (four
hops: the broker path's shape, player -> broker -> player -> broker -> player, with nothing in
it but redis-py's `listen` and `publish`, the floor of any broker written on it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import multiprocessing.synchronize
import time

import redis
from scripts.devkit.stats import percentile


def _echo(url: str, listen: str, answer: str, ready: multiprocessing.synchronize.Event) -> None:
    async def run() -> None:
        client = redis.asyncio.Redis.from_url(url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(listen)
        ready.set()
        async for message in pubsub.listen():
            if message["data"] == b"stop":
                return
            await client.publish(answer, message["data"])

    asyncio.run(run())


def raw_round_trip(url: str, shots: int, echoes: int = 1, lost_after: float = 10.0) -> dict:
    """A -> echo -> A with redis-py pub/sub: two hops. With `echoes=3`, A -> echo -> echo ->
    echo -> A: the broker path's four hops and three processes in between, doing nothing else.

    A shot not back within `lost_after` seconds ends the run with RuntimeError (an echo process
    died, or Redis went away), instead of waiting for it forever."""
    channels = [f"bench:{hop}" for hop in range(echoes + 1)]  # the last one is A's
    processes = []
    for listen, answer in itertools.pairwise(channels):
        ready = multiprocessing.Event()
        echo = multiprocessing.Process(target=_echo, args=(url, listen, answer, ready), daemon=True)
        echo.start()
        ready.wait(10)
        processes.append(echo)

    async def run() -> tuple[list[float], float]:
        client = redis.asyncio.Redis.from_url(url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channels[-1])
        rtts = []
        payload = json.dumps({"rally": 1, "hit": 1, "sender": "ping", "kind": "return"})
        started = time.perf_counter()
        try:
            for shot in range(shots + 200):
                sent = time.perf_counter()
                await client.publish(channels[0], payload)
                while (await pubsub.get_message(timeout=1.0)) is None:
                    if time.perf_counter() - sent > lost_after:
                        raise RuntimeError(f"shot {shot} not back through {echoes} echo "
                                           f"process(es) after {lost_after:g} s")
                rtts.append(time.perf_counter() - sent)
            return rtts[200:], time.perf_counter() - started
        finally:
            for channel in channels[:-1]:
                await client.publish(channel, "stop")
            await client.aclose()

    try:
        rtts, elapsed = asyncio.run(run())
    finally:
        for echo in processes:
            echo.join(5)
            if echo.is_alive():
                echo.kill()
                echo.join()
    return {"transport": "raw pub/sub" if echoes == 1 else f"raw {echoes + 1} hops",
            "shots": shots, "shots_per_s": (shots + 200) / elapsed,
            "p50": percentile(rtts, 50), "p99": percentile(rtts, 99), "misses": 0}
