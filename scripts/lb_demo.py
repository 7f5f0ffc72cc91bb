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
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx

from scripts.devkit.localstack import LocalStack
from scripts.devkit.requestloop import MULT_PATH, RequestLoop, Sample, backup_only_when_down
from scripts.devkit.stats import percentile_or
from scripts.devkit.waiting import eventually


def ratio_a_b(samples: Iterable[Sample]) -> float:
    """Requests served by mult-a per request served by mult-b (0.0 if b served none)."""
    counts = Counter(s.served_by for s in samples)
    return counts["mult-a"] / counts["mult-b"] if counts["mult-b"] else 0.0


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
            f"{sum(1 for s in window if not s.ok):>7} {percentile_or(latencies, 50):>7.1f} "
            f"{percentile_or(latencies, 99):>7.1f}  {events.get(second, '')}".rstrip()
        )
    return lines


def phase_table(phases: list[tuple[str, list[Sample]]]) -> list[str]:
    """Per phase: requests, throughput, p50/p99, and p50 as a ratio to the all-up phase."""
    baseline = percentile_or([s.ms for s in phases[0][1]], 50) or 1.0
    lines = [f"{'phase':<22} {'requests':>8} {'failed':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'p50/base':>8}"]
    for name, samples in phases:
        if not samples:
            continue
        span = max(s.ended for s in samples) - min(s.started for s in samples)
        p50 = percentile_or([s.ms for s in samples], 50)
        lines.append(
            f"{name:<22} {len(samples):>8} {sum(1 for s in samples if not s.ok):>6} "
            f"{len(samples) / span if span else 0:>7.0f} {p50:>7.1f} "
            f"{percentile_or([s.ms for s in samples], 99):>7.1f} {p50 / baseline:>8.2f}"
        )
    return lines


def run(phase: float) -> int:
    print("starting the local stack on free ports...", flush=True)
    stack = LocalStack().start()
    print(f"stack ready in {stack.ready_seconds:.1f} s; waiting for Caddy to route to mult-a and mult-b",
          flush=True)
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
            print(f"{0:5.1f} s  request loop started (all up)", flush=True)
            for step in steps:
                time.sleep(max(0.0, t0 + step.at - time.monotonic()))
                done_at[step.label] = loop.between_requests(step.action)
                print(f"{done_at[step.label] - t0:5.1f} s  {step.label}", flush=True)
            time.sleep(max(0.0, t0 + end - time.monotonic()))
        samples = loop.samples
        print(f"{time.monotonic() - t0:5.1f} s  request loop stopped; stopping the stack", flush=True)
        print()
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
    with httpx.Client(timeout=5) as client:
        def both_answer() -> bool:
            seen = {client.get(f"{base_url}{MULT_PATH}").json().get("served_by") for _ in range(8)}
            return seen == {"mult-a", "mult-b"}

        if not eventually(both_answer, timeout, interval=0.2, ignore=(httpx.HTTPError, ValueError)):
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
