"""A service's life in the directory, with real processes and a real server."""

import json
import signal
import time

import pytest

from scripts.devkit import running_server, wait_until

KEY = "canaduck:directory:directory"  # the directory service's own hash: field = instance


def fields(admin) -> set[str]:
    return set(admin.hkeys(KEY))


@pytest.mark.cluster
def test_a_started_service_is_registered_with_a_ttl(launcher, admin):
    svc = launcher.start("apps.directory", "directory")
    field = svc.env["INSTANCE_ID"]
    entry = json.loads(admin.hget(KEY, field))
    assert entry["url"] == svc.url and entry["channel"] == "canaduck:inbox:directory"
    assert entry["service"] == "directory" and entry["instance"] == field
    (ttl_ms,) = admin.hpttl(KEY, field)
    assert 0 < ttl_ms <= 2000
    assert admin.smembers("canaduck:services") == {"directory"}


def test_sigkill_vanishes_within_the_ttl(launcher, admin):
    svc = launcher.start("apps.directory", "directory")
    field = svc.env["INSTANCE_ID"]
    svc.stop(signal.SIGKILL)
    killed = time.monotonic()
    assert field in fields(admin)  # nobody deregistered it
    wait_until(lambda: field not in fields(admin), timeout=2 + 1)
    assert time.monotonic() - killed <= 2 + 0.5  # DIRECTORY_TTL=2 in tests


@pytest.mark.cluster
def test_sigterm_removes_the_entry_at_once(launcher, admin):
    svc = launcher.start("apps.directory", "directory")
    field = svc.env["INSTANCE_ID"]
    assert svc.stop(signal.SIGTERM) == 0
    assert field not in fields(admin)


def test_redis_restart_services_reregister_by_themselves(launcher, admin, redis_server):
    svc = launcher.start("apps.directory", "directory")
    field = svc.env["INSTANCE_ID"]
    redis_server.restart(down_for=1.0)  # the hash and the index are gone with the old process
    fresh = redis_server.admin()
    wait_until(lambda: field in fields(fresh), timeout=10)
    wait_until(lambda: fresh.smembers("canaduck:services") == {"directory"}, timeout=5)
    wait_until(svc.ready, timeout=5)
    assert svc.proc.poll() is None
    assert "Redis is back" in svc.log()


def test_a_server_without_hash_field_expiry_is_refused_with_one_line(launcher):
    with running_server('rename-command HPEXPIRE ""', 'rename-command HPTTL ""') as old:
        launcher.server = old
        svc = launcher.start("apps.directory", "directory", wait=False)
        assert svc.proc.wait(15) == 2
    lines = svc.log().strip().splitlines()
    assert len(lines) == 1
    assert "lacks hash-field expiry" in lines[0] and "Redis >= 7.4 or Valkey >= 9.0" in lines[0]


def test_a_wrong_password_fails_within_seconds_with_a_clear_line(launcher):
    svc = launcher.start("apps.directory", "directory", wait=False,
                         REDIS_URL=launcher.server.url("directory", "wrong-password"))
    # Within seconds: a refused login is not retried for REDIS_WAIT (30 s). No tighter bound:
    # on a loaded machine the interpreter's start-up alone can take seconds.
    assert svc.proc.wait(15) == 2
    assert "Redis refused the login" in svc.log()


@pytest.mark.parametrize("redis_wait", ["1"])
def test_no_server_at_all_fails_after_redis_wait(launcher, redis_wait):
    from scripts.devkit import free_port

    svc = launcher.start("apps.directory", "directory", wait=False, REDIS_WAIT=redis_wait,
                         REDIS_URL=f"redis://directory:x@127.0.0.1:{free_port()}/0")
    # What is checked is the exit status and the line (which names the 1 s): the bound on
    # the wait only stops a hung process, and a loaded machine takes seconds to start Python.
    assert svc.proc.wait(30) == 2
    assert "did not answer within 1 s" in svc.log()


def test_static_entries_exercise_2_1_have_no_ttl(launcher, admin):
    static = json.dumps([{"service": "weather", "url": "http://10.0.0.7:5000"}])
    launcher.start("apps.directory", "directory", DIRECTORY_STATIC=static)
    weather = "canaduck:directory:weather"  # written by the directory's user, the registry's
    assert admin.hpttl(weather, "static") == [-1]
    assert json.loads(admin.hget(weather, "static"))["url"] == "http://10.0.0.7:5000"
    assert "weather" in admin.smembers("canaduck:services")


def test_a_bad_static_list_refuses_to_start(launcher):
    svc = launcher.start("apps.directory", "directory", wait=False,
                         DIRECTORY_STATIC='[{"service": "Bad Name", "url": "nope"}]')
    assert svc.proc.wait(10) == 2
    assert "invalid static directory list" in svc.log()


