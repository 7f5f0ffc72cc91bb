"""Load generation for the benchmarks: an HTTP/1.1 generator (keep-alive connections, fixed
concurrency) that reports throughput and latency percentiles.

A server that answers `Connection: close` (or HTTP/1.0 without keep-alive) gets a new
connection for the next request, as any client does, and that is not a failure: connecting
is then part of each request's latency. Pure asyncio on raw sockets, so the client costs far
less CPU per request than the servers it measures (an HTTP client library would be the
bottleneck on a 2-core machine). Loopback only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from scripts.devkit.stats import percentile


@dataclass
class Result:
    """What one run measured: latencies (s) of successful requests, statuses, wall time."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def merge(self, other: Result) -> None:
        """Add another run of the same route (e.g. one of several interleaved rounds)."""
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.failures += other.failures
        self.elapsed += other.elapsed

    def percentile_ms(self, pct: float) -> float:
        """The `pct` percentile (0 to 100) of the latencies in milliseconds; NaN without any."""
        value = percentile(self.latencies, pct)
        return float("nan") if value is None else value * 1000


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                   path: str) -> tuple[int, bool]:
    """One GET: its status, and whether the server keeps the connection open."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: canaduck-bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status_text = lines[0].split(" ", 2)[:2]
    length = 0
    connection = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            connection = value.strip().lower()
    if length:
        await reader.readexactly(length)
    keep_alive = connection != "close" and (version != "HTTP/1.0" or connection == "keep-alive")
    return int(status_text), keep_alive


async def run(name: str, host: str, port: int, paths: Iterator[str] | Callable[[], str],
              *, requests: int, concurrency: int, max_seconds: float = 30.0,
              want: int = 200) -> Result:
    """Send `requests` GETs (at most `max_seconds`) over `concurrency` keep-alive connections.

    `paths` gives each request's path (an iterator, or a function called per request). A
    request counts as successful when its status is `want`.
    """
    result = Result(name)
    if callable(paths):
        next_path = paths
    else:
        iterator = iter(paths)
        next_path = lambda: next(iterator)  # noqa: E731
    budget = itertools.count()
    deadline = time.monotonic() + max_seconds

    async def worker() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while next(budget) < requests and time.monotonic() < deadline:
                path = next_path()
                began = time.perf_counter()
                try:
                    if connection is None:
                        connection = await asyncio.open_connection(host, port)
                    status, keep_alive = await _request(*connection, f"{host}:{port}", path)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    result.failures += 1
                    keep_alive = False
                else:
                    result.statuses[status] += 1
                    if status == want:
                        result.latencies.append(time.perf_counter() - began)
                    else:
                        result.failures += 1
                if not keep_alive and connection is not None:
                    connection[1].close()
                    connection = None
        finally:
            if connection is not None:
                connection[1].close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result
