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
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from scripts.devkit.localstack import LocalStack
from scripts.devkit.processes import ROOT
from scripts.devkit.redis_server import RedisServer
from scripts.devkit.scaling import SUM_PATH, compose_scenario, passed, report, scaling_run, wait_for_instances
from scripts.devkit.services import ServiceLauncher, ServiceProcess


def run_local(phase: float) -> int:
    """1 -> 4 -> 2 -> 1 calc instances on the local stack, then one SIGKILLed."""
    print("starting the local stack on free ports (scripts/up --scale calc=1)...", flush=True)
    stack = LocalStack(CANADUCK_SCALE="calc=1").start()
    # More instances join the running stack the way scripts/up starts them.
    launcher = ServiceLauncher(RedisServer(port=stack.redis_port))
    extras: dict[str, ServiceProcess] = {}

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
        with scaling_run(stack.url) as run:
            time.sleep(phase)
            run.act("scale 1 -> 4 (start calc-2..4)", start("calc-2", "calc-3", "calc-4"))
            run.wait_routed(4)
            time.sleep(phase)
            run.act("scale 4 -> 2 (SIGTERM calc-3, calc-4)", stop("calc-3", "calc-4"))
            run.wait_routed(2)
            time.sleep(phase)
            run.act("scale 2 -> 1 (SIGTERM calc-2)", stop("calc-2"))
            run.wait_routed(1)
            time.sleep(phase)
            run.act("start calc-5", start("calc-5"))
            run.wait_routed(2)
            time.sleep(phase)
            run.act("SIGKILL calc-5", stop("calc-5", sig=signal.SIGKILL), between_requests=True)
            run.wait_gone("calc-5")  # its directory TTL runs out
            run.mark("calc-5 gone from the directory")
            time.sleep(phase)
    finally:
        launcher.stop_all()
        stack.stop()
    result = report(run)
    return 0 if passed(result, expected_instances=5) else 1


def compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`docker compose ...` in the checkout (project and port from the environment)."""
    return subprocess.run(["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def run_compose(phase: float) -> int:
    port = os.environ.setdefault("CANADUCK_HTTP_PORT", "80")
    base_url = f"http://127.0.0.1:{port}"
    print("docker compose up --build --wait...", flush=True)
    up = compose("up", "-d", "--build", "--wait", timeout=900)
    try:
        if up.returncode:
            print(up.stderr[-3000:], file=sys.stderr)
            return 1
        run = compose_scenario(base_url, compose, phase)
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
