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


# Failed password checks per client address: one client spraying guesses over many accounts.

CADDY = ("127.0.0.1", 40000)  # a trusted proxy (TRUSTED_PROXIES' default)


def from_address(address: str, port: int = 50000) -> dict:
    return {"scope_base": {"client": (address, port)}}


def counting_hashes(app) -> list[int]:
    """Counts the hasher's password checks: a refused check must cost none."""
    hasher = app.extensions["users.hasher"]
    verify, calls = hasher.verify, []

    async def counted(*args, **kwargs):
        calls.append(1)
        return await verify(*args, **kwargs)

    hasher.verify = counted
    return calls


async def spray(client, count: int, **where) -> list[int]:
    """Wrong passwords for `count` different accounts, one attempt each."""
    codes = []
    for i in range(count):
        body = {"account": f"victim{i}", "password": "Password1"}
        codes.append((await client.post("/api/users/login", json=body, **where)).status_code)
    return codes


async def test_guesses_sprayed_over_many_accounts_from_one_address_are_refused_after_the_burst(redis):
    app = make_app(redis, failed_login_per_address_burst=5, failed_login_per_address_per_minute=1)
    client, hashes = app.test_client(), counting_hashes(app)
    assert await spray(client, 5, **from_address("203.0.113.5")) == [401] * 5
    refused = await client.post("/api/users/login", json={"account": "victim9", "password": "x" * 9},
                                **from_address("203.0.113.5", 50001))  # another connection, same client
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    body = await refused.get_json()
    assert body["error"] == "too many failed password checks from this address" and body["retry_after"] > 0
    assert len(hashes) == 5, "a refused check costs no hash"
    assert await spray(client, 3, **from_address("203.0.113.6")) == [401] * 3  # another address
    assert 0 < await redis.pttl("canaduck:users:{ip:203.0.113.5}:failures") <= 6 * 60_000
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'canaduck_users_total{what="login_address_throttled"} 1.0' in metrics


async def test_an_ipv6_client_is_limited_by_its_64(redis):
    client = make_app(redis, failed_login_per_address_burst=2).test_client()
    assert await spray(client, 2, **from_address("2001:db8:1:2::1")) == [401, 401]
    assert await spray(client, 1, **from_address("2001:db8:1:2::beef")) == [429]
    assert await spray(client, 1, **from_address("2001:db8:1:3::1")) == [401]


async def test_behind_caddy_each_forwarded_client_has_its_own_budget(redis):
    client = make_app(redis, failed_login_per_address_burst=2).test_client()
    behind_caddy = from_address(*CADDY)
    for address in ("198.51.100.1", "198.51.100.2"):
        codes = await spray(client, 3, headers={"X-Forwarded-For": address}, **behind_caddy)
        assert codes == [401, 401, 429], address
    assert await redis.exists("canaduck:users:{ip:198.51.100.1}:failures")
    assert not await redis.exists("canaduck:users:{ip:127.0.0.1}:failures")  # not Caddy's own


async def test_an_x_forwarded_for_from_an_untrusted_peer_is_ignored(redis):
    client = make_app(redis, failed_login_per_address_burst=2).test_client()
    codes = []
    for i in range(4):  # a new forged address each time: still one client
        codes += await spray(client, 1, headers={"X-Forwarded-For": f"198.51.100.{i}"},
                             **from_address("203.0.113.5"))
    assert codes == [401, 401, 429, 429]


async def test_sasl_checks_count_against_the_irc_clients_address_the_ircd_gives(redis):
    client = make_app(redis, failed_login_per_address_burst=2).test_client()
    ircd = from_address("10.0.0.7")  # a trusted peer

    async def sasl(address: str | None, **where) -> int:
        body = {"account": "victim", "password": "Password1", "address": address}
        return (await client.post("/internal/verify", json=body, **where)).status_code

    assert [await sasl("203.0.113.5", **ircd) for _ in range(3)] == [401, 401, 429]
    assert await sasl("203.0.113.6", **ircd) == 401  # another IRC client
    # From a peer that is no trusted proxy, the address it gives is not believed: its own counts.
    untrusted = from_address("203.0.113.99")
    assert [await sasl(f"198.51.100.{i}", **untrusted) for i in range(3)] == [401, 401, 429]
    # No address (or "?", the ircd's word for one it could not name): the ircd's own counts.
    assert [await sasl(a, **ircd) for a in (None, "?", None)] == [401, 401, 429]


async def test_an_address_longer_than_any_address_is_a_400(redis):
    client = make_app(redis).test_client()
    body = {"account": "victim", "password": "Password1", "address": "x" * 65}
    assert (await client.post("/internal/verify", json=body)).status_code == 400


async def test_an_account_chooses_always_on_and_the_ircd_reads_it(client):
    await register(client)
    token = (await (await login(client)).get_json())["token"]
    assert (await (await client.get("/internal/accounts/alice")).get_json())["always_on"] is None
    changed = await client.patch("/api/users/me", json={"always_on": False}, headers=bearer(token))
    assert changed.status_code == 200 and (await changed.get_json())["always_on"] is False
    assert (await (await client.get("/internal/accounts/alice")).get_json())["always_on"] is False
    me = await client.get("/api/users/me", headers=bearer(token))
    assert (await me.get_json())["always_on"] is False
    await client.patch("/api/users/me", json={"always_on": True}, headers=bearer(token))
    assert (await (await client.get("/internal/accounts/alice")).get_json())["always_on"] is True


async def test_a_bad_account_change_is_a_400_naming_it_and_changes_nothing(client):
    await register(client)
    token = (await (await login(client)).get_json())["token"]
    for body in ({"always_on": "yes"}, {"always_on": 1}, {}, {"always_on": True, "password": "x"}, [True]):
        response = await client.patch("/api/users/me", json=body, headers=bearer(token))
        assert response.status_code == 400, body
        assert "error" in await response.get_json()
    assert (await client.patch("/api/users/me", json={"always_on": True})).status_code == 401
    assert (await (await client.get("/internal/accounts/alice")).get_json())["always_on"] is None
