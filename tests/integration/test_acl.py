"""Each service's Redis user reaches its own keys and channels only: checked on the real server
with the project's ACL file (redis/users.acl), as in production."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import redis
from apps.kit.directory import Directory, Entry
from apps.kit.names import Keys
from apps.kit.pubsub import Subscriber, open_pubsub, publish
from apps.kit.redisconn import connect, wait_until_reachable
from scripts.devkit import ADMIN_PASSWORD, ADMIN_USER, RedisServer, ValkeyCluster

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


def test_the_ircd_asks_whether_an_account_exists_and_nothing_else_of_it(redis_server, admin):
    # The gateway reads whether a nick is an account's (reserved) as it claims it. With its
    # login, one must not read the account (its password hash), write it, or free its name.
    ircd = as_user(redis_server, "ircd")
    account = "canaduck:users:{alice}:account"
    admin.hset(account, mapping={"name": "Alice", "password": "$argon2id$"})
    assert ircd.exists(account) == 1 and ircd.exists("canaduck:users:{bob}:account") == 0
    assert ircd.eval("return redis.call('EXISTS', ARGV[1])", 0, account) == 1  # as the claim asks
    refused(lambda: ircd.hget(account, "password"))
    refused(lambda: ircd.hgetall(account))
    refused(lambda: ircd.eval("return redis.call('HGET', ARGV[1], 'password')", 0, account))
    refused(lambda: ircd.hset(account, "password", "mine"))
    refused(lambda: ircd.delete(account))
    refused(lambda: ircd.exists("canaduck:users:{alice}:sessions"))
    refused(lambda: ircd.hset("canaduck:users:{bob}:account", "name", "bob"))
    assert admin.hget(account, "password") == "$argon2id$"
    assert not admin.exists("canaduck:users:{bob}:account")


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


def test_the_inspector_watches_every_client_and_can_disturb_none(redis_server, admin):
    # Of the commands that change data or act on the server or on other clients, the
    # inspector holds only those that watch. CONFIG GET is not one of them: a cluster's nodes
    # hold the password of the user their replicas log in as (primaryauth).
    table = arities(admin)
    held = {name for category in ("write", "admin", "dangerous") for name in admin.acl_cat(category)
            if may_run(admin, "inspector", name, table)}
    assert held == WATCHING
    inspector = as_user(redis_server, "inspector")
    other = redis_server.admin()
    try:
        assert other.client_id() in {int(client["id"]) for client in inspector.client_list()}
        refused(lambda: inspector.client_kill_filter(_id=other.client_id()))
        refused(lambda: inspector.client_no_evict("ON"))
        refused(lambda: inspector.config_get("primaryauth"))
        for call in ("CLIENT PAUSE 60000", "CLIENT UNPAUSE", "CLIENT UNBLOCK 1", "LATENCY RESET",
                     "CONFIG SET maxmemory 1", "SHUTDOWN NOSAVE", "DEBUG SLEEP 60", "FLUSHALL"):
            assert admin.execute_command("ACL", "DRYRUN", "inspector", *call.split()) != "OK", call
        assert other.ping()
    finally:
        other.close()
        inspector.close()


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


# A compromised service and the server itself: a service's login reaches its own keys and
# channels and opens connections, and nothing else (docs/security.md).

#: What redis-py sends to open and keep a service's connections (redis/README.md says where each
#: one comes from): every service's user may send it. AUTH and HELLO are not in the ACL file:
#: the server takes them (and QUIT, RESET: each acts on the sender's own connection) from anyone.
CONNECTING = ["HELLO 3 AUTH {user} dev-only-{user}", "AUTH {user} dev-only-{user}", "HELLO 3",
              "CLIENT SETNAME {user}/1", "CLIENT SETINFO LIB-NAME redis-py", "CLIENT SETINFO LIB-VER 8.1.0",
              "PING", "PING redis-py-health-check", "CLUSTER SLOTS", "COMMAND", "ASKING"]

#: What a service's login could do to the server and to every other client on it, were it
#: granted: checked with ACL DRYRUN, because run for real they would stop, pause, flush or
#: reconfigure the server under the other tests.
DISRUPTIONS = [
    "CLIENT KILL ID 1", "CLIENT KILL USER directory", "CLIENT KILL ADDR 127.0.0.1:6379",
    "CLIENT PAUSE 60000", "CLIENT PAUSE 60000 WRITE", "CLIENT UNPAUSE", "CLIENT UNBLOCK 1 ERROR",
    "CLIENT LIST", "CLIENT NO-EVICT ON", "SELECT 1", "SWAPDB 0 1",
    "CONFIG SET maxmemory 1", "CONFIG SET appendonly no", "CONFIG GET *", "FLUSHALL", "FLUSHDB",
    "SHUTDOWN NOSAVE", "DEBUG SLEEP 60", "DEBUG SEGFAULT", "MONITOR", "KEYS *", "SCAN 0",
    "ACL LIST", "REPLICAOF 127.0.0.1 1", "CLUSTER RESET HARD", "CLUSTER FAILOVER FORCE",
]

#: The inspector's commands of the categories write, admin and dangerous: what watching takes.
WATCHING = {"client|list", "info", "keys", "sort_ro", "monitor", "slowlog|get", "latency|doctor",
            "latency|graph", "latency|histogram", "latency|history", "latency|latest"}


def arities(admin: redis.Redis) -> dict[str, int]:
    """Every command and subcommand (`name`, `name|sub`) the server has, and its arity."""
    table: dict[str, int] = {}
    for name, info in admin.command().items():
        table[name] = int(info["arity"])
        for sub in info["subcommands"]:
            table[str(sub[0])] = int(sub[1])
    return table


def may_run(admin: redis.Redis, user: str, name: str, table: dict[str, int]) -> bool:
    """Whether `user` may run the command `name`: ACL DRYRUN with `x` for each argument it takes."""
    words = name.upper().split("|")
    verdict = admin.execute_command("ACL", "DRYRUN", user, *words, *["x"] * (abs(table[name]) - len(words)))
    assert verdict == "OK" or "no permissions" in verdict, (user, name, verdict)
    return bool(verdict == "OK")


@pytest.mark.parametrize("user", SERVICES)
def test_a_services_connection_commands_are_those_its_client_sends_and_no_other(admin, user):
    # Every command of the server's `connection` category (CLIENT KILL and PAUSE among them),
    # so that one a new server version adds is refused until someone grants it.
    table = arities(admin)
    granted = {name for name in admin.acl_cat("connection") if may_run(admin, user, name, table)}
    anyone = {name for name, info in admin.command().items() if "no_auth" in info["flags"]}
    command = {name for name in table if name.split("|")[0] == "command"}  # the table, read only
    assert anyone == {"auth", "hello", "quit", "reset"}
    assert granted == anyone | {"ping", "client|setname", "client|setinfo", "asking"} | command
    for call in CONNECTING:
        assert admin.execute_command("ACL", "DRYRUN", user, *call.format(user=user).split()) == "OK", call


@pytest.mark.parametrize("user", SERVICES)
def test_a_service_cannot_see_or_cut_the_other_clients_nor_leave_its_database(redis_server, admin, user):
    client = as_user(redis_server, user)
    other = redis_server.admin()  # another client: an operator's
    try:
        refused(lambda: client.client_kill_filter(_id=other.client_id()))
        refused(lambda: client.client_list())
        refused(lambda: client.client_no_evict("ON"))
        refused(lambda: client.execute_command("SELECT", 1))
        refused(lambda: client.keys("*"))
        refused(lambda: client.execute_command("MONITOR"))
        assert other.ping() and client.ping()
        assert client.connection_pool.connection_kwargs.get("db", 0) == 0
    finally:
        other.close()
        client.close()


@pytest.mark.parametrize("user", SERVICES)
def test_a_service_can_neither_stop_pause_flush_nor_reconfigure_the_server(admin, user):
    for call in DISRUPTIONS:
        verdict = admin.execute_command("ACL", "DRYRUN", user, *call.split())
        assert verdict != "OK" and "no permissions" in verdict, (user, call, verdict)


def node_admins(redis_server: RedisServer | ValkeyCluster) -> list[redis.Redis]:
    """An admin client of the server, or of each node of the cluster."""
    ports = redis_server.ports if isinstance(redis_server, ValkeyCluster) else [redis_server.port]
    return [redis.Redis(host="127.0.0.1", port=port, username=ADMIN_USER, password=ADMIN_PASSWORD,
                        decode_responses=True) for port in ports]


def acl_log(redis_server: RedisServer | ValkeyCluster, *, reset: bool = False) -> list[Any]:
    """The ACL log's entries (the refusals) of the server or every node; emptied if `reset`."""
    entries: list[Any] = []
    for node in node_admins(redis_server):
        try:
            entries += node.acl_log()
            if reset:
                node.acl_log_reset()
        finally:
            node.close()
    return entries


async def next_message(subscriber: Subscriber, timeout: float = 5.0) -> dict[str, Any]:
    message = await asyncio.wait_for(subscriber.get_message(timeout=None), timeout)
    assert message is not None
    return message


@pytest.mark.cluster
@pytest.mark.parametrize("user", SERVICES)
async def test_a_service_connects_and_subscribes_with_nothing_refused(redis_server, admin, user):
    # The kit's own client (apps/kit/redisconn.py), on one server or a cluster: the ACL log
    # stays empty, so not even a command whose refusal redis-py ignores (CLIENT SETINFO) is
    # refused.
    acl_log(redis_server, reset=True)
    cluster = isinstance(redis_server, ValkeyCluster)
    client = connect(redis_server.url(user), client_name=f"{user}/acl", cluster=cluster)
    subscriber = None
    try:
        await wait_until_reachable(client, timeout=10)
        subscriber = open_pubsub(client)
        await subscriber.subscribe(KEYS.inbox(user))
        assert (await next_message(subscriber))["type"] == "subscribe"
        assert await publish(client, KEYS.inbox(user), "hello") == 1
        assert (await next_message(subscriber))["data"] == b"hello"
    finally:
        if subscriber is not None:
            await subscriber.aclose()
        await client.aclose()
    assert acl_log(redis_server) == []


@pytest.mark.cluster(only=True)
async def test_a_services_cluster_client_follows_a_slot_on_the_move_with_asking(redis_server, admin):
    # While a slot moves between primaries (a resharding), its old owner answers ASK for a key
    # it no longer holds; the client sends ASKING, then the command, to the new one.
    key = KEYS.directory("calc")
    slot = admin.keyslot(key)
    source_port = int(admin.get_node_from_key(key).port)
    target_port = next(port for port in redis_server.primary_ports() if port != source_port)
    source, target = redis_server.node_admin(source_port), redis_server.node_admin(target_port)
    client = connect(redis_server.url("calc"), client_name="calc/acl", cluster=True)
    source_id, target_id = (node.execute_command("CLUSTER", "MYID") for node in (source, target))
    try:
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        asked = target.info("commandstats").get("cmdstat_asking", {}).get("calls", 0)
        await wait_until_reachable(client, timeout=10)
        await client.hset(key, "calc-1", "{}")
        assert target.info("commandstats")["cmdstat_asking"]["calls"] > asked
        reply = target.pipeline(transaction=False).execute_command("ASKING").hget(key, "calc-1").execute()
        assert reply[1] == "{}"
    finally:
        await client.aclose()
        target.pipeline(transaction=False).execute_command("ASKING").delete(key).execute()
        for node in (source, target):
            node.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
            node.close()
