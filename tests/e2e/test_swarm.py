"""The stack on Docker Swarm: deployed, used through Caddy, scaled, a task killed, rolled.

Opt-in: deploying turns the engine into a swarm (and leaves it after) and takes minutes, so it
runs only with CANADUCK_SWARM_TESTS=1 (CI sets it, after the compose smoke) and a Docker
engine. One stack for the module, on a free port, removed at the end with everything it made.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from scripts.devkit import ircaddress
from scripts.devkit.processes import free_port
from scripts.devkit.requestloop import RequestLoop
from scripts.devkit.routecheck import Check, route_checks
from scripts.devkit.scaling import SUM_ANSWER, SUM_PATH, wait_for_instances
from scripts.devkit.swarm import SwarmStack, engine_available, swarm_state
from scripts.devkit.waiting import eventually, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

if os.environ.get("CANADUCK_SWARM_TESTS") != "1":
    pytest.skip("Swarm tests deploy a stack on the Docker engine for several minutes: "
                "set CANADUCK_SWARM_TESTS=1 to run them (CI does)", allow_module_level=True)
_NO_ENGINE = engine_available()
if _NO_ENGINE:
    pytest.skip(f"Swarm tests need a Docker engine: {_NO_ENGINE}", allow_module_level=True)


@pytest.fixture(scope="module")
def swarm() -> Iterator[SwarmStack]:
    was = swarm_state()
    stack = SwarmStack(name="canaduck-swarm-test", http_port=free_port(), irc_port=free_port(),
                       irc_tls_port=free_port())
    try:
        started = time.monotonic()
        stack.up()
        print(f"\nswarm up (build, deploy, ready): {time.monotonic() - started:.0f} s")
        yield stack
    finally:
        stack.down()
    assert swarm_state() == was, "the engine's swarm state must be what it was"


def calc_loop(stack: SwarmStack) -> RequestLoop:
    return RequestLoop(stack.base_url, SUM_PATH, SUM_ANSWER)


def failures(loop: RequestLoop) -> list[str]:
    return [f"{s.status} after {s.ms:.0f} ms" for s in loop.samples if not s.ok]


def test_every_public_route_answers_through_caddy(swarm: SwarmStack):
    with httpx.Client(base_url=swarm.base_url) as client:
        checks = route_checks(client)
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, failed
    assert len(checks) >= 20


def test_irc_has_one_address_on_the_node_and_a_killed_replicas_client_comes_back_through_it(
        swarm: SwarmStack):
    # The balancer runs on every node and publishes its ports there (mode: host): the routing
    # mesh needs IPVS, which this kernel lacks. It finds the replicas in the directory.
    containers = ircaddress.Containers(gateways=lambda: swarm.containers("ircd"),
                                       balancers=lambda: swarm.containers("irc-proxy"))
    spread: list[Check] = []

    def spread_over_both() -> bool:  # the balancer asks the directory once a second
        spread[:] = ircaddress.spread_checks(containers, swarm.irc_port)
        return all(check.ok for check in spread)

    eventually(spread_over_both, 60, interval=2.0, ignore=(OSError, EOFError))
    checks = spread + ircaddress.address_checks(containers, swarm.irc_port, swarm.irc_tls_port)
    killed, heard = ircaddress.kill_checks(containers, swarm.irc_port)
    checks += killed
    print(f"\nIRC on swarm through :{swarm.irc_port}: kill to heard {heard:.1f} s")
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, failed


def test_each_replica_has_its_own_name_and_advertises_its_own_address(swarm: SwarmStack):
    entries = httpx.get(f"{swarm.base_url}/directory/calc", timeout=10).json()["instances"]
    names = sorted(entry["instance"] for entry in entries)
    assert [name.split("-")[1] for name in names] == ["1", "2"], names  # the task slots
    addresses = {entry["url"] for entry in entries}
    assert len(addresses) == 2 and all(url.startswith("http://10.200.") for url in addresses), addresses


def test_calc_scaled_to_three_answers_from_three_instances(swarm: SwarmStack):
    rows = swarm.scale_to("calc", 3)
    calc = next(row for row in rows if row.name == "calc")
    assert (calc.running, calc.desired, len(calc.instances)) == (3, 3, 3)
    seen = wait_for_instances(swarm.base_url, SUM_PATH, 3, timeout=60)
    assert sorted(name.split("-")[1] for name in seen) == ["1", "2", "3"]


def test_a_killed_task_is_replaced_with_no_failed_request(swarm: SwarmStack):
    before = set(swarm.containers("calc"))
    victim = sorted(before)[0]
    loop = calc_loop(swarm)
    with loop:
        killed = loop.between_requests(lambda: swarm.kill(victim))  # no request in flight then
        wait_until(lambda: set(swarm.containers("calc")) - before, timeout=120, interval=1)
        # Ready again: three tasks, and the dead one's entry gone from the directory (its TTL).
        swarm.wait_ready(timeout=300)
        wait_for_instances(swarm.base_url, SUM_PATH, 3, timeout=60)
        ready = time.monotonic() - killed
    assert victim not in swarm.containers("calc") and len(set(swarm.containers("calc")) - before) == 1
    print(f"\nkilled task: {len(loop.samples)} requests, {len(failures(loop))} failed, "
          f"three instances answering again {ready:.1f} s after the kill")
    assert len(loop.samples) > 20 and not failures(loop), failures(loop)


def test_a_rolling_update_of_a_single_replica_fails_no_request(swarm: SwarmStack):
    swarm.scale_to("calc", 1)
    before = wait_for_instances(swarm.base_url, SUM_PATH, 1, timeout=60)
    loop = calc_loop(swarm)
    with loop:
        started = loop.between_requests(lambda: None)
        swarm.rolling_update("calc")
        took = time.monotonic() - started
        wait_until(lambda: {s.served_by for s in loop.samples[-10:] if s.ok} - before,
                   timeout=60, interval=0.5)
    # The CLI returns once the tasks converged; the service's update state follows shortly.
    wait_until(lambda: swarm.update_state("calc") == "completed", timeout=60, interval=1)
    served = [s.served_by for s in loop.samples if s.ok]
    print(f"\nrolling update: {took:.1f} s, {len(loop.samples)} requests, {len(failures(loop))} failed")
    assert served[0] in before and served[-1] not in before  # start-first: old, then new
    assert not failures(loop), failures(loop)


def test_an_update_whose_tasks_fail_is_rolled_back_with_no_failed_request(swarm: SwarmStack):
    loop = calc_loop(swarm)
    with loop:
        # A setting the service refuses at start: the new task exits, the update fails and
        # Swarm puts the previous spec back; start-first, the old task never stopped.
        started = loop.between_requests(lambda: None)
        swarm.update_env("calc", "REDIS_TIMEOUT=-1")
        wait_until(lambda: swarm.update_state("calc") == "rollback_completed", timeout=240, interval=2)
        took = time.monotonic() - started
    print(f"\nrolled back: {took:.1f} s, {len(loop.samples)} requests, {len(failures(loop))} failed")
    assert "REDIS_TIMEOUT=-1" not in swarm.service_env("calc")
    assert not failures(loop), failures(loop)
