"""Each service's Redis user reaches its own keys and channels only: checked on the real server
with the project's ACL file (redis/users.acl), as in production."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import redis
from apps.kit.directory import Directory, Entry
from apps.kit.names import Keys

ACL = Path(__file__).resolve().parents[2] / "redis/users.acl"
USERS = [line.split()[1] for line in ACL.read_text().splitlines() if line.startswith("user ")]
#: The services' users (each named after its service).
SERVICES = [user for user in USERS if user not in ("default", "inspector")]
#: Every service's user but the directory's, the registry, which writes every service's hash
#: (the static entries of exercise 2.1) and prunes the index.
WRITERS = [user for user in SERVICES if user != "directory"]
KEYS = Keys()
INDEX = KEYS.services


def as_user(redis_server, user: str) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url(user), decode_responses=True)


def refused(call: Callable[[], Any]) -> None:
    """`call` fails on a missing permission (a NOPERM, or an ACL failure inside a script)."""
    with pytest.raises(redis.exceptions.ResponseError) as error:
        call()
    assert "permission" in str(error.value).lower(), error.value


def test_a_service_touching_another_services_key_gets_noperm(redis_server, admin):
    calc = as_user(redis_server, "calc")
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.hset("canaduck:rally", "points", 1)
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.get("canaduck:cache:joke")
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.publish("canaduck:inbox:pong", "{}")


def test_the_ircds_credentials_cannot_put_an_address_under_the_users_name(redis_server, admin):
    # The finding: with one service's login, HSET the directory so that the gateway sends
    # /api/users/login (passwords in clear) elsewhere.
    ircd = as_user(redis_server, "ircd")
    evil = Entry(service="users", instance="evil", url="http://203.0.113.9:80",
                 channel=KEYS.inbox("users")).to_json()
    users_hash = KEYS.directory("users")
    refused(lambda: ircd.hset(users_hash, "evil", evil))
    refused(lambda: ircd.pipeline(transaction=True).hset(users_hash, "evil", evil)
            .hpexpire(users_hash, 10_000, "evil").execute())
    refused(lambda: ircd.eval("return redis.call('HSET', KEYS[1], 'evil', ARGV[1])", 1, users_hash, evil))
    refused(lambda: ircd.eval(f"return redis.call('HSET', '{users_hash}', 'evil', ARGV[1])", 0, evil))
    assert admin.exists(users_hash) == 0
    ircd.hset(KEYS.directory("ircd"), "ircd-1", "{}")  # its own hash, as it registers


async def test_the_kits_directory_client_cannot_register_another_service(redis_server, admin):
    client = redis_server.async_client("ircd")
    ircd = Directory(client, KEYS, ttl=10)
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            await ircd.register(Entry("users", "evil", "http://203.0.113.9:80", KEYS.inbox("users")))
        await ircd.register(Entry("ircd", "ircd-1", "http://127.0.0.1:5040", KEYS.inbox("ircd")))
        assert [e.instance for e in await ircd.lookup("ircd")] == ["ircd-1"]
    finally:
        await client.aclose()
    assert admin.smembers(INDEX) == {"ircd"} and admin.exists(KEYS.directory("users")) == 0


def writes_to(client: redis.Redis, key: str) -> list[Callable[[], Any]]:
    """Ways a client could change the hash `key` (field `x`): commands, and scripts declaring
    the key or not."""
    return [
        lambda: client.hset(key, "evil", "{}"),
        lambda: client.hdel(key, "x"),
        lambda: client.delete(key),
        lambda: client.hpexpire(key, 1, "x"),
        lambda: client.eval("return redis.call('HDEL', KEYS[1], 'x')", 1, key),
        lambda: client.eval(f"return redis.call('DEL', '{key}')", 0),
    ]


@pytest.mark.parametrize("user", WRITERS)
def test_a_service_writes_its_own_directory_hash_and_no_other(redis_server, admin, user):
    client = as_user(redis_server, user)
    own, instance = KEYS.directory(user), f"{user}-1"
    client.pipeline(transaction=True).hset(own, instance, "{}").hpexpire(own, 10_000, instance).execute()
    assert client.hdel(own, instance) == 1
    others = [KEYS.directory(other) for other in SERVICES if other != user]
    for key in others:
        admin.hset(key, "x", "{}")
        for write in writes_to(client, key):
            refused(write)
        assert client.hgetall(key) == {"x": "{}"}  # and it may read it
    assert [admin.hgetall(key) for key in others] == [{"x": "{}"}] * len(others)


#: Commands that write a key, for ACL DRYRUN: `{key}` is another service's hash, `{own}` the
#: user's own. Whatever the user has been granted, none may touch another service's hash.
WRITES = [
    "HSET {key} f v", "HSETNX {key} f v", "HDEL {key} f", "HINCRBY {key} f 1",
    "HPEXPIRE {key} 1 FIELDS 1 f", "HPERSIST {key} FIELDS 1 f", "DEL {key}", "UNLINK {key}",
    "PEXPIRE {key} 1", "EXPIRE {key} 1", "PERSIST {key}", "SET {key} v", "SADD {key} v",
    "RENAME {own} {key}", "RENAME {key} {own}", "COPY {own} {key} REPLACE", "SORT {own} STORE {key}",
    "SMOVE {own} {key} v", "RESTORE {key} 0 x REPLACE", "EVAL 1 1 {key}", "EVALSHA 0 1 {key}",
    "FCALL f 1 {key}",
]


@pytest.mark.parametrize("user", WRITERS)
def test_no_write_command_reaches_another_services_hash(redis_server, admin, user):
    own = KEYS.directory(user)
    for other in SERVICES:
        if other == user:
            continue
        for command in WRITES:
            args = command.format(key=KEYS.directory(other), own=own).split()
            verdict = admin.execute_command("ACL", "DRYRUN", user, *args)
            assert verdict != "OK", (user, args)
    assert admin.execute_command("ACL", "DRYRUN", user, "HSET", own, "f", "v") == "OK"


def write_patterns(patterns: list[str]) -> list[str]:
    """The globs of ACL key patterns that grant writes: `~p`, `%W~p`, `%RW~p` (not `%R~p`)."""
    return [glob for access, _, glob in (p.rpartition("~") for p in patterns) if "W" in access or not access]


def selector_patterns(rules: dict[str, Any]) -> list[str]:
    """The key patterns of the selectors in an ACL GETUSER reply."""
    return [pattern for selector in rules["selectors"]
            for pattern in dict(zip(selector[::2], selector[1::2], strict=True))["keys"].split()]


@pytest.mark.parametrize("user", WRITERS)
def test_no_key_pattern_lets_a_service_write_another_services_hash(admin, user):
    # The whole of the ACL, not a list of commands: whatever command a user holds, the server
    # refuses a write to a key that no write pattern of that user matches.
    rules = admin.acl_getuser(user)
    root, selectors = write_patterns(rules["keys"]), write_patterns(selector_patterns(rules))
    for other in [*SERVICES, "nobody"]:
        matching = [p for p in root + selectors if fnmatch.fnmatchcase(KEYS.directory(other), p)]
        assert matching == ([KEYS.directory(user)] if other == user else []), (user, other)
    # The index only through a selector, which ties it to SADD and SMEMBERS (its root
    # commands, DEL or SREM among them, never reach it).
    assert [p for p in root if fnmatch.fnmatchcase(INDEX, p)] == []
    assert [p for p in selectors if fnmatch.fnmatchcase(INDEX, p)] == [INDEX]


@pytest.mark.parametrize("user", WRITERS)
def test_every_service_may_add_its_name_to_the_index_and_never_take_one_out(redis_server, admin, user):
    client = as_user(redis_server, user)
    assert client.sadd(INDEX, user) in (0, 1)
    assert user in client.smembers(INDEX)
    for write in (lambda: client.srem(INDEX, user), lambda: client.delete(INDEX),
                  lambda: client.spop(INDEX), lambda: client.hset(INDEX, "x", "y"),
                  lambda: client.pexpire(INDEX, 1)):
        refused(write)
    assert user in admin.smembers(INDEX)


def test_the_directory_writes_every_services_hash_and_prunes_the_index(redis_server, admin):
    directory = as_user(redis_server, "directory")
    directory.hset(KEYS.directory("weather"), "static", "{}")  # exercise 2.1's static entries
    directory.sadd(INDEX, "weather", "bogus")
    assert directory.exists(KEYS.directory("bogus")) == 0
    assert directory.srem(INDEX, "bogus") == 1
    assert admin.smembers(INDEX) == {"weather"}
    refused(lambda: directory.delete(INDEX))
    refused(lambda: directory.hset("canaduck:rally", "points", 1))


def test_a_service_may_publish_events(redis_server, admin):
    assert as_user(redis_server, "calc").publish("canaduck:events", "{}") == 0


def test_the_inspector_reads_everything_and_writes_nothing(redis_server, admin):
    admin.hset(KEYS.directory("calc"), "x", "{}")
    admin.sadd(INDEX, "calc")
    inspector = as_user(redis_server, "inspector")
    assert inspector.hgetall(KEYS.directory("calc")) == {"x": "{}"}
    assert inspector.smembers(INDEX) == {"calc"}
    assert inspector.hpttl(KEYS.directory("calc"), "x") == [-1]
    for write in (lambda: inspector.hset(KEYS.directory("calc"), "y", "{}"),
                  lambda: inspector.hdel(KEYS.directory("calc"), "x"),
                  lambda: inspector.delete(KEYS.directory("calc")),
                  lambda: inspector.sadd(INDEX, "x"),
                  lambda: inspector.srem(INDEX, "calc"),
                  lambda: inspector.set("anything", 1),
                  lambda: inspector.publish("canaduck:events", "x"),
                  lambda: inspector.flushall()):
        refused(write)


def test_the_default_user_is_off(redis_server, admin):
    anonymous = redis.Redis(port=redis_server.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()


def test_the_web_front_reads_the_rally_and_cannot_write_it(redis_server, admin):
    admin.hset("canaduck:rally", "rallies", 3)
    web = as_user(redis_server, "web")
    assert web.hgetall("canaduck:rally") == {"rallies": "3"}
    for write in (lambda: web.hset("canaduck:rally", "rallies", 4),
                  lambda: web.hincrby("canaduck:rally", "rallies", 1),
                  lambda: web.get("canaduck:cache:joke"),
                  lambda: web.publish("canaduck:broker", "{}")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()
    pubsub = web.pubsub()
    pubsub.subscribe("canaduck:events", "canaduck:stats")
    pubsub.close()


def test_every_service_may_publish_its_stats(redis_server, admin):
    for user in SERVICES:
        assert as_user(redis_server, user).publish("canaduck:stats", "{}") == 0, user
