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
