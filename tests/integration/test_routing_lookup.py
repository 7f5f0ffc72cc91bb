"""The directory's DNS interface with real processes: it follows instances as they come and go,
and an instance that is told to stop leaves it before it stops serving."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from dnslib import DNSRecord

import redis
from scripts.devkit import free_port, wait_until


def srv_ports(dns_port: int, service: str) -> list[int]:
    """The ports the directory's DNS lists for `service` (empty when it has none)."""
    try:
        raw = DNSRecord.question(f"{service}.service.canaduck", "SRV").send("127.0.0.1", dns_port, timeout=1)
    except OSError:
        return []
    return sorted(r.rdata.port for r in DNSRecord.parse(raw).rr)


@pytest.fixture
def dns_port(launcher) -> int:
    port = free_port()
    launcher.start("apps.directory", "directory", DNS_PORT=str(port))
    return port


def test_a_new_instance_is_listed_within_a_second(launcher, dns_port):
    first = launcher.start("apps.calc", "calc")
    wait_until(lambda: srv_ports(dns_port, "calc") == [first.port], timeout=2)
    second = launcher.start("apps.calc", "calc", wait=False)
    wait_until(second.ready, timeout=20)
    ready = time.monotonic()
    wait_until(lambda: srv_ports(dns_port, "calc") == sorted([first.port, second.port]), timeout=2)
    assert time.monotonic() - ready < 2.0  # the registration event triggers a read at once


def test_sigterm_leaves_the_dns_answer_then_drains_then_exits(launcher, dns_port) -> None:
    svc = launcher.start("apps.calc", "calc", DRAIN_SECONDS="1.5")
    wait_until(lambda: srv_ports(dns_port, "calc") == [svc.port], timeout=2)
    outcome: dict[str, float] = {}

    def stop() -> None:
        outcome["status"] = svc.stop(signal.SIGTERM)
        outcome["exited"] = time.monotonic()

    sent = time.monotonic()
    waiter = threading.Thread(target=stop)
    waiter.start()
    wait_until(lambda: srv_ports(dns_port, "calc") == [], timeout=1)
    gone = time.monotonic() - sent
    # Out of the answer, and still serving while the gateway catches up.
    assert svc.get("/health").status_code == 200
    assert svc.get("/ready").status_code == 503
    waiter.join(10)
    assert outcome["status"] == 0
    assert gone < 0.5 and outcome["exited"] - sent >= 1.5


def test_a_killed_instance_leaves_the_answer_within_its_ttl(launcher, dns_port):
    svc = launcher.start("apps.calc", "calc")
    wait_until(lambda: srv_ports(dns_port, "calc") == [svc.port], timeout=2)
    svc.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: srv_ports(dns_port, "calc") == [], timeout=4)
    assert time.monotonic() - killed <= 2 + 0.5  # DIRECTORY_TTL=2 in tests, read every 0.25 s


def test_hostile_entries_written_by_hand_leave_the_others_routed(launcher, dns_port, admin):
    svc = launcher.start("apps.calc", "calc")
    admin.hset("canaduck:directory:calc", mapping={
        "huge": '{"service":"calc","instance":"huge","url":"http://127.0.0.1:1","meta":{"x":"'
                + "y" * 1_000_000 + '"}}',
        "garbage": "\x00\xff not json",
        "bad-url": '{"service":"calc","instance":"bad-url","url":"http://[::1"}',
        "liar": '{"service":"mult","instance":"liar","url":"http://127.0.0.1:2"}',
    })
    admin.publish("canaduck:events", '{"kind":"registered","service":"calc"}')
    wait_until(lambda: srv_ports(dns_port, "calc") == [svc.port], timeout=2)
    time.sleep(0.5)  # a few more reads of the hash
    assert srv_ports(dns_port, "calc") == [svc.port]
    assert srv_ports(dns_port, "mult") == []


def test_a_service_cannot_get_another_services_name_routed_to_it(launcher, dns_port, redis_server):
    users = launcher.start("apps.users", "users")
    wait_until(lambda: srv_ports(dns_port, "users") == [users.port], timeout=2)
    calc = redis.Redis.from_url(redis_server.url("calc"), decode_responses=True)
    evil = '{"service":"users","instance":"evil","url":"http://127.0.0.1:9"}'
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.hset("canaduck:directory:users", "evil", evil)
    # What calc's login can do: lie in its own hash, name users in the index, publish events.
    calc.hset("canaduck:directory:calc", "evil", evil)
    calc.sadd("canaduck:services", "users")
    calc.publish("canaduck:events", '{"kind":"registered","service":"users","instance":"evil"}')
    time.sleep(0.5)  # a few reads of the directory
    assert srv_ports(dns_port, "users") == [users.port]
    assert srv_ports(dns_port, "calc") == []
    calc.close()
