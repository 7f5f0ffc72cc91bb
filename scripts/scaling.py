"""Watching a service scale, from outside, through the gateway: a steady request loop and a
watch of the directory, both through Caddy, so one piece of code measures the local stack and
compose alike. Used by `scripts/scale-demo` and `scripts/compose-smoke`.

Registration times are read from the directory itself: an entry is written with a TTL of
DIRECTORY_TTL seconds, so an entry first seen with `ttl` seconds left was registered
DIRECTORY_TTL - ttl seconds before (exact until its first heartbeat rearms the TTL, and the
watch polls far more often than that).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from scripts.lb_demo import Sample, percentile

#: What calc answers with the loop's expected result (lb_demo's EXPECTED, 42).
SUM_PATH = "/sum?op1=40&op2=2"


@dataclass
class Presence:
    """When one instance was registered and when it left the directory (monotonic seconds)."""

    registered: float
    left: float | None = None


@dataclass
class DirectoryWatch:
    """Polls `GET /directory/<service>` through the gateway every `interval` s in a thread."""

    base_url: str
    service: str
    ttl: float = 10.0  # DIRECTORY_TTL of the watched instances
    interval: float = 0.1
    seen: dict[str, Presence] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _poll(self, client: httpx.Client) -> None:
        now = time.monotonic()
        try:
            response = client.get(f"{self.base_url}/directory/{self.service}")
            listed = {item["instance"]: item for item in response.json().get("instances", [])}
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return  # the directory unreachable for a moment says nothing about instances
        if response.status_code not in (200, 404):
            return
        for name, item in listed.items():
            presence = self.seen.get(name)
            if presence is None or presence.left is not None:
                ttl = item.get("ttl")
                registered = now - (self.ttl - ttl) if isinstance(ttl, (int, float)) else now
                self.seen[name] = Presence(registered=min(now, registered))
        for name, presence in self.seen.items():
            if presence.left is None and name not in listed:
                presence.left = now

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                self._poll(client)
                self._stop.wait(self.interval)

    def current(self) -> set[str]:
        """Instances listed at the last poll."""
        return {name for name, p in self.seen.items() if p.left is None}

    def __enter__(self) -> DirectoryWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


@dataclass(frozen=True)
class Verdict:
    """What a scaling run showed, per instance and in all."""

    requests: int
    failed: int
    instances_seen: int
    #: Per instance that registered during the run: ms from registration to its first request.
    first_request_ms: dict[str, float]
    #: Per instance that left during the run: ms from leaving the directory to the start of
    #: the last request it served (negative: none after it left).
    last_request_ms: dict[str, float]

    @property
    def worst_first_ms(self) -> float:
        return max(self.first_request_ms.values(), default=0.0)

    @property
    def worst_last_ms(self) -> float:
        return max(self.last_request_ms.values(), default=0.0)


def verdict(samples: Sequence[Sample], watch: DirectoryWatch, since: float) -> Verdict:
    """Measure a run: `since` is when the loop started (instances registered earlier are old)."""
    served: dict[str, list[float]] = {}
    for s in samples:
        if s.ok:
            served.setdefault(s.served_by, []).append(s.started)
    first = {name: (served[name][0] - p.registered) * 1000 for name, p in watch.seen.items()
             if p.registered > since and name in served}
    last = {name: (served[name][-1] - p.left) * 1000 if name in served else -1.0
            for name, p in watch.seen.items() if p.left is not None}
    return Verdict(len(samples), sum(1 for s in samples if not s.ok), len(served), first, last)


def timeline(samples: Sequence[Sample], t0: float, events: dict[int, str]) -> list[str]:
    """One line per second: answers per instance, failures, p50 and p99, what happened."""
    names = list(dict.fromkeys(s.served_by for s in samples if s.ok))
    labels = [name[-12:] for name in names]
    width = max([7, *map(len, labels)])
    head = " ".join(f"{label:>{width}}" for label in labels)
    lines = [f"{'t s':>4} {head} {'failed':>7} {'p50 ms':>7} {'p99 ms':>7}  event"]
    last = int(max(s.started for s in samples) - t0) if samples else 0
    for second in range(last + 1):
        window = [s for s in samples if second <= s.started - t0 < second + 1]
        counts = Counter(s.served_by for s in window if s.ok)
        latencies = [s.ms for s in window]
        cells = " ".join(f"{counts[name]:>{width}}" for name in names)
        lines.append(
            f"{second:>4} {cells} {sum(1 for s in window if not s.ok):>7} "
            f"{percentile(latencies, 0.5):>7.1f} {percentile(latencies, 0.99):>7.1f}  "
            f"{events.get(second, '')}".rstrip()
        )
    return lines


def wait_for_instances(base_url: str, path: str, count: int, timeout: float = 60.0) -> set[str]:
    """Wait until `count` distinct instances answer `path` through the gateway."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                seen = {client.get(f"{base_url}{path}").json().get("served_by") for _ in range(4 * count)}
            except (httpx.HTTPError, ValueError):
                seen = set()
            if len(seen) == count:
                return seen
            time.sleep(0.2)
    raise AssertionError(f"{count} instances never answered {path} (saw {sorted(seen)})")
