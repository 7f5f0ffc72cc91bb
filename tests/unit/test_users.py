"""The users service on fakeredis: accounts, SASL checks, sessions, and every bad input."""

from __future__ import annotations

import asyncio
import logging

import pytest

from apps.users.app import create_app
from apps.users.passwords import Hasher
from apps.users.settings import UsersSettings

FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}


def make_app(redis, **settings):
    return create_app(UsersSettings(instance_id="users-1", **{**FAST, **settings}), redis=redis)


@pytest.fixture
def client(redis):
    return make_app(redis).test_client()


async def register(client, account="Alice", password="correct horse"):
    return await client.post("/api/users/register", json={"account": account, "password": password})


async def login(client, account="Alice", password="correct horse"):
    return await client.post("/api/users/login", json={"account": account, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_stores_an_argon2id_hash_never_the_password(client, redis):
    response = await register(client)
    assert response.status_code == 201
    body = await response.get_json()
    assert body["account"] == "Alice" and body["created"] > 0
    stored = await redis.hgetall("canaduck:users:{alice}:account")
    assert stored[b"name"] == b"Alice"
    assert stored[b"password"].startswith(b"$argon2id$")
    assert b"correct horse" not in b"".join(stored.values())


async def test_a_name_is_taken_whatever_its_case(client):
    assert (await register(client)).status_code == 201
    duplicate = await register(client, "ALICE", "another password")
    assert duplicate.status_code == 409
    assert (await duplicate.get_json())["error"] == "account exists"


async def test_simultaneous_registrations_of_one_name_make_one_account(redis):
    client = make_app(redis).test_client()
    results = await asyncio.gather(*(register(client, "Bob", f"password-{i}") for i in range(5)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409]
    winner = next(i for i, r in enumerate(results) if r.status_code == 201)
    assert (await login(client, "bob", f"password-{winner}")).status_code == 200


async def test_verify_is_sasls_check_and_answers_the_registered_spelling(client):
    await register(client, "Alice")
    ok = await client.post("/internal/verify", json={"account": "aLiCe", "password": "correct horse"})
    assert ok.status_code == 200 and await ok.get_json() == {"account": "Alice"}
    for account, password in [("Alice", "wrong horse"), ("nobody", "correct horse"), ("Alice", "\x01")]:
        bad = await client.post("/internal/verify", json={"account": account, "password": password})
        assert bad.status_code == 401, (account, password)
        assert (await bad.get_json())["error"] == "invalid credentials"


async def test_lookup_tells_who_owns_a_nick(client):
    await register(client, "Alice")
    found = await client.get("/internal/accounts/ALICE")
    assert found.status_code == 200 and (await found.get_json())["account"] == "Alice"
    missing = await client.get("/internal/accounts/bob")
    assert missing.status_code == 404 and (await missing.get_json())["error"] == "no such account"
    bad = await client.get("/internal/accounts/1nope")
    assert bad.status_code == 400 and (await bad.get_json())["parameter"] == "account"


async def test_login_me_logout(client):
    await register(client)
    response = await login(client, "alice")
    assert response.status_code == 200
    session = await response.get_json()
    assert session["account"] == "Alice" and session["expires_in"] == 7 * 24 * 3600
    me = await client.get("/api/users/me", headers=bearer(session["token"]))
    assert me.status_code == 200 and (await me.get_json())["account"] == "Alice"
    check = await client.post("/internal/sessions/check", json={"token": session["token"]})
    assert await check.get_json() == {"account": "Alice"}
    assert (await client.post("/api/users/logout", headers=bearer(session["token"]))).status_code == 204
    after = await client.get("/api/users/me", headers=bearer(session["token"]))
    assert after.status_code == 401 and after.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.post("/api/users/logout", headers=bearer(session["token"]))).status_code == 401


async def test_sessions_expire_server_side(client, redis):
    await register(client)
    token = (await (await login(client)).get_json())["token"]
    [field] = await redis.hkeys("canaduck:users:{alice}:sessions")
    assert token.split(".")[1].encode() not in field  # only a digest is stored
    [ttl_ms] = await redis.execute_command("HPTTL", "canaduck:users:{alice}:sessions", "FIELDS", 1, field)
    assert 0 < ttl_ms <= 7 * 24 * 3600 * 1000


async def test_wrong_login_is_401_and_says_nothing_more(client):
    await register(client)
    for account, password in [("Alice", "wrong"), ("Nobody", "correct horse")]:
        response = await login(client, account, password)
        assert response.status_code == 401
        assert await response.get_json() == {"error": "invalid credentials", "status": 401}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                                     bearer("garbage"), bearer("YWxpY2U.short"),
                                     bearer("!!!." + "x" * 43), bearer("QUxJQ0U." + "x" * 43)])
async def test_bad_tokens_are_401(client, headers):
    await register(client)
    response = await client.get("/api/users/me", headers=headers)
    assert response.status_code == 401


async def test_changing_the_password_ends_every_session(client):
    await register(client)
    first = (await (await login(client)).get_json())["token"]
    second = (await (await login(client)).get_json())["token"]
    wrong = await client.post("/api/users/password", headers=bearer(first),
                              json={"password": "nope", "new_password": "battery staple"})
    assert wrong.status_code == 403
    changed = await client.post("/api/users/password", headers=bearer(first),
                                json={"password": "correct horse", "new_password": "battery staple"})
    assert changed.status_code == 200
    fresh = (await changed.get_json())["token"]
    for old in (first, second):
        assert (await client.get("/api/users/me", headers=bearer(old))).status_code == 401
    assert (await client.get("/api/users/me", headers=bearer(fresh))).status_code == 200
    assert (await login(client)).status_code == 401
    assert (await login(client, password="battery staple")).status_code == 200


async def test_changing_the_password_needs_a_session_and_a_good_new_one(client):
    await register(client)
    token = (await (await login(client)).get_json())["token"]
    no_session = await client.post("/api/users/password",
                                   json={"password": "correct horse", "new_password": "battery staple"})
    assert no_session.status_code == 401
    short = await client.post("/api/users/password", headers=bearer(token),
                              json={"password": "correct horse", "new_password": "short"})
    assert short.status_code == 400
    assert (await short.get_json())["error"] == "invalid new_password: shorter than 8 characters"


@pytest.mark.parametrize(("payload", "problem"), [
    ({"account": "", "password": "correct horse"}, "invalid account: empty"),
    ({"account": "9lives", "password": "correct horse"}, "invalid account: not a nick"),
    ({"account": "a b", "password": "correct horse"}, "invalid account: not a nick"),
    ({"account": "#chan", "password": "correct horse"}, "invalid account: not a nick"),
    ({"account": "x" * 31, "password": "correct horse"}, "invalid account: not a nick"),
    ({"account": "x" * 10_000, "password": "correct horse"}, "invalid account: not a nick"),
    ({"account": "Alice", "password": ""}, "invalid password: empty"),
    ({"account": "Alice", "password": "        "}, "invalid password: empty"),
    ({"account": "Alice", "password": "short"}, "invalid password: shorter than 8 characters"),
    ({"account": "Alice", "password": "x" * 257}, "invalid password: longer than 256 characters"),
    ({"account": "Alice", "password": "nul\x00in the middle"}, "invalid password: contains a control"),
    ({"account": "Alice"}, "invalid password"),
    ({"password": "correct horse"}, "invalid account"),
    ({"account": 42, "password": "correct horse"}, "invalid account"),
    ({"account": "Alice", "password": "correct horse", "admin": True}, "invalid admin"),
])
async def test_bad_registrations_are_400_naming_the_problem(client, redis, payload, problem):
    response = await client.post("/api/users/register", json=payload)
    assert response.status_code == 400
    assert (await response.get_json())["error"].startswith(problem)
    assert await redis.keys("canaduck:users:*") == []


async def test_a_body_that_is_not_json_is_400(client):
    response = await client.post("/api/users/register", data=b"{nope",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400


async def test_the_minimum_length_is_a_setting(redis):
    client = make_app(redis, password_min_length=1).test_client()
    assert (await register(client, "jilles", "s")).status_code == 201


async def test_passwords_are_normalised(client):
    await register(client, "Zoe", "caf\u00e9 au lait")  # é precomposed
    assert (await login(client, "Zoe", "cafe\u0301 au lait")).status_code == 200  # e + combining accent


async def test_a_hash_made_with_an_older_cost_is_redone_at_login(redis):
    old = make_app(redis, argon2_time_cost=1)
    await register(old.test_client())
    before = await redis.hget("canaduck:users:{alice}:account", "password")
    new = make_app(redis, argon2_time_cost=2)
    assert (await login(new.test_client())).status_code == 200
    after = await redis.hget("canaduck:users:{alice}:account", "password")
    assert before != after and b"t=2" in after


async def test_passwords_never_reach_the_log(redis, caplog):
    client = make_app(redis).test_client()
    with caplog.at_level(logging.DEBUG):
        await register(client, "Alice", "hunter2hunter2")
        await login(client, "Alice", "wrong-hunter2")
        await client.post("/api/users/register", json={"account": "Bob", "password": "x\x01hunter2"})
    assert "hunter2" not in caplog.text


async def test_repeated_wrong_passwords_are_slowed_down_per_account(redis):
    first, second = (make_app(redis, failed_login_burst=3).test_client() for _ in range(2))
    await register(first)
    await register(first, "Bob")
    for client in (first, second, first):  # two replicas share the count
        assert (await login(client, password="guess")).status_code == 401
    throttled = await client_verify(second, "Alice", "correct horse")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    body = await throttled.get_json()
    assert body["error"] == "too many failed password checks for this account" and body["retry_after"] > 0
    assert (await login(first, "bob")).status_code == 200  # other accounts are not affected
    assert 0 < await redis.pttl("canaduck:users:{alice}:failures") <= 3 * 30_000


async def test_right_passwords_never_count_against_the_owner(redis):
    client = make_app(redis, failed_login_burst=1).test_client()
    await register(client)
    for _ in range(5):
        assert (await login(client)).status_code == 200


async def client_verify(client, account, password):
    return await client.post("/internal/verify", json={"account": account, "password": password})


async def test_counts_are_on_metrics(client):
    await register(client)
    await login(client)
    await login(client, password="wrong")
    text = (await (await client.get("/metrics")).get_data()).decode()
    assert 'canaduck_users_total{what="registered"} 1.0' in text
    assert 'canaduck_users_total{what="login_ok"} 1.0' in text
    assert 'canaduck_users_total{what="login_failed"} 1.0' in text


async def test_rules_tell_a_form_what_is_accepted(redis):
    client = make_app(redis, password_min_length=10).test_client()
    assert await (await client.get("/api/users/rules")).get_json() == {
        "account_max_length": 30, "password_min_length": 10, "password_max_length": 256}


async def test_openapi_documents_the_routes(client):
    spec = await (await client.get("/openapi.json")).get_json()
    for path in ("/api/users/register", "/api/users/login", "/api/users/password", "/internal/verify"):
        assert path in spec["paths"]


async def test_the_hasher_checks_a_dummy_for_unknown_accounts():
    hasher = Hasher(time_cost=1, memory_kib=64, parallelism=1, concurrency=1)
    stored = await hasher.hash("secret")
    assert (await hasher.verify(stored, "secret")).ok
    assert not (await hasher.verify(stored, "Secret")).ok
    assert not (await hasher.verify(None, "secret")).ok
    assert not (await hasher.verify("not a hash", "secret")).ok


def test_settings_refuse_impossible_rules():
    with pytest.raises(ValueError):
        UsersSettings(password_min_length=300, password_max_length=200)
    with pytest.raises(ValueError):
        UsersSettings(argon2_memory_kib=8, argon2_parallelism=4)


@pytest.mark.parametrize("route", ["/api/users/register", "/api/users/login", "/api/users/password",
                                   "/internal/verify", "/internal/sessions/check"])
async def test_a_json_body_that_is_not_utf8_is_a_400_saying_so(client, route):
    response = await client.post(route, data=b'{"account": "caf\xe9", "password": "x"}',
                                 headers={"Content-Type": "application/json", **bearer("t")})
    assert response.status_code == 400
    assert (await response.get_json())["detail"].startswith("body is not valid JSON: not UTF-8")
