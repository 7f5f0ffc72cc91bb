"""Chaos run: a mixed request loop through Caddy while Redis and service instances are killed,
frozen and brought back, then a check that nothing written before a fault is missing.

    scripts/chaos                        # the local stack, started on free ports, then stopped
    scripts/chaos --compose              # the same against `docker compose` (own project)
    scripts/chaos --duration 20 --every 5 --seed 3

On a schedule (every `--every` s after `--warmup` s, and at least one of each) it cycles
through three faults: SIGKILL of Redis (the local runner or compose's restart policy brings it
back, with its append-only file), SIGKILL of a random replica (brought back the same way),
SIGSTOP of a random replica for `--freeze` s then SIGCONT (compose: pause/unpause).
Meanwhile `--workers` loops send
GET /fullinfo, /sum, /mult, /rally and POST /messages, /jokes through Caddy; every joke
acknowledged (201) is read back at the end. Prints the faults with their recovery, a timeline,
a table per route, and last:

    RESULT requests=<n> failed=<n> failed_during_redis_outage=<n> max_recovery_s=<x> data_lost=<n>
           cut_by_crash=<n>   (on the same line)

`failed` counts failures outside any Redis outage (target 0); `failed_during_redis_outage` those
of requests that overlapped one (expected: the JSON 503s of the routes that need Redis);
`cut_by_crash` the responses whose headers had already come through Caddy when the replica
writing them was killed (lost in flight: no proxy can replay a half-sent answer). A
fault's recovery is how long after it was over (Redis answering, the replica back, the
process thawed) the last failure it caused came. Exit status 0 only if every target was met:
no data lost, no failure outside an outage, every failure during one a JSON 503 with
Retry-After from a route that needs Redis, and every recovery within `--max-recovery` s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from scripts.devkit.chaos import VICTIMS, ComposeTarget, LocalTarget, Report, Target, chaos
from scripts.devkit.localstack import LocalStack

# --- running it -------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--compose", action="store_true",
                        help="run against docker compose (project canaduck-chaos) instead of the local stack")
    parser.add_argument("--project", default="canaduck-chaos", help="compose project name")
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("CANADUCK_HTTP_PORT", "8089")),
                        help="compose: the host port Caddy is published on")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load, faults included")
    parser.add_argument("--every", type=float, default=8, help="seconds from one fault to the next")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before the first fault")
    parser.add_argument("--settle", type=float, default=5, help="seconds of load after the last fault")
    parser.add_argument("--freeze", type=float, default=3, help="seconds a frozen replica stays stopped")
    parser.add_argument("--workers", type=int, default=4, help="concurrent request loops")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds each loop waits between requests")
    parser.add_argument("--timeout", type=float, default=15, help="seconds before a request counts as hung")
    parser.add_argument("--window", type=float, default=2, help="seconds per timeline row")
    parser.add_argument("--seed", type=int, default=1, help="picks the victims")
    parser.add_argument("--victims", default=",".join(VICTIMS), help="replicas a fault may hit")
    parser.add_argument("--max-recovery", type=float, default=5, help="target: seconds to recover")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def run(target: Target, args: argparse.Namespace) -> Report:
    return asyncio.run(chaos(target, duration=args.duration, every=args.every, warmup=args.warmup,
                             settle=args.settle, freeze_for=args.freeze, workers=args.workers,
                             pause=args.pause, timeout=args.timeout, seed=args.seed,
                             victims=tuple(v for v in args.victims.split(",") if v)))


@contextlib.contextmanager
def local_target() -> Iterator[Target]:
    stack = LocalStack().start()
    try:
        yield LocalTarget(stack)
    finally:
        stack.stop()


@contextlib.contextmanager
def compose_target(project: str, http_port: int) -> Iterator[Target]:
    target = ComposeTarget(project, http_port)
    up = target.compose("up", "-d", "--build", "--wait", timeout=900)
    try:
        if up.returncode != 0:
            raise SystemExit(f"docker compose up failed:\n{up.stderr[-3000:]}")
        yield target
    finally:
        target.compose("down", "-v", "--remove-orphans", timeout=300)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    where = f"compose project {args.project}" if args.compose else "the local stack"
    print(f"chaos: {where}, {args.duration:g} s, a fault every {args.every:g} s, "
          f"{args.workers} loops, seed {args.seed}", flush=True)
    opened: contextlib.AbstractContextManager[Target] = (
        compose_target(args.project, args.http_port) if args.compose else local_target())
    with opened as target:
        report = run(target, args)
    print(report.render(args.window))
    if args.json:
        args.json.write_text(json.dumps(report.as_json(), indent=2))
    print(report.result_line())
    return 0 if report.met(args.max_recovery) else 1


if __name__ == "__main__":
    sys.exit(main())
