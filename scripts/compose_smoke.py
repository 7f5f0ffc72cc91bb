"""Compose smoke test: build and start the stack in containers, use it through Caddy, tear down.

Run through `scripts/compose-smoke` on a machine with Docker and Compose v2. `--busy N` brings
the stack up while N CPU burners keep the cores busy: the health checks must hold on a loaded
machine. Then the routes, failover, durability (a joke survives a crashed and a restarted
Redis container), and calc scaled 1 -> 4 -> 2 -> 1 under a request loop (scale-demo's compose
scenario, its timeline printed). IRC goes through its one address, the balancer (irc-proxy):
clients spread over the replicas, over TLS too, known by their own address; ircd scaled to 4
with the same address; the replica holding a client killed, the client back through the same
address and heard by another replica's client. At the end every container must stop on
SIGTERM, none killed after the engine's grace. Prints a table of checks and ends with
`RESULT compose_routes_ok=<n>/<n> failover_ok=<yes|no> scaling_ok=<yes|no> irc_ok=<yes|no>
kill_to_heard_s=<s> up_seconds=<n>`. Exit status 0 only if every check passed.
COMPOSE_PROJECT_NAME, CANADUCK_HTTP_PORT, CANADUCK_IRC_PORT and CANADUCK_IRC_TLS_PORT keep it
apart from another stack on the same engine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx

from scripts.devkit import ircaddress
from scripts.devkit.processes import ROOT
from scripts.devkit.routecheck import Check, rally_advances, route_checks, served_by
from scripts.devkit.scaling import FIRST_REQUEST_LIMIT_MS, LAST_REQUEST_LIMIT_MS, compose_scenario, report
from scripts.devkit.waiting import eventually as _eventually

PORT = int(os.environ.get("CANADUCK_HTTP_PORT", "80"))
BASE = f"http://127.0.0.1:{PORT}"
IRC_PORT = int(os.environ.get("CANADUCK_IRC_PORT", "6667"))
IRC_TLS_PORT = int(os.environ.get("CANADUCK_IRC_TLS_PORT", "6697"))


def compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "CANADUCK_HTTP_PORT": str(PORT),
                                                "CANADUCK_IRC_PORT": str(IRC_PORT),
                                                "CANADUCK_IRC_TLS_PORT": str(IRC_TLS_PORT)})


def get(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(f"{BASE}{path}", timeout=10)


def eventually(probe: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """True once `probe` holds within `timeout` s; a failed request counts as not yet."""
    return _eventually(probe, timeout, interval, ignore=(httpx.HTTPError,))


_STARTED = time.monotonic()


def phase(what: str) -> None:
    """One line as each phase starts: building and the failover cases take minutes."""
    print(f"{time.monotonic() - _STARTED:6.1f} s  {what}", flush=True)


def failover_checks(client: httpx.Client) -> list[Check]:
    """Stop services and check the stack copes, then start them again."""
    checks = []

    def mult_answers_from(names: set[str]) -> bool:
        return set(served_by(client, "/mult?op1=2&op2=3", 8)) <= names

    phase("failover: mult-a and mult-b stopped, then started")
    compose("stop", "mult-a", "mult-b")
    backup = eventually(lambda: mult_answers_from({"mult-backup"}), 15)
    checks.append(Check("mult-a, mult-b stopped -> backup answers", backup, ""))
    compose("start", "mult-a", "mult-b")
    back = eventually(lambda: mult_answers_from({"mult-a", "mult-b"}), 30)
    checks.append(Check("mult-a, mult-b started -> backup idle again", back, ""))

    phase("failover: pong killed, then started")
    compose("kill", "pong")
    stalled = eventually(lambda: not rally_advances(client, 3), 15)
    checks.append(Check("pong killed -> rally stalls", stalled, ""))
    compose("start", "pong")
    resumed = rally_advances(client, 30)
    checks.append(Check("pong restarted -> rally resumes", resumed, ""))

    phase("failover: directory stopped, then started")
    compose("stop", "directory")
    down = eventually(lambda: get(client, "/directory").status_code in (502, 503), 15)
    checks.append(Check("directory stopped -> JSON 502/503", down, ""))
    compose("start", "directory")
    back = eventually(lambda: get(client, "/directory").status_code == 200, 30)
    checks.append(Check("directory started -> 200 again", back, ""))
    return checks


CONTAINERS = ircaddress.Containers(gateways=lambda: compose("ps", "-q", "ircd").stdout.split(),
                                   balancers=lambda: compose("ps", "-q", "irc-proxy").stdout.split())


def irc_checks() -> tuple[list[Check], float]:
    """IRC through its one address (the balancer), with ircd's two replicas, then scaled to
    four, one of which is killed under a client; back to two after. The checks and the kill
    to heard time."""
    phase(f"IRC through one address (:{IRC_PORT}, TLS :{IRC_TLS_PORT}): two replicas")
    try:
        checks = ircaddress.spread_checks(CONTAINERS, IRC_PORT)
        checks += ircaddress.address_checks(CONTAINERS, IRC_PORT, IRC_TLS_PORT)
        phase("IRC: ircd scaled to 4 (docker compose up --scale ircd=4), same address")
        up = compose("up", "-d", "--scale", "ircd=4", "--no-recreate", "--wait", "ircd")
        checks.append(Check("docker compose up --scale ircd=4", up.returncode == 0,
                            (up.stderr or up.stdout).strip()[-80:] if up.returncode else ""))
        # The new replicas are in the balancer's rotation within its 1 s refresh of the directory.
        time.sleep(3)
        checks += ircaddress.spread_checks(CONTAINERS, IRC_PORT)
        phase("IRC: the replica holding a client killed (docker kill)")
        killed, heard = ircaddress.kill_checks(CONTAINERS, IRC_PORT)
        checks += killed
    except (OSError, EOFError, subprocess.TimeoutExpired) as exc:
        return [Check("IRC through one address", False, f"{exc.__class__.__name__}: {str(exc)[:60]}")], 0.0
    finally:
        compose("up", "-d", "--scale", "ircd=2", "--wait", "ircd")
    return checks, heard


def scaling_checks() -> list[Check]:
    """calc scaled 1 -> 4 -> 2 -> 1 with `docker compose up --scale` under a request loop."""
    try:
        run = compose_scenario(BASE, compose, phase=3)
    except (RuntimeError, AssertionError, subprocess.TimeoutExpired) as exc:
        return [Check("scale calc 1 -> 4 -> 2 -> 1", False, str(exc)[:80])]
    print("calc scaled 1 -> 4 -> 2 -> 1 under a request loop:")
    result = report(run)
    print()
    return [
        Check("scaling: no failed request", result.failed == 0,
              f"{result.failed} of {result.requests}"),
        Check("scaling: 4 instances served", result.instances_seen >= 4, f"{result.instances_seen}"),
        Check("scaling: new instance served <= 2 s after registering",
              bool(result.first_request_ms) and result.worst_first_ms <= FIRST_REQUEST_LIMIT_MS,
              f"worst {result.worst_first_ms:.0f} ms"),
        Check("scaling: none served 1.5 s after leaving the directory",
              len(result.last_request_ms) >= 3 and result.worst_last_ms <= LAST_REQUEST_LIMIT_MS,
              f"worst {result.worst_last_ms:.0f} ms"),
    ]



def durability_checks(client: httpx.Client) -> list[Check]:
    """A joke a user added survives Redis crashing (SIGKILL inside the container: the restart
    policy brings it back) and `docker compose restart redis`; the seeded ones are there too."""
    checks = []
    added = client.post(f"{BASE}/jokes", json={"joke": f"Compose smoke {time.time_ns()}."}, timeout=10)
    checks.append(Check("POST /jokes -> 201", added.status_code == 201, added.text[:60]))
    if added.status_code != 201:
        return checks
    path = f"/jokes/{added.json()['id']}"
    compose("exec", "-T", "-u", "0", "redis", "sh", "-c", "kill -KILL -1")
    back = eventually(lambda: get(client, path).status_code == 200, 30)
    checks.append(Check("redis crashed (kill -9) -> restarted, joke still there", back, ""))
    compose("restart", "redis")
    back = eventually(lambda: get(client, path).status_code == 200, 30)
    checks.append(Check("docker compose restart redis -> joke still there", back, ""))
    full = eventually(lambda: isinstance(get(client, "/fullinfo?city=Albi").json().get("joke"), str), 30)
    checks.append(Check("/fullinfo has its joke again", full, ""))
    return checks


def bounded(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`docker compose <args>`, a timeout reported as status 124 (as timeout(1) does), not raised:
    a teardown step must end with a verdict even when the engine stops answering."""
    try:
        return compose(*args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(["docker", "compose", *args], 124, "",
                                           f"no answer from the engine in {timeout:.0f} s")


def stop_checks() -> list[Check]:
    """Every running container ends on SIGTERM, within the engine's grace of 10 s: none is
    killed (status 137). A container that needs the kill slows every `down`, rolling update
    and scale-in, and killing one is the engine's rarest and least tested path."""
    phase("docker compose stop: every container ends on SIGTERM")
    running = bounded("ps", "-q", timeout=60).stdout.split()
    stop = bounded("stop", timeout=180)
    if stop.returncode:
        return [Check("docker compose stop", False, (stop.stderr or stop.stdout).strip()[-120:])]
    try:
        states = subprocess.run(["docker", "inspect", "--format", "{{.Name}} {{.State.ExitCode}}", *running],
                                capture_output=True, text=True, timeout=60).stdout.splitlines()
    except subprocess.TimeoutExpired:
        return [Check("docker compose stop", False, "no answer from the engine to docker inspect in 60 s")]
    killed = [name.lstrip("/") for name, _, code in (line.partition(" ") for line in states)
              if code == "137"]
    return [Check(f"docker compose stop: {len(running)} containers ended on SIGTERM, none killed",
                  bool(running) and not killed, ", ".join(killed))]


def teardown() -> Check:
    """`docker compose down -v`, once more if the first pass failed (the engine may still be
    removing a container after the scaling and failover steps) but not after a timeout."""
    phase("docker compose down -v")
    down = bounded("down", "-v", "--remove-orphans", timeout=300)
    first_error = ""
    if down.returncode not in (0, 124):
        first_error = (down.stderr or down.stdout).strip().replace("\n", " | ")[-200:]
        print(f"docker compose down -v failed once: {first_error}", file=sys.stderr)
        down = bounded("down", "-v", "--remove-orphans", timeout=300)
    detail = (down.stderr or down.stdout).strip().replace("\n", " | ")[-160:] if down.returncode else ""
    return Check("docker compose down -v", down.returncode == 0,
                 detail or (f"second pass; first: {first_error[:120]}" if first_error else ""))


@contextlib.contextmanager
def cpu_burners(count: int) -> Iterator[None]:
    """`count` processes spinning on a core each, for the block."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/compose-smoke")
    parser.add_argument("--busy", type=int, default=0,
                        help="CPU burners running while the stack comes up (one per core: "
                             f"--busy {os.cpu_count() or 2})")
    args = parser.parse_args(argv)
    phase("docker compose up -d --build --wait (builds the images)")
    started = time.monotonic()
    checks: list[Check] = []
    routes: list[Check] = []
    failover: list[Check] = []
    scaling: list[Check] = []
    irc: list[Check] = []
    heard = 0.0
    up_seconds = 0.0
    try:  # from `up` on: an interrupted or failed run still ends with `down`
        with cpu_burners(args.busy):
            up = compose("up", "-d", "--build", "--wait", timeout=900)
        up_seconds = time.monotonic() - started
        checks.append(Check(f"docker compose up -d --build --wait ({args.busy} CPU burners)",
                            up.returncode == 0,
                            (up.stderr or up.stdout).strip().splitlines()[-1][:80] if up.returncode else ""))
        if up.returncode == 0:
            with httpx.Client(base_url=BASE) as client:
                phase(f"stack up in {up_seconds:.0f} s; checking every public route through Caddy")
                routes = route_checks(client)
                irc, heard = irc_checks()
                failover = failover_checks(client) + durability_checks(client)
            phase("scaling calc 1 -> 4 -> 2 -> 1 under a request loop")
            scaling = scaling_checks()
        else:
            print(up.stdout[-3000:], up.stderr[-3000:], sep="\n", file=sys.stderr)
            # What failed, before `down` erases it: each container's state and last log lines.
            print(compose("ps", "-a").stdout, compose("logs", "--tail", "15", "--no-color").stdout[-6000:],
                  sep="\n", file=sys.stderr)
    finally:
        stopped = stop_checks()
        checks += routes + irc + failover + scaling + stopped + [teardown()]

    print()
    width = max(len(c.name) for c in checks)
    print(f"{'check':<{width}}  ok   detail")
    for c in checks:
        print(f"{c.name:<{width}}  {'yes' if c.ok else 'NO ':<4} {c.detail}")
    routes_ok = sum(c.ok for c in routes)
    failover_ok = bool(failover) and all(c.ok for c in failover)
    scaling_ok = bool(scaling) and all(c.ok for c in scaling)
    irc_ok = bool(irc) and all(c.ok for c in irc)
    print(f"RESULT compose_routes_ok={routes_ok}/{len(routes)} "
          f"failover_ok={'yes' if failover_ok else 'no'} scaling_ok={'yes' if scaling_ok else 'no'} "
          f"irc_ok={'yes' if irc_ok else 'no'} kill_to_heard_s={heard:.1f} up_seconds={up_seconds:.0f}")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
