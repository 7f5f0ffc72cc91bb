"""The gateway against hostile HTTP: oversized bodies and headers, forged Host headers.

One client's oversized requests must not hurt the others: each gets a JSON refusal, and the
users service is never marked down by Caddy for it (a 502 then 503s for everyone, before).
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from scripts.devkit.rawhttp import body_of, exchange, request_head

JSON = {"Content-Type": "application/json"}
LIMIT = 65536


@pytest.fixture(scope="module")
def account(stack) -> dict[str, str]:
    credentials = {"account": f"edge{secrets.token_hex(4)}", "password": "quack quack"}
    assert httpx.post(f"{stack.url}/api/users/register", json=credentials).status_code == 201
    return credentials


def test_repeated_30_mb_bodies_are_each_a_json_413_and_logins_keep_working(stack, account):
    big = b"x" * 30_000_000
    for _ in range(4):
        refused = httpx.post(f"{stack.url}/api/users/login", content=big, headers=JSON, timeout=30)
        assert refused.status_code == 413
        assert refused.json() == {"error": "Request Entity Too Large", "status": 413,
                                  "detail": f"the body is over the {LIMIT}-byte limit"}
        # Before, the upstream's reset became a 502, and users was marked down: 503 for 2 s.
        login = httpx.post(f"{stack.url}/api/users/login", json=account)
        assert login.status_code == 200, login.text
        wrong = httpx.post(f"{stack.url}/api/users/login", json={**account, "password": "not it!"})
        assert wrong.status_code == 401, wrong.text


def test_a_chunked_body_is_a_json_411_and_logins_keep_working(stack, account):
    def chunks():
        yield from body_of(3_000_000)

    refused = httpx.post(f"{stack.url}/api/users/login", content=chunks(), headers=JSON, timeout=30)
    assert refused.status_code == 411 and refused.json()["status"] == 411
    small = httpx.post(f"{stack.url}/api/users/login", content=iter([b'{"a": 1}']), headers=JSON)
    assert small.status_code == 411  # whatever its size: its length is not known in advance
    assert httpx.post(f"{stack.url}/api/users/login", json=account).status_code == 200


@pytest.mark.parametrize("path", ["/api/users/login", "/messages", "/jokes"])
def test_a_body_at_the_limit_passes_and_one_byte_more_is_refused_at_the_door(stack, path):
    at_limit = httpx.post(f"{stack.url}{path}", content=b" " * LIMIT, headers=JSON)
    assert at_limit.status_code == 400  # the service's verdict: blank is not JSON
    over = httpx.post(f"{stack.url}{path}", content=b" " * (LIMIT + 1), headers=JSON)
    assert over.status_code == 413 and over.json()["status"] == 413


def test_a_1_mb_body_then_a_request_on_the_same_connection_are_both_answered(stack):
    with httpx.Client(base_url=stack.url) as client:  # one keep-alive connection while it lasts
        refused = client.post("/api/users/login", content=b"x" * 1_000_000, headers=JSON)
        assert refused.status_code == 413 and refused.headers["Connection"] == "close"
        assert client.get("/api/users/rules").status_code == 200  # on a new connection
    # On the wire: one answer, then the connection ends; the request written after the body
    # (and the body, a request over and over) is never answered as a request of its own.
    next_request = request_head("GET", "/api/users/rules")
    answered = exchange(stack.http_port, [request_head("POST", "/api/users/login", body_length=1_000_000),
                                          *body_of(1_000_000, fill=next_request), next_request])
    assert answered.statuses == [413] and answered.answers[0].closes and answered.closed
    assert answered.rest == b""


@pytest.mark.parametrize("size", [20_000, 70_000, 200_000])
def test_a_large_header_is_a_json_431(stack, size):
    response = httpx.get(f"{stack.url}/api/users/rules", headers={"X-Big": "a" * size})
    assert response.status_code == 431
    body = response.json()
    assert body["status"] == 431 and "16384-byte limit" in body["detail"]


@pytest.mark.parametrize("path", ["/static//app.js", "/api/users//me", "/directory//ping", "/jokes//x",
                                  "/api/messages//x", "/dashboard//feed", "/mult//", "/static/x/"])
def test_no_route_redirects_to_a_forged_host(stack, path):
    response = httpx.get(f"{stack.url}{path}", headers={"Host": "evil.example"})
    assert "location" not in response.headers and response.status_code < 500, response.headers
    assert "evil.example" not in response.text
