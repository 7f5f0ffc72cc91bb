"""Load balancing through Caddy: calc's round robin, mult's 3:1 with a backup, and failover.

Every test leaves all five replicas running and routed, whatever happens: the stack is shared.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from scripts.devkit import LocalStack, wait_until
from scripts.devkit.requestloop import MULT_PATH as PATH
from scripts.devkit.requestloop import RequestLoop, backup_only_when_down

PRIMARIES = ("mult-a", "mult-b")


@pytest.fixture
def client(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        yield client


def mult_balanced(client: httpx.Client) -> bool:
    """Caddy routes to both primaries: 8 requests in a row give exactly a, a, a, b twice."""
    try:
        names = [client.get(PATH).json().get("served_by") for _ in range(8)]
    except (httpx.HTTPError, ValueError):
        return False
    return Counter(names) == {"mult-a": 6, "mult-b": 2}


@contextlib.contextmanager
def restored(stack: LocalStack, client: httpx.Client) -> Iterator[list[str]]:
    """Yield a list to which a test adds each replica it holds down; all come back after."""
    held: list[str] = []
    try:
        yield held
    finally:
        for proc in held:
            stack.release(proc)
        wait_until(lambda: mult_balanced(client), timeout=30, interval=0.2)


def test_mult_is_shared_3_to_1_and_the_backup_idles(client):
    wait_until(lambda: mult_balanced(client), timeout=30, interval=0.2)
    answers = [client.get(PATH) for _ in range(400)]
    assert all(r.status_code == 200 and r.json()["result"] == 42 for r in answers)
    assert Counter(r.json()["served_by"] for r in answers) == {"mult-a": 300, "mult-b": 100}


def test_sum_is_spread_over_every_calc_instance_in_the_directory(client):
    def both_seen() -> bool:
        return {client.get("/calc").json().get("instance") for _ in range(8)} == {"calc-1", "calc-2"}

    wait_until(both_seen, timeout=30, interval=0.2)
    answers = [client.get("/sum", params={"op1": 40, "op2": 2}).json() for _ in range(200)]
    assert {a["result"] for a in answers} == {42}
    # Round robin over the list the directory gives, which the gateway reorders at each
    # refresh (SRV records of equal weight): even, not exactly alternate.
    counts = Counter(a["served_by"] for a in answers)
    assert set(counts) == {"calc-1", "calc-2"} and min(counts.values()) >= 60, counts
    body = client.get("/calc").json()
    assert body["service"] == "calc" and body["status"] == "calc is working"


def test_failover_under_a_request_loop_loses_no_request(stack, client):
    wait_until(lambda: mult_balanced(client), timeout=30, interval=0.2)
    def hold_down(proc: str) -> float:
        held.append(proc)
        return loop.between_requests(lambda: stack.hold_down(proc))

    def release_primaries() -> None:
        for proc in PRIMARIES:
            stack.release(proc)
        held.clear()

    # Kills land between two requests of the loop (see RequestLoop): what is tested is that
    # Caddy routes every later request around the dead replicas.
    with restored(stack, client) as held, RequestLoop(stack.url) as loop:
        loop.wait_for(lambda: len(loop.samples) >= 40)
        a_down = hold_down("mult-a")
        loop.wait_for(lambda: loop.count_since(a_down, "mult-b") >= 40)
        both_down = hold_down("mult-b")
        loop.wait_for(lambda: loop.count_since(both_down, "mult-backup") >= 40)
        restart = loop.between_requests(release_primaries)
        loop.wait_for(lambda: all(loop.count_since(restart, p) for p in PRIMARIES), timeout=30)
        back = time.monotonic()
        # A few requests of margin after both answered once, then a whole number of cycles.
        loop.wait_for(lambda: sum(1 for s in list(loop.samples) if s.started > back) >= 8 + 400)

    samples = loop.samples
    assert [s for s in samples if not s.ok] == []
    assert backup_only_when_down(samples, both_down)
    assert not any(s.served_by == "mult-backup" for s in samples if s.started > back)
    after = [s for s in samples if s.started > back][8:408]
    assert Counter(s.served_by for s in after) == {"mult-a": 300, "mult-b": 100}


def test_a_hung_replica_is_skipped_and_no_request_fails(stack, client):
    wait_until(lambda: mult_balanced(client), timeout=30, interval=0.2)
    pid = stack.service_pid("mult-a")
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = [client.get(PATH) for _ in range(20)]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert [r.status_code for r in answers] == [200] * 20
    # A request sent to the frozen mult-a times out (response_header_timeout) and is retried
    # on mult-b; then health checks keep mult-a out while it stays frozen.
    assert {r.json()["served_by"] for r in answers} == {"mult-b"}
    wait_until(lambda: mult_balanced(client), timeout=30, interval=0.2)


def test_json_503_when_no_mult_replica_can_answer(stack, client):
    wait_until(lambda: mult_balanced(client), timeout=30, interval=0.2)
    with restored(stack, client) as held:
        for proc in (*PRIMARIES, "mult-backup"):
            stack.hold_down(proc)
            held.append(proc)
        # Requests may still reach the backup until Caddy notices it is gone.
        wait_until(lambda: client.get(PATH).status_code == 503, timeout=15)
        response = client.get(PATH)
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"error": "no mult replica can answer", "status": 503}
        # calc is not affected.
        assert client.get("/sum", params={"op1": 1, "op2": 2}).json()["result"] == 3


@pytest.mark.parametrize("path", ["/sum", "/sub", "/mult"])
@pytest.mark.parametrize(("query", "operand", "problem"), [
    ("op2=1", "op1", "missing"),
    ("op1=1", "op2", "missing"),
    ("op1=1&op2=abc", "op2", "not a number"),
    ("op1=NaN&op2=1", "op1", "not a finite number"),
    ("op1=1&op2=Infinity", "op2", "not a finite number"),
    ("op1=1&op2=" + "9" * 65, "op2", "longer than 64 characters"),
])
def test_bad_operands_through_caddy_are_a_json_400(client, path, query, operand, problem):
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == f"invalid operand {operand}: {problem}"


def test_exact_results_and_overflow_through_caddy(client):
    assert client.get("/mult?op1=2&op2=3").text.startswith('{"op1": 2, "op2": 3, "result": 6,')
    assert '"result": 0.3,' in client.get("/sum?op1=0.1&op2=0.2").text
    big = "9" * 64
    assert client.get(f"/mult?op1={big}&op2={big}").json()["result"] == int(big) ** 2
    overflow = client.get("/mult?op1=1e999999&op2=1e999999")
    assert overflow.status_code == 400
    assert "exponent out of range" in overflow.json()["error"]
