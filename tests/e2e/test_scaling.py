"""Routing follows the directory: instances that join, leave, die or lie, under a request loop
through Caddy, and a service's login that tries to take another's name. Nothing is told to the
gateway; every instance here is started by hand with nothing but a service name Caddy routes.

The stack is shared: every test leaves calc-1 and calc-2 running and routed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import redis
from scripts.devkit import LocalStack, RedisServer, ServiceLauncher, wait_until
from scripts.devkit.requestloop import RequestLoop
from scripts.devkit.scaling import (
    FIRST_REQUEST_LIMIT_MS,
    LAST_REQUEST_LIMIT_MS,
    SUM_ANSWER,
    SUM_PATH,
    DirectoryWatch,
    verdict,
    wait_for_instances,
)

RUNNER_CALC = {"calc-1", "calc-2"}


@pytest.fixture
def launcher(stack: LocalStack) -> Iterator[ServiceLauncher]:
    """Starts more instances against the stack's Redis, with the stack's own timings."""
    launcher = ServiceLauncher(RedisServer(port=stack.redis_port))
    yield launcher
    launcher.stop_all()


def start_calc(launcher: ServiceLauncher, name: str):
    return launcher.start("apps.calc", "calc", wait=False, INSTANCE_ID=name, DIRECTORY_TTL="10",
                          HEARTBEAT_INTERVAL="3", DRAIN_SECONDS="2")


def test_calc_scales_2_4_2_with_no_failed_request(stack, launcher):
    wait_for_instances(stack.url, SUM_PATH, 2)
    with DirectoryWatch(stack.url, "calc") as watch, \
            RequestLoop(stack.url, path=SUM_PATH, expected=SUM_ANSWER) as loop:
        t0 = time.monotonic()
        extras = [start_calc(launcher, name) for name in ("calc-3", "calc-4")]
        loop.wait_for(lambda: {"calc-3", "calc-4"} <= {s.served_by for s in list(loop.samples)}, timeout=30)
        time.sleep(1)
        for extra in extras:  # scale down: SIGTERM, as compose and Ctrl-C do
            os.killpg(extra.proc.pid, signal.SIGTERM)
        for extra in extras:
            assert extra.proc.wait(20) == 0
        time.sleep(0.5)  # one more poll of the directory
    result = verdict(loop.samples, watch, t0)
    assert result.failed == 0, [s for s in loop.samples if not s.ok][:5]
    assert {"calc-1", "calc-2", "calc-3", "calc-4"} <= {s.served_by for s in loop.samples}
    # Each new instance answered within 2 s of registering...
    assert set(result.first_request_ms) == {"calc-3", "calc-4"}
    assert result.worst_first_ms <= FIRST_REQUEST_LIMIT_MS, result.first_request_ms
    # ...and each leaving one got its last request soon after it left the directory, while it
    # was still serving (DRAIN_SECONDS=2): nothing failed above.
    assert set(result.last_request_ms) == {"calc-3", "calc-4"}
    assert result.worst_last_ms <= LAST_REQUEST_LIMIT_MS, result.last_request_ms
    assert watch.current() == RUNNER_CALC


def test_a_killed_instance_costs_no_request_and_leaves_within_its_ttl(stack, launcher):
    doomed = start_calc(launcher, "calc-doomed")
    wait_for_instances(stack.url, SUM_PATH, 3)
    with DirectoryWatch(stack.url, "calc") as watch, \
            RequestLoop(stack.url, path=SUM_PATH, expected=SUM_ANSWER) as loop:
        loop.wait_for(lambda: len(loop.samples) >= 30)
        killed = loop.between_requests(lambda: os.killpg(doomed.proc.pid, signal.SIGKILL))
        wait_until(lambda: watch.seen["calc-doomed"].left is not None, timeout=10 + 2, interval=0.1)
        time.sleep(1.5)  # past the gateway's refresh
    assert [s for s in loop.samples if not s.ok] == []  # refused dials were retried elsewhere
    gone = watch.seen["calc-doomed"].left
    assert gone is not None and gone - killed <= 10 + 0.5  # DIRECTORY_TTL
    assert not any(s.served_by == "calc-doomed" for s in loop.samples if s.started > killed)
    assert {s.served_by for s in loop.samples if s.started > gone} == RUNNER_CALC


def test_hostile_directory_entries_never_break_routing_for_the_others(stack):
    # calc's own Redis user writes calc's hash: a buggy or hostile instance could put this in.
    client = redis.Redis(port=stack.redis_port, username="calc", password="dev-only-calc")
    hostile = {
        "huge": '{"service":"calc","instance":"huge","url":"http://127.0.0.1:9","meta":{"x":"'
                + "y" * 200_000 + '"}}',
        "garbage": b"\x00\xff{not json",
        "bad-url": '{"service":"calc","instance":"bad-url","url":"http://[::1:5000"}',
        "liar": '{"service":"mult","instance":"liar","url":"http://127.0.0.1:9"}',
        "not-me": '{"service":"calc","instance":"someone-else","url":"http://127.0.0.1:9"}',
        # A well-formed entry for an address where nothing listens: like a killed instance.
        "nobody-home": '{"service":"calc","instance":"nobody-home","url":"http://127.0.0.1:9"}',
    }
    try:
        client.hset("canaduck:directory:calc", mapping=hostile)
        client.publish("canaduck:events", '{"kind":"registered","service":"calc"}')
        time.sleep(1.5)  # the gateway has read the directory since
        with RequestLoop(stack.url, path=SUM_PATH, expected=SUM_ANSWER) as loop:
            loop.wait_for(lambda: len(loop.samples) >= 200)
        assert [s for s in loop.samples if not s.ok] == []
        assert {s.served_by for s in loop.samples} == RUNNER_CALC
        assert stack.get("/directory").status_code == 200  # the HTTP view copes too
    finally:
        client.hdel("canaduck:directory:calc", *hostile)
        client.close()


class Listener:
    """A TCP port that counts the connections made to it: where a hijacked route would lead."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_another_services_login_cannot_route_api_users_elsewhere(stack):
    # The attack: with the ircd's Redis login, make Caddy send part of /api/users/* (passwords
    # in clear on /login) to an address of the attacker's choosing.
    evil = Listener()
    ircd = redis.Redis(port=stack.redis_port, username="ircd", password="dev-only-ircd",
                       decode_responses=True)
    registry = redis.Redis(port=stack.redis_port, username="directory", password="dev-only-directory")
    entry = json.dumps({"service": "users", "instance": "evil", "url": f"http://127.0.0.1:{evil.port}",
                        "channel": "canaduck:inbox:users", "started_at": 0, "version": "", "meta": {}})
    real = {item["url"] for item in stack.get("/directory/users").json()["instances"]}
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            ircd.hset("canaduck:directory:users", "evil", entry)
        with pytest.raises(redis.exceptions.NoPermissionError):
            ircd.eval("return redis.call('HSET', KEYS[1], 'evil', ARGV[1])", 1,
                      "canaduck:directory:users", entry)
        # What its login can do: lie in its own hash, name users in the index, publish events.
        ircd.hset("canaduck:directory:ircd", "evil", entry)
        ircd.sadd("canaduck:services", "users")
        ircd.publish("canaduck:events", '{"kind":"registered","service":"users","instance":"evil"}')
        time.sleep(1.5)  # the directory and the gateway have read it since
        answers = [stack.get("/api/users/rules") for _ in range(30)]
        assert [r.status_code for r in answers] == [200] * 30
        assert evil.connections == 0
        assert {item["url"] for item in stack.get("/directory/users").json()["instances"]} == real
        assert "evil" not in {item["instance"] for item in stack.get("/directory/ircd").json()["instances"]}
        # The control: the same entry, written where only the directory's own login may, is
        # routed (Caddy dials the listener, which hangs up, and retries on the real instance).
        registry.hset("canaduck:directory:users", "evil", entry)
        registry.publish("canaduck:events", '{"kind":"registered","service":"users","instance":"evil"}')
        time.sleep(1.5)
        for _ in range(30):
            stack.get("/api/users/rules")
        assert evil.connections > 0
    finally:
        registry.hdel("canaduck:directory:users", "evil")
        ircd.hdel("canaduck:directory:ircd", "evil")
        registry.publish("canaduck:events", '{"kind":"deregistered","service":"users","instance":"evil"}')
        ircd.close()
        registry.close()
        evil.close()
