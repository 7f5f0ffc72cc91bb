"""Watching a service scale, from outside, through the gateway: a steady request loop and a
watch of the directory, both through Caddy, so one piece of code measures the local stack and
compose alike. Used by `scripts/scale-demo` and `scripts/compose-smoke` (and the end-to-end
scaling test).

Registration times are read from the directory itself: an entry is written with a TTL of
DIRECTORY_TTL seconds, so an entry first seen with `ttl` seconds left was registered
DIRECTORY_TTL - ttl seconds before (exact until its first heartbeat rearms the TTL, and the
watch polls far more often than that).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import httpx

from scripts.devkit.requestloop import RequestLoop, Sample
from scripts.devkit.stats import percentile_or
from scripts.devkit.waiting import wait_until

#: The request the loop repeats through the gateway, and its answer.
SUM_PATH, SUM_ANSWER = "/sum?op1=40&op2=2", 42
#: A new instance must take traffic this soon after registering (ms).
FIRST_REQUEST_LIMIT_MS = 2000.0
#: How long after leaving the directory a leaving instance may still be sent requests (ms):
#: the gateway's refresh (1 s) plus the watch's polling; it keeps serving for DRAIN_SECONDS (2).
LAST_REQUEST_LIMIT_MS = 1500.0


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
        # The first look is taken here, not in the thread: an instance listed before the run
        # starts must be seen as old. Seen first by a thread that a busy machine runs late,
        # after the caller's start time, an old instance whose heartbeat had just renewed its
        # entry would pass for one that registered during the run.
        with httpx.Client(timeout=2) as client:
            self._poll(client)
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
            f"{percentile_or(latencies, 50):>7.1f} {percentile_or(latencies, 99):>7.1f}  "
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


@dataclass
class Run:
    """A scaling run as it goes: the request loop, the directory watch, and what was done when.

    Steps wait for their effect (instances routed, or gone) rather than for the clock, so a
    slow start on a loaded machine stretches the timeline instead of breaking the scenario.
    """

    loop: RequestLoop
    watch: DirectoryWatch
    t0: float = field(default_factory=time.monotonic)
    events: dict[int, str] = field(default_factory=dict)

    @property
    def samples(self) -> list[Sample]:
        return self.loop.samples

    def mark(self, label: str) -> None:
        """Note what happens now, on the timeline."""
        second = int(time.monotonic() - self.t0)
        self.events[second] = f"{self.events[second]}; {label}" if second in self.events else label

    def act(self, label: str, action: Callable[[], None], between_requests: bool = False) -> None:
        """Do `action` (a kill: between two requests of the loop) and mark it."""
        self.mark(label)
        if between_requests:
            self.loop.between_requests(action)
        else:
            action()

    def routed(self) -> set[str]:
        """Listed instances that have answered a request since they registered."""
        samples = list(self.loop.samples)
        return {name for name, presence in self.watch.seen.items() if presence.left is None
                and any(s.served_by == name and s.started >= presence.registered for s in samples)}

    def wait_routed(self, count: int, timeout: float = 90.0) -> None:
        """Until exactly `count` instances are listed and each has answered."""
        wait_until(lambda: len(self.watch.current()) == count and len(self.routed()) == count,
                   timeout=timeout, interval=0.1)

    def wait_gone(self, name: str, timeout: float = 30.0) -> None:
        """Until `name` has left the directory."""
        wait_until(lambda: name in self.watch.seen and self.watch.seen[name].left is not None,
                   timeout=timeout, interval=0.1)


@contextlib.contextmanager
def scaling_run(base_url: str, ttl: float = 10.0) -> Iterator[Run]:
    """The loop and the watch on calc for the block; one more poll of the directory after it."""
    with DirectoryWatch(base_url, "calc", ttl=ttl) as watch, \
            RequestLoop(base_url, path=SUM_PATH, expected=SUM_ANSWER) as loop:
        run = Run(loop, watch)
        yield run
        time.sleep(0.3)


def report(run: Run) -> Verdict:
    """Print the timeline, the per-instance table and the RESULT line; return the verdict."""
    result = verdict(run.samples, run.watch, run.t0)
    print("\n".join(timeline(run.samples, run.t0, run.events)))
    print()
    print(f"{'instance':<20} {'registered s':>12} {'left s':>7} {'first req ms':>12} {'last req ms':>12}")
    for name, presence in run.watch.seen.items():
        left = f"{presence.left - run.t0:.2f}" if presence.left is not None else "-"
        first = result.first_request_ms.get(name)
        last = result.last_request_ms.get(name)
        print(f"{name[-20:]:<20} {presence.registered - run.t0:>12.2f} {left:>7} "
              f"{'-' if first is None else f'{first:.0f}':>12} {'-' if last is None else f'{last:.0f}':>12}")
    print("(first req: ms from registering to its first request; last req: from leaving the "
          f"directory to the start of the last request it served, limit {LAST_REQUEST_LIMIT_MS:.0f})")
    print(f"RESULT requests={result.requests} failed={result.failed} instances_seen={result.instances_seen} "
          f"first_request_after_register_ms={result.worst_first_ms:.0f}")
    return result


def passed(result: Verdict, expected_instances: int) -> bool:
    """No failure, every instance seen, each new one in time, no leaving one served late."""
    return (result.failed == 0 and result.instances_seen >= expected_instances
            and bool(result.first_request_ms) and result.worst_first_ms <= FIRST_REQUEST_LIMIT_MS
            and result.worst_last_ms <= LAST_REQUEST_LIMIT_MS)


Compose = Callable[..., "subprocess.CompletedProcess[str]"]


def compose_scale(compose: Compose, count: int) -> Callable[[], None]:
    """An action: `docker compose up -d --no-recreate --scale calc=<count> calc`."""
    def action() -> None:
        done = compose("up", "-d", "--no-recreate", "--no-deps", "--scale", f"calc={count}", "calc")
        if done.returncode:
            raise RuntimeError(f"docker compose --scale calc={count} failed: {done.stderr[-500:]}")
    return action


def compose_scenario(base_url: str, compose: Compose, phase: float) -> Run:
    """1 -> 4 -> 2 -> 1 calc containers of a running compose stack, under the loop."""
    compose_scale(compose, 1)()
    wait_for_instances(base_url, SUM_PATH, 1)
    time.sleep(3)  # the removed instances are gone: start from a quiet state
    with scaling_run(base_url) as run:
        for count in (4, 2, 1):
            time.sleep(phase)
            run.act(f"docker compose up --scale calc={count}", compose_scale(compose, count))
            run.wait_routed(count)
        time.sleep(phase)
    return run
