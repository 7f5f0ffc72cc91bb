"""The users service's public routes through Caddy; its internal routes are not reachable."""

from __future__ import annotations

import secrets

import httpx


def test_register_login_me_logout_through_caddy(stack):
    name = f"duck{secrets.token_hex(4)}"
    created = httpx.post(f"{stack.url}/api/users/register", json={"account": name, "password": "quack quack"})
    assert created.status_code == 201
    duplicate = httpx.post(f"{stack.url}/api/users/register",
                           json={"account": name.upper(), "password": "x" * 9})
    assert duplicate.status_code == 409
    login = httpx.post(f"{stack.url}/api/users/login", json={"account": name, "password": "quack quack"})
    token = login.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert stack.get("/api/users/me", headers=auth).json()["account"] == name
    assert httpx.post(f"{stack.url}/api/users/logout", headers=auth).status_code == 204
    assert stack.get("/api/users/me", headers=auth).status_code == 401


def test_bad_input_through_caddy_is_json_400(stack):
    response = httpx.post(f"{stack.url}/api/users/register", json={"account": "", "password": "quack quack"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid account: empty"
    assert stack.get("/api/users/rules").json()["password_min_length"] == 8


def test_internal_routes_are_not_routed(stack):
    body = {"account": "anyone", "password": "anything"}
    assert httpx.post(f"{stack.url}/internal/verify", json=body).status_code == 404
    assert stack.get("/internal/accounts/anyone").status_code == 404
    for raw in ("/api/users/../../internal/verify", "/api/users/%2e%2e/%2e%2e/internal/verify",
                "/api/users/..%2f..%2finternal/verify"):
        with httpx.Client() as client:
            request = client.build_request("POST", f"{stack.url}/", json=body)
            request.url = request.url.copy_with(raw_path=raw.encode())
            response = client.send(request)
        assert response.status_code in (400, 404), (raw, response.status_code)


def loopback_client() -> httpx.Client:
    """A client on a loopback address of its own: to Caddy, another machine."""
    address = f"127.{secrets.randbelow(250) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address))


def test_guesses_sprayed_over_accounts_from_one_address_are_refused_others_are_not(stack):
    burst = 20  # FAILED_LOGIN_PER_ADDRESS_BURST's default
    name = f"duck{secrets.token_hex(4)}"
    assert httpx.post(f"{stack.url}/api/users/register",
                      json={"account": name, "password": "quack quack"}).status_code == 201
    with loopback_client() as sprayer, loopback_client() as other:
        for i in range(burst):
            # A forged X-Forwarded-For does not help: Caddy writes the address it sees instead.
            guess = sprayer.post(f"{stack.url}/api/users/login", headers={"X-Forwarded-For": f"10.9.9.{i}"},
                                 json={"account": f"{name}x{i}", "password": "Password1"})
            assert guess.status_code == 401, (i, guess.text)
        right = {"account": name, "password": "quack quack"}
        refused = sprayer.post(f"{stack.url}/api/users/login", json=right)  # even the right one
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"] == "too many failed password checks from this address"
        assert other.post(f"{stack.url}/api/users/login", json=right).status_code == 200
