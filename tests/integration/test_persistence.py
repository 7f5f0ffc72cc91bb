"""Durability with a real server: what users wrote survives a killed Redis (the append-only
file of redis/redis.conf), and what the services seeded comes back by itself when Redis
comes back empty."""

from __future__ import annotations

import signal

import httpx

from apps.jokes.store import PACKAGED_JOKES, joke_id, read_jokes_file
from scripts.devkit import running_server, stop_process, wait_until

KEY = "canaduck:jokes"
SEEDED = read_jokes_file(PACKAGED_JOKES)


def test_acknowledged_jokes_survive_a_kill_9_of_redis(launcher, redis_server):
    jokes = launcher.start("apps.jokes", "jokes")
    with httpx.Client(base_url=jokes.url, timeout=10) as client:
        added = []
        for n in range(50):
            response = client.post("/jokes", json={"joke": f"Blague numéro {n}."})
            assert response.status_code == 201
            added.append(response.json()["id"])
        assert redis_server.proc is not None
        stop_process(redis_server.proc, signal.SIGKILL)  # right after the last reply: no fsync yet
        redis_server.start()  # same directory: the append-only file is read back

        # The service recovers by itself (no restart), and its first answers are right.
        missing = [id_ for id_ in added if client.get(f"/jokes/{id_}").status_code != 200]
        assert missing == []
        assert jokes.proc.poll() is None


def test_after_a_flushall_the_seeded_jokes_come_back_without_a_request(launcher, admin):
    launcher.start("apps.jokes", "jokes")
    admin.flushall()
    wait_until(lambda: admin.hlen(KEY) == len(SEEDED), timeout=5)  # next heartbeat (0.5 s here)


def test_an_empty_restarted_server_never_answers_404_for_a_seeded_joke(launcher):
    # An external Redis without persistence: a restart loses everything.
    with running_server("appendonly no") as bare:
        launcher.server = bare
        jokes = launcher.start("apps.jokes", "jokes")
        bare.restart()
        wait_until(jokes.ready, timeout=10)
        # The first request after the restart already finds them (it puts them back itself).
        answer = jokes.get(f"/jokes/{joke_id(SEEDED[7])}")
        assert answer.status_code == 200, (answer.text, jokes.log())
        assert answer.json()["joke"] == SEEDED[7]
        assert jokes.get("/joke").status_code == 200
        assert jokes.proc.poll() is None
