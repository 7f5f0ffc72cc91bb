"""Durability and self-healing of the local stack: the runner brings a killed Redis back with
its data, a short chaos run meets its targets, and the data outlives the run."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import httpx
import pytest

import redis
from scripts.devkit import LocalStack, wait_until
from scripts.devkit.chaos import LocalTarget, chaos

JOKE = "Pourquoi les canards ont-ils des plumes ? Pour couvrir leur derrière."


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    stack = LocalStack().start()
    try:
        yield stack
    finally:
        stack.stop()


def redis_answers(stack: LocalStack) -> bool:
    client = redis.Redis(port=stack.redis_port, username="inspector", password="dev-only-inspector",
                         socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def test_a_killed_redis_is_restarted_with_its_data_and_the_services_recover(stack):
    added = httpx.post(f"{stack.url}/jokes", json={"joke": JOKE}, timeout=10)
    assert added.status_code == 201
    joke_id = added.json()["id"]
    jokes_pid = stack.service_pid("jokes")
    redis_pid = stack.service_pid("redis")

    os.kill(redis_pid, signal.SIGKILL)  # right after the write's reply: before any fsync
    # Between the kill and the restart the loop has no child: LookupError means "not yet".
    wait_until(lambda: stack.service_pid("redis") != redis_pid and redis_answers(stack), timeout=20,
               ignore=(LookupError,))
    assert stack.proc is not None and stack.proc.poll() is None  # the stack did not end

    # The jokes service was not restarted, and its next answers come from the restored data.
    wait_until(lambda: stack.get(f"/jokes/{joke_id}").status_code == 200, timeout=5)
    assert stack.get(f"/jokes/{joke_id}").json()["joke"] == JOKE
    assert stack.service_pid("jokes") == jokes_pid
    assert "redis" in stack.log() and "killed (exit 137); restarting" in stack.log()


def test_a_killed_caddy_is_restarted(stack):
    os.kill(stack.service_pid("caddy"), signal.SIGKILL)
    wait_until(lambda: _answers(stack, "/health"), timeout=20)
    assert stack.proc is not None and stack.proc.poll() is None


def _answers(stack: LocalStack, path: str) -> bool:
    try:
        return stack.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_short_chaos_run_meets_its_targets(stack):
    import asyncio

    report = asyncio.run(chaos(LocalTarget(stack), duration=16, every=5, warmup=2, settle=3,
                               freeze_for=2, workers=3, pause=0.02, timeout=15, seed=7))
    print(report.render(2))
    print(report.result_line())
    assert [f.kind for f in report.faults][:3] == ["kill redis", "kill", "freeze"]
    assert report.written > 0 and report.lost == []
    assert report.failed == 0
    # A kill can cut at most the responses its replica was writing, one per loop.
    assert report.cut <= 3 * sum(f.kind == "kill" for f in report.faults)
    assert report.bad_outage_answers == 0  # only JSON 503s with Retry-After, from Redis routes
    assert report.max_recovery <= 5


def test_the_data_outlives_the_run_and_the_embedded_redis_stops_last(stack):
    joke_id = httpx.post(f"{stack.url}/jokes", json={"joke": JOKE}, timeout=10).json()["id"]
    assert stack.stop() == 0
    assert stack.leaked == [] and not stack.process_group_alive()
    # Redis stops last, so every service could leave the directory before it went.
    log = stack.log()
    assert "could not deregister" not in log
    stopped = re.findall(r"\| (\S+) stopped \(rc=", log)
    assert stopped[-1] == "redis" and len(stopped) == len(set(stopped)) >= 3, stopped
    # The same run directory, with only what serves the joke: Redis, the directory, jokes, Caddy.
    again = LocalStack(services=["jokes"], CANADUCK_RUN_DIR=str(stack.run_dir)).start()
    try:
        assert again.get(f"/jokes/{joke_id}").json()["joke"] == JOKE
    finally:
        assert again.stop() == 0
