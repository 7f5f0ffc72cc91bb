"""Compose smoke test: build and start the stack in containers, use it through Caddy, tear down.

Run through `scripts/compose-smoke` on a machine with Docker and Compose v2. Prints a table
of checks and ends with `RESULT compose_routes_ok=<n>/<n> failover_ok=<yes|no> up_seconds=<n>`.
Exit status 0 only if every check passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("CANADUCK_HTTP_PORT", "80"))
BASE = f"http://127.0.0.1:{PORT}"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "CANADUCK_HTTP_PORT": str(PORT)})


def get(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(f"{BASE}{path}", timeout=10)


def eventually(probe: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    return False


def route_checks(client: httpx.Client) -> list[Check]:
    """Every public route through Caddy, with what its answer must look like."""
    checks = []

    def check(name: str, path: str, expect: Callable[[httpx.Response], bool]) -> None:
        try:
            response = get(client, path)
            ok = expect(response)
            checks.append(Check(name, ok, f"{response.status_code} {response.text[:70]}"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            checks.append(Check(name, False, repr(exc)[:80]))

    check("GET /health (caddy)", "/health", lambda r: r.json()["status"] == "ok")
    check("GET /directory", "/directory",
          lambda r: r.status_code == 200 and "directory" in r.json()["services"])
    check("GET /directory/directory", "/directory/directory",
          lambda r: r.json()["instances"][0]["url"] == "http://directory:5000")
    check("GET /directory/Bad_Name -> 400", "/directory/Bad_Name", lambda r: r.status_code == 400)
    check("GET /nowhere -> JSON 404", "/nowhere",
          lambda r: r.status_code == 404 and r.json()["error"] == "not found")
    return checks


def failover_checks(client: httpx.Client) -> list[Check]:
    """Stop services and check the stack copes, then start them again."""
    checks = []
    compose("stop", "directory")
    down = eventually(lambda: get(client, "/directory").status_code in (502, 503), 15)
    checks.append(Check("directory stopped -> JSON 502/503", down, ""))
    compose("start", "directory")
    back = eventually(lambda: get(client, "/directory").status_code == 200, 30)
    checks.append(Check("directory started -> 200 again", back, ""))
    return checks


def main() -> int:
    started = time.monotonic()
    up = compose("up", "-d", "--build", "--wait", timeout=900)
    up_seconds = time.monotonic() - started
    checks = [Check("docker compose up -d --build --wait", up.returncode == 0,
                    (up.stderr or up.stdout).strip().splitlines()[-1][:80] if up.returncode else "")]
    routes: list[Check] = []
    failover: list[Check] = []
    try:
        if up.returncode == 0:
            with httpx.Client() as client:
                routes = route_checks(client)
                failover = failover_checks(client)
        else:
            print(up.stdout[-3000:], up.stderr[-3000:], sep="\n", file=sys.stderr)
    finally:
        down = compose("down", "-v", "--remove-orphans", timeout=300)
        checks += routes + failover
        checks.append(Check("docker compose down -v", down.returncode == 0, ""))

    width = max(len(c.name) for c in checks)
    print(f"{'check':<{width}}  ok   detail")
    for c in checks:
        print(f"{c.name:<{width}}  {'yes' if c.ok else 'NO ':<4} {c.detail}")
    routes_ok = sum(c.ok for c in routes)
    failover_ok = bool(failover) and all(c.ok for c in failover)
    print(f"RESULT compose_routes_ok={routes_ok}/{len(routes)} "
          f"failover_ok={'yes' if failover_ok else 'no'} up_seconds={up_seconds:.0f}")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
