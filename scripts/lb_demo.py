"""Load balancing of /mult, watched second by second while replicas die and come back.

Starts the local stack on free ports, sends /mult requests through Caddy one after the other
without pause, and on a schedule: SIGKILLs mult-a, then mult-b (both kept down), lets both
restart, then freezes mult-a with SIGSTOP (a hung process) and thaws it. Prints a per-second
timeline (requests served by each replica, failures, p50/p99), a table per phase, and last
`RESULT requests=<n> failed=<n> ratio_a_b=<x> backup_only_when_down=<yes|no>`.

Run it with `scripts/lb-demo` (`--phase SECONDS` sets the length of each phase, default 3).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(ROOT))

REPLICAS = ("mult-a", "mult-b", "mult-backup")
#: The request the loop repeats, and the only answer that counts as a success.
PATH, EXPECTED = "/mult?op1=6&op2=7", 42


@dataclass(frozen=True)
class Sample:
    """One request of the loop: when it started and ended (monotonic), and who answered."""

    started: float
    ended: float
    status: int  # 0 when no HTTP answer came at all
    served_by: str  # "" unless the answer was a correct result

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.served_by)

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


class RequestLoop:
    """Sequential GETs of `base_url + PATH` in a thread, each recorded as a Sample, until stopped.

    `between_requests` runs an action (a kill, a restart) in the loop's own thread, at a moment
    when none of its requests is in flight. A replica killed in the middle of writing a
    response (status line sent, body not yet) loses that response: Caddy has already passed
    the headers on and cannot retry. That is the server dying, not the routing failing, so the
    loop keeps it out of what it measures; docs/load-balancing.md shows how often it happens.
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.url = f"{base_url}{PATH}"
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._actions: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def between_requests(self, action: Callable[[], None], timeout: float = 30.0) -> float:
        """Run `action` between two requests of the loop; return when it ran (monotonic)."""
        done = threading.Event()
        outcome: list[BaseException | float] = []

        def run() -> None:
            try:
                outcome.append(time.monotonic())
                action()
            except BaseException as exc:  # handed back to the caller below
                outcome.append(exc)
            finally:
                done.set()

        self._actions.put(run)
        if not done.wait(timeout):
            raise AssertionError(f"the request loop did not run the action within {timeout} s")
        if isinstance(outcome[-1], BaseException):
            raise outcome[-1]
        return outcome[0]  # type: ignore[return-value]

    def _run_pending_actions(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._actions.get_nowait()()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                self._run_pending_actions()
                started = time.monotonic()
                status, served_by = 0, ""
                try:
                    response = client.get(self.url)
                    status = response.status_code
                    body = response.json()
                    if status == 200 and body.get("result") == EXPECTED:
                        served_by = str(body.get("served_by", ""))
                except (httpx.HTTPError, ValueError):
                    pass
                self.samples.append(Sample(started, time.monotonic(), status, served_by))

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def count_since(self, since: float, served_by: str) -> int:
        """Correct answers from `served_by` to requests started at or after `since`."""
        return sum(1 for s in list(self.samples) if s.started >= since and s.served_by == served_by)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until `predicate()` holds while the loop runs; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            time.sleep(0.05)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values` by nearest rank; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def ratio_a_b(samples: Iterable[Sample]) -> float:
    """Requests served by mult-a per request served by mult-b (0.0 if b served none)."""
    counts = Counter(s.served_by for s in samples)
    return counts["mult-a"] / counts["mult-b"] if counts["mult-b"] else 0.0


def backup_only_when_down(samples: Sequence[Sample], both_down_at: float) -> bool:
    """True if the backup answered, and only while both primaries were down.

    `both_down_at` is when the second primary was killed: a request that ended before it was
    routed while one primary was still up. The backup's answers must also form one unbroken
    run: once mult-a or mult-b answers again, the backup must not.
    """
    served = [s.served_by for s in samples]
    backup = [i for i, name in enumerate(served) if name == "mult-backup"]
    if not backup or samples[backup[0]].ended <= both_down_at:
        return False
    return not any(name in ("mult-a", "mult-b") for name in served[backup[0]:backup[-1]])


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the loop started
    label: str
    action: Callable[[], None]


def timeline(samples: Sequence[Sample], t0: float, events: dict[int, str]) -> list[str]:
    """One line per second: answers per replica, failures, p50 and p99, what happened."""
    lines = [f"{'t s':>4} {'mult-a':>7} {'mult-b':>7} {'backup':>7} {'failed':>7} {'p50 ms':>7} "
             f"{'p99 ms':>7}  event"]
    last = int(max(s.started for s in samples) - t0) if samples else 0
    for second in range(last + 1):
        window = [s for s in samples if second <= s.started - t0 < second + 1]
        counts = Counter(s.served_by for s in window if s.ok)
        latencies = [s.ms for s in window]
        lines.append(
            f"{second:>4} {counts['mult-a']:>7} {counts['mult-b']:>7} {counts['mult-backup']:>7} "
            f"{sum(1 for s in window if not s.ok):>7} {percentile(latencies, 0.5):>7.1f} "
            f"{percentile(latencies, 0.99):>7.1f}  {events.get(second, '')}".rstrip()
        )
    return lines


def phase_table(phases: list[tuple[str, list[Sample]]]) -> list[str]:
    """Per phase: requests, throughput, p50/p99, and p50 as a ratio to the all-up phase."""
    baseline = percentile([s.ms for s in phases[0][1]], 0.5) or 1.0
    lines = [f"{'phase':<22} {'requests':>8} {'failed':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'p50/base':>8}"]
    for name, samples in phases:
        if not samples:
            continue
        span = max(s.ended for s in samples) - min(s.started for s in samples)
        p50 = percentile([s.ms for s in samples], 0.5)
        lines.append(
            f"{name:<22} {len(samples):>8} {sum(1 for s in samples if not s.ok):>6} "
            f"{len(samples) / span if span else 0:>7.0f} {p50:>7.1f} "
            f"{percentile([s.ms for s in samples], 0.99):>7.1f} {p50 / baseline:>8.2f}"
        )
    return lines


def run(phase: float) -> int:
    # LocalStack (tests/support.py) runs scripts/up on free ports and can hold a service down.
    # Imported by name: mypy checks apps and scripts, and the test helpers are not its business.
    support = importlib.import_module("tests.support")

    print("starting the local stack on free ports...", flush=True)
    stack = support.LocalStack().start()
    frozen: list[int] = []
    try:
        def freeze_a() -> None:
            frozen.append(stack.service_pid("mult-a"))
            os.kill(frozen[-1], signal.SIGSTOP)

        def thaw_a() -> None:
            os.kill(frozen.pop(), signal.SIGCONT)

        def restart_both() -> None:
            stack.release("mult-a")
            stack.release("mult-b")

        steps = [
            Step(1 * phase, "SIGKILL mult-a (kept down)", lambda: stack.hold_down("mult-a")),
            Step(2 * phase, "SIGKILL mult-b (kept down)", lambda: stack.hold_down("mult-b")),
            Step(3 * phase, "restart mult-a and mult-b", restart_both),
            Step(5 * phase, "SIGSTOP mult-a (hung)", freeze_a),
            Step(6 * phase, "SIGCONT mult-a", thaw_a),
        ]
        end = 7 * phase
        done_at: dict[str, float] = {}
        _wait_for_rotation(stack.url)
        with RequestLoop(stack.url) as loop:
            t0 = time.monotonic()
            for step in steps:
                time.sleep(max(0.0, t0 + step.at - time.monotonic()))
                done_at[step.label] = loop.between_requests(step.action)
            time.sleep(max(0.0, t0 + end - time.monotonic()))
        samples = loop.samples
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        stack.stop()

    events = {int(at - t0): label for label, at in done_at.items()}
    kill_a, kill_b, restart, freeze, thaw = (done_at[s.label] for s in steps)
    # Back to normal once both primaries have answered again after the restart.
    normal = max(next((s.started for s in samples if s.started > restart and s.served_by == name), freeze)
                 for name in ("mult-a", "mult-b"))

    def between(start: float, stop: float) -> list[Sample]:
        return [s for s in samples if start <= s.started < stop]

    phases = [("all up", between(t0, kill_a)), ("mult-a down", between(kill_a, kill_b)),
              ("mult-a and b down", between(kill_b, restart)), ("restarting", between(restart, normal)),
              ("all up again", between(normal, freeze)), ("mult-a hung (SIGSTOP)", between(freeze, thaw)),
              ("mult-a thawed", between(thaw, t0 + end))]
    print("\n".join(timeline(samples, t0, events)))
    print()
    print("\n".join(phase_table(phases)))
    failed = sum(1 for s in samples if not s.ok)
    balanced = phases[0][1] + phases[4][1]
    ok = backup_only_when_down(samples, kill_b)
    print(f"RESULT requests={len(samples)} failed={failed} ratio_a_b={ratio_a_b(balanced):.2f} "
          f"backup_only_when_down={'yes' if ok else 'no'}")
    return 0 if failed == 0 and ok else 1


def _wait_for_rotation(base_url: str, timeout: float = 30.0) -> None:
    """Wait until Caddy routes to both primaries (its health checks have passed)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                seen = {client.get(f"{base_url}{PATH}").json().get("served_by") for _ in range(8)}
                if seen == {"mult-a", "mult-b"}:
                    return
            time.sleep(0.2)
    raise SystemExit("mult-a and mult-b never both answered through Caddy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", type=float, default=3.0, help="seconds per phase (1 to 30)")
    args = parser.parse_args(argv)
    if not 1 <= args.phase <= 30:
        parser.error("--phase must be between 1 and 30 seconds")
    return run(args.phase)


if __name__ == "__main__":
    sys.exit(main())
