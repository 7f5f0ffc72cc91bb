"""Scaling calc up and down under a steady request loop, watched second by second.

Sends `/sum` requests through Caddy one after the other without pause while calc goes from 1
instance to 4, then 2, then 1; locally it also SIGKILLs an instance. Nothing is told to the
gateway: instances register in the directory and Caddy finds them there. Prints a per-second
timeline (requests per instance, failures, p50/p99), then each instance's times, then
`RESULT requests=<n> failed=<n> instances_seen=<n> first_request_after_register_ms=<n>`.
Exit status 0 only if no request failed, every new instance answered within 2 s of
registering, and none was sent a request after it stopped listening.

`scripts/scale-demo` runs the local stack (`scripts/up`) on free ports; `--compose` runs the
same scenario with `docker compose up --scale calc=N` (CANADUCK_HTTP_PORT and
COMPOSE_PROJECT_NAME choose the port and project). `--phase SECONDS` sets each step's length.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `scripts.*` importable
    sys.path.insert(0, str(ROOT))

from scripts.lb_demo import RequestLoop, Sample  # noqa: E402
from scripts.scaling import SUM_PATH, DirectoryWatch, Verdict, timeline, verdict, wait_for_instances  # noqa: E402

#: A new instance must take traffic this soon after registering (ms).
FIRST_REQUEST_LIMIT_MS = 2000.0
#: How long after leaving the directory a leaving instance may still be sent requests (ms):
#: the gateway's refresh (1 s) plus the watch's polling; it keeps serving for DRAIN_SECONDS (2).
LAST_REQUEST_LIMIT_MS = 1500.0


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the loop started
    label: str
    action: Callable[[], None]
    between_requests: bool = False  # a kill: run it when no request of the loop is in flight


@dataclass
class Run:
    samples: list[Sample]
    watch: DirectoryWatch
    t0: float
    events: dict[int, str]


def run_steps(base_url: str, steps: list[Step], end: float, ttl: float = 10.0) -> Run:
    """Run the loop and the watch, do each step at its time, stop at `end`."""
    with DirectoryWatch(base_url, "calc", ttl=ttl) as watch, RequestLoop(base_url, path=SUM_PATH) as loop:
        t0 = time.monotonic()
        events: dict[int, str] = {}
        for step in steps:
            time.sleep(max(0.0, t0 + step.at - time.monotonic()))
            began = time.monotonic()
            events[int(began - t0)] = step.label
            if step.between_requests:
                loop.between_requests(step.action)
            else:
                step.action()
        time.sleep(max(0.0, t0 + end - time.monotonic()))
        time.sleep(0.3)  # one more poll of the directory
    return Run(loop.samples, watch, t0, events)


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
    print(f"(last req ms: when the last request it served started, after it left the directory; "
          f"limit {LAST_REQUEST_LIMIT_MS:.0f})")
    print(f"RESULT requests={result.requests} failed={result.failed} instances_seen={result.instances_seen} "
          f"first_request_after_register_ms={result.worst_first_ms:.0f}")
    return result


def passed(result: Verdict, expected_instances: int) -> bool:
    return (result.failed == 0 and result.instances_seen >= expected_instances
            and result.worst_first_ms <= FIRST_REQUEST_LIMIT_MS
            and result.worst_last_ms <= LAST_REQUEST_LIMIT_MS)


def run_local(phase: float) -> int:
    """1 -> 4 -> 2 -> 1 calc instances on the local stack, then one SIGKILLed."""
    # The local runner's test helpers: the stack on free ports, and service processes.
    support: Any = importlib.import_module("tests.support")
    print("starting the local stack on free ports (calc=1)...", flush=True)
    stack = support.LocalStack(CANADUCK_SCALE="calc=1").start()
    launcher = support.ServiceLauncher(support.RedisServer(port=stack.redis_port))
    extras: dict[str, Any] = {}

    def start(*names: str) -> Callable[[], None]:
        def action() -> None:
            for name in names:  # as the runner starts them, with production timings
                extras[name] = launcher.start("apps.calc", "calc", wait=False, INSTANCE_ID=name,
                                              DIRECTORY_TTL="10", HEARTBEAT_INTERVAL="3",
                                              DRAIN_SECONDS="2")
        return action

    def stop(*names: str, sig: int = signal.SIGTERM) -> Callable[[], None]:
        def action() -> None:
            for name in names:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(extras[name].proc.pid, sig)
        return action

    try:
        wait_for_instances(stack.url, SUM_PATH, 1)
        steps = [
            Step(1 * phase, "scale 1 -> 4 (start calc-2..4)", start("calc-2", "calc-3", "calc-4")),
            Step(3 * phase, "scale 4 -> 2 (SIGTERM calc-3, calc-4)", stop("calc-3", "calc-4")),
            Step(5 * phase, "scale 2 -> 1 (SIGTERM calc-2)", stop("calc-2")),
            Step(6 * phase, "start calc-5", start("calc-5")),
            Step(8 * phase, "SIGKILL calc-5", stop("calc-5", sig=signal.SIGKILL), between_requests=True),
        ]
        run = run_steps(stack.url, steps, end=8 * phase + 11)  # past calc-5's directory TTL
    finally:
        launcher.stop_all()
        stack.stop()
    result = report(run)
    return 0 if passed(result, expected_instances=5) else 1


def compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`docker compose ...` in the checkout (project and port from the environment)."""
    return subprocess.run(["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def scale_compose(count: int) -> Callable[[], None]:
    def action() -> None:
        done = compose("up", "-d", "--no-recreate", "--no-deps", "--scale", f"calc={count}", "calc")
        if done.returncode:
            raise RuntimeError(f"docker compose --scale calc={count} failed: {done.stderr[-500:]}")
    return action


def compose_scenario(base_url: str, phase: float) -> Run:
    """1 -> 4 -> 2 -> 1 calc containers of a running compose stack, under the loop."""
    scale_compose(1)()
    wait_for_instances(base_url, SUM_PATH, 1)
    time.sleep(3)  # the removed instances' requests are over: start from a quiet state
    steps = [
        Step(1 * phase, "docker compose up --scale calc=4", scale_compose(4)),
        Step(4 * phase, "docker compose up --scale calc=2", scale_compose(2)),
        Step(6 * phase, "docker compose up --scale calc=1", scale_compose(1)),
    ]
    return run_steps(base_url, steps, end=8 * phase)


def run_compose(phase: float) -> int:
    port = os.environ.setdefault("CANADUCK_HTTP_PORT", "80")
    base_url = f"http://127.0.0.1:{port}"
    print("docker compose up --build --wait...", flush=True)
    up = compose("up", "-d", "--build", "--wait", timeout=900)
    try:
        if up.returncode:
            print(up.stderr[-3000:], file=sys.stderr)
            return 1
        run = compose_scenario(base_url, phase)
    finally:
        compose("down", "-v", "--remove-orphans", timeout=300)
    result = report(run)
    return 0 if passed(result, expected_instances=4) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", type=float, default=3.0, help="seconds per step (2 to 30)")
    parser.add_argument("--compose", action="store_true", help="run it on docker compose")
    args = parser.parse_args(argv)
    if not 2 <= args.phase <= 30:
        parser.error("--phase must be between 2 and 30 seconds")
    return run_compose(args.phase) if args.compose else run_local(args.phase)


if __name__ == "__main__":
    sys.exit(main())
