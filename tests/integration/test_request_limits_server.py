"""Oversized requests on a real socket, against the users service process under Hypercorn.

What a client sees on the wire: one JSON refusal, then the connection closed cleanly (never a
reset, which would lose the answer: through Caddy a 502, and the instance counted as down),
and nothing left of a refused body ever parsed as a next request.
"""

from __future__ import annotations

import json

import pytest

from scripts.devkit.rawhttp import body_of, exchange, request_head

FAST = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}
JSON = {"Content-Type": "application/json"}
LOGIN = "/api/users/login"
HEALTH = request_head("GET", "/health")


@pytest.fixture
def users(launcher):
    return launcher.start("apps.users", "users", **FAST)


def assert_refused_cleanly(answer_of, status: int) -> None:
    assert answer_of.statuses == [status], answer_of
    answer = answer_of.answers[0]
    assert answer.closes and answer.headers["content-type"] == "application/json"
    assert json.loads(answer.body)["status"] == status
    assert answer_of.closed and not answer_of.reset, "the connection must end with a clean close"
    assert answer_of.rest == b"", "nothing after the refusal: no part of the body read as a request"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_30_mb_body_is_one_json_413_then_a_clean_close(users, chunked):
    size = 30_000_000
    for _ in range(3):
        head = request_head("POST", LOGIN, headers=JSON, chunked=chunked,
                            body_length=None if chunked else size)
        answer_of = exchange(users.port, [head, *body_of(size, chunked=chunked)])
        assert_refused_cleanly(answer_of, 413)
        assert not answer_of.send_error, "the refused body was read to its end, not cut off"
    assert users.ready()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_nothing_of_a_refused_1_mb_body_is_read_as_the_next_request(users, chunked):
    size = 1_000_000
    # The body is a request, over and over: read as requests, its pieces would be answered.
    head = request_head("POST", LOGIN, headers=JSON, chunked=chunked, body_length=None if chunked else size)
    parts = [head, *body_of(size, chunked=chunked, fill=HEALTH), HEALTH]
    assert_refused_cleanly(exchange(users.port, parts), 413)


def test_a_body_within_the_limit_that_the_route_does_not_read_keeps_the_connection(users):
    size = 60_000  # logout reads no body: it answers 401 for the missing token
    head = request_head("POST", "/api/users/logout", body_length=size)
    answer_of = exchange(users.port, [head, *body_of(size), HEALTH], timeout=1)
    assert answer_of.statuses == [401, 200]
    assert not answer_of.answers[0].closes and not answer_of.closed


@pytest.mark.parametrize("size", [20_000, 70_000, 500_000])
def test_headers_over_the_limit_are_a_json_431(users, size):
    head = request_head("GET", "/api/users/rules", headers={"X-Big": "a" * size})
    assert_refused_cleanly(exchange(users.port, [head]), 431)
