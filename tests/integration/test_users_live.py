"""The users service as a process, on the real server with its ACL user."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

FAST = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}


@pytest.mark.cluster
def test_register_verify_login_with_the_users_acl_user(launcher, admin):
    users = launcher.start("apps.users", "users", **FAST)
    url = users.url
    created = httpx.post(f"{url}/api/users/register", json={"account": "Jilles", "password": "sesame-1"})
    assert created.status_code == 201
    assert admin.hget("canaduck:users:{jilles}:account", "password").startswith("$argon2id$")
    ok = httpx.post(f"{url}/internal/verify", json={"account": "jilles", "password": "sesame-1"})
    assert ok.json() == {"account": "Jilles"}
    session = httpx.post(f"{url}/api/users/login", json={"account": "JILLES", "password": "sesame-1"}).json()
    me = httpx.get(f"{url}/api/users/me", headers={"Authorization": f"Bearer {session['token']}"})
    assert me.json()["account"] == "Jilles"
    [field] = admin.hkeys("canaduck:users:{jilles}:sessions")
    assert 0 < admin.hpttl("canaduck:users:{jilles}:sessions", field)[0] <= 7 * 24 * 3600 * 1000
    assert users.get("/internal/accounts/jilles").status_code == 200
    assert "sesame-1" not in users.log()


def test_racing_registrations_across_two_instances_make_one_account(launcher, admin):
    first = launcher.start("apps.users", "users", **FAST)
    second = launcher.start("apps.users", "users", **FAST)

    def attempt(i: int) -> int:
        url = (first, second)[i % 2].url
        body = {"account": "Racer", "password": f"password-{i}"}
        return httpx.post(f"{url}/api/users/register", json=body, timeout=10).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(attempt, range(8)))
    assert codes == [201] + [409] * 7
    assert admin.hlen("canaduck:users:{racer}:account") == 3


def test_a_minimum_password_length_of_one_for_conformance_runs(launcher):
    users = launcher.start("apps.users", "users", PASSWORD_MIN_LENGTH="1", **FAST)
    response = httpx.post(f"{users.url}/api/users/register", json={"account": "bar", "password": "pw"})
    assert response.status_code == 201


@pytest.mark.cluster
def test_failed_checks_are_limited_per_client_address_with_the_users_acl_user(launcher, admin):
    users = launcher.start("apps.users", "users", FAILED_LOGIN_PER_ADDRESS_BURST="3", **FAST)

    def login(i: int, client: str) -> int:
        body = {"account": f"victim{i}", "password": "Password1"}
        # The test is on loopback, a trusted proxy: it speaks for its client as Caddy does.
        return httpx.post(f"{users.url}/api/users/login", json=body,
                          headers={"X-Forwarded-For": client}).status_code

    assert [login(i, "198.51.100.7") for i in range(4)] == [401, 401, 401, 429]
    assert login(9, "198.51.100.8") == 401
    assert 0 < admin.pttl("canaduck:users:{ip:198.51.100.7}:failures") <= 4 * 6_000
    sasl = httpx.post(f"{users.url}/internal/verify", json={"account": "victim0", "password": "Password1",
                                                            "address": "198.51.100.7"})
    assert sasl.status_code == 429 and sasl.json()["error"].endswith("from this address")
