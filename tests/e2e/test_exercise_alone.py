"""An exercise alone: `scripts/up ping pong` runs the rally and only what it needs (Redis, the
directory, the broker, Caddy), and the rally is played through Caddy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.devkit import LocalStack, wait_until


@pytest.fixture(scope="module")
def rally_alone() -> Iterator[LocalStack]:
    stack = LocalStack(services=["ping", "pong"]).start()
    try:
        yield stack
    finally:
        stack.stop()
    assert stack.leaked == []


def test_only_the_players_and_what_they_need_run(rally_alone):
    assert rally_alone.process_names() == {"redis", "directory", "broker", "ping", "pong", "caddy"}
    assert set(rally_alone.get("/directory").json()["services"]) == {"directory", "broker", "ping", "pong"}


def test_the_rally_advances_through_caddy(rally_alone):
    wait_until(lambda: rally_alone.get("/rally").json()["longest_rally"] >= 3, timeout=20)
    shots = rally_alone.get("/rally").json()["players"]["ping"]["shots"]
    wait_until(lambda: rally_alone.get("/rally").json()["players"]["ping"]["shots"] > shots, timeout=10)
    assert rally_alone.get("/rally").json()["transport"] == "broker"


@pytest.mark.parametrize("path", ["/sum?op1=1&op2=2", "/mult?op1=6&op2=7", "/fullinfo?city=Rodez"])
def test_a_route_to_a_service_not_started_is_a_json_error(rally_alone, path):
    response = rally_alone.get(path)
    assert response.status_code in (502, 503)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == response.status_code
