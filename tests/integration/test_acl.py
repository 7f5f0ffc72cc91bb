"""Each service's Redis user reaches its own keys and channels only."""

from pathlib import Path

import pytest

import redis


def as_user(redis_server, user: str) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url(user), decode_responses=True)


def test_a_service_touching_another_services_key_gets_noperm(redis_server, admin):
    calc = as_user(redis_server, "calc")
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.hset("canaduck:rally", "points", 1)
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.get("canaduck:cache:joke")
    with pytest.raises(redis.exceptions.NoPermissionError):
        calc.publish("canaduck:inbox:pong", "{}")


def test_a_service_may_write_its_directory_entry_and_publish_events(redis_server, admin):
    calc = as_user(redis_server, "calc")
    calc.hset("canaduck:directory", "calc/x", "{}")
    calc.hpexpire("canaduck:directory", 1000, "calc/x")
    assert calc.publish("canaduck:events", "{}") == 0


def test_the_inspector_reads_everything_and_writes_nothing(redis_server, admin):
    admin.hset("canaduck:directory", "calc/x", "{}")
    inspector = as_user(redis_server, "inspector")
    assert inspector.hgetall("canaduck:directory") == {"calc/x": "{}"}
    for write in (lambda: inspector.hset("canaduck:directory", "calc/y", "{}"),
                  lambda: inspector.set("anything", 1),
                  lambda: inspector.publish("canaduck:events", "x"),
                  lambda: inspector.flushall()):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()


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
    acl = Path(__file__).resolve().parents[2] / "redis/users.acl"
    users = [line.split()[1] for line in acl.read_text().splitlines() if line.startswith("user ")]
    for user in users:
        if user in ("default", "inspector"):
            continue
        assert as_user(redis_server, user).publish("canaduck:stats", "{}") == 0, user
