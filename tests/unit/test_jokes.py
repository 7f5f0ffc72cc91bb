"""The jokes service: seeding and healing, random and by id, adding with limits and duplicates."""

from __future__ import annotations

import asyncio
import json

import pytest

from apps.jokes.app import create_app
from apps.jokes.settings import JokesSettings
from apps.jokes.store import PACKAGED_JOKES, JokeStore, joke_id, read_jokes_file

KEY = "canaduck:jokes"


def make_app(redis, **settings):
    return create_app(JokesSettings(instance_id="jokes-1", **settings), redis=redis)


def test_the_packaged_file_holds_at_least_50_distinct_jokes():
    jokes = read_jokes_file(PACKAGED_JOKES)
    assert len(jokes) >= 50
    assert len({joke_id(j) for j in jokes}) == len(jokes)


async def test_start_seeds_the_file_and_never_overwrites(redis, started, tmp_path):
    jokes = read_jokes_file(PACKAGED_JOKES)
    async with started(make_app(redis)):
        assert await redis.hlen(KEY) == len(jokes)
    other = tmp_path / "jokes.json"
    other.write_text(json.dumps(["Une autre blague.", jokes[0].upper()]))
    async with started(make_app(redis, jokes_file=str(other))):
        assert await redis.hget(KEY, joke_id("Une autre blague.")) == b"Une autre blague."
        assert await redis.hget(KEY, joke_id(jokes[0])) == jokes[0].encode()  # kept as it was
    assert await redis.hlen(KEY) == len(jokes) + 1


async def test_after_a_flush_the_first_request_puts_the_seeded_jokes_back(redis, started):
    jokes = read_jokes_file(PACKAGED_JOKES)
    async with started(make_app(redis)) as client:
        added = await (await client.post("/jokes", json={"joke": "Coin coin."})).get_json()
        await redis.flushall()  # a Redis without persistence restarted, or a FLUSHALL
        response = await client.get("/joke")
        assert response.status_code == 200
        assert await redis.hlen(KEY) == len(jokes)  # the seeded ones, not the one added
        await redis.flushall()
        by_id = await client.get(f"/jokes/{joke_id(jokes[3])}")
        assert by_id.status_code == 200 and (await by_id.get_json())["joke"] == jokes[3]
        lost = await client.get(f"/jokes/{added['id']}")
        assert lost.status_code == 404  # data, not seeded: only persistence keeps it


async def test_the_heartbeat_puts_the_seeded_jokes_back_without_a_request(redis, started):
    app = make_app(redis, heartbeat_interval=0.05)
    async with started(app):
        await redis.flushall()
        for _ in range(100):
            if await redis.hlen(KEY):
                break
            await asyncio.sleep(0.02)
        assert await redis.hlen(KEY) == len(read_jokes_file(PACKAGED_JOKES))


async def test_heal_costs_one_read_when_nothing_is_missing(redis):
    store = JokeStore(redis, KEY, ["Une.", "Deux."])
    assert await store.heal() == 2
    assert await store.heal() == 0
    await redis.hdel(KEY, joke_id("Deux."))  # only the sentinel is checked by heal ...
    assert await store.heal() == 0
    assert await store.restore_seeded() == 1  # ... a miss on the request path restores all


async def test_a_bad_jokes_file_refuses_to_start(redis, tmp_path):
    bad = tmp_path / "jokes.json"
    bad.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="expected a JSON list"):
        make_app(redis, jokes_file=str(bad))


async def test_random_joke_and_joke_by_id(redis, started):
    async with started(make_app(redis)) as client:
        response = await client.get("/joke")
        assert response.status_code == 200
        body = await response.get_json()
        assert list(body) == ["id", "joke"]
        assert await redis.hget(KEY, body["id"]) == body["joke"].encode()
        again = await client.get(f"/jokes/{body['id']}")
        assert await again.get_json() == body


async def test_no_jokes_at_all_is_a_json_404(redis, tmp_path):
    empty = tmp_path / "jokes.json"
    empty.write_text("[]")
    response = await make_app(redis, jokes_file=str(empty)).test_client().get("/joke")
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "no jokes yet"


@pytest.mark.parametrize(("joke_id_", "status"), [("0123456789ab", 404), ("nope", 400),
                                                   ("0123456789AB", 400), ("0" * 13, 400)])
async def test_joke_by_unknown_or_malformed_id(redis, joke_id_, status):
    response = await make_app(redis).test_client().get(f"/jokes/{joke_id_}")
    assert response.status_code == status
    assert (await response.get_json())["id"] == joke_id_


async def test_adding_a_joke_then_a_duplicate(redis, started):
    async with started(make_app(redis)) as client:
        text = "Pourquoi le canard a-t-il traversé la mare ? Pour rejoindre l'autre rive."
        created = await client.post("/jokes", json={"joke": f"  {text} "})
        assert created.status_code == 201
        body = await created.get_json()
        assert body["joke"] == text and created.headers["Location"] == f"/jokes/{body['id']}"
        assert (await (await client.get(f"/jokes/{body['id']}")).get_json())["joke"] == text
        duplicate = await client.post("/jokes", json={"joke": text.upper().replace(" ", "  ")})
        assert duplicate.status_code == 409
        assert await duplicate.get_json() == {"error": "duplicate joke", "status": 409, "id": body["id"]}
        assert await redis.hget(KEY, body["id"]) == text.encode()  # the first spelling is kept


@pytest.mark.parametrize(("payload", "problem"), [
    ({"joke": ""}, "invalid joke: empty"),
    ({"joke": "   "}, "invalid joke: empty"),
    ({"joke": "x" * 281}, "invalid joke: longer than 280 characters"),
    ({"joke": "coin\x00coin"}, "invalid joke: contains a control character"),
    ({"joke": 42}, "invalid joke"),
    ({}, "invalid joke"),
    ({"joke": "ok", "extra": 1}, "invalid extra"),
])
async def test_bad_jokes_are_400(redis, payload, problem):
    client = make_app(redis).test_client()
    response = await client.post("/jokes", json=payload)
    assert response.status_code == 400
    assert (await response.get_json())["error"].startswith(problem)
    assert await redis.hlen(KEY) == 0


@pytest.mark.parametrize("raw", [b"{not json", b'{"joke": "\\ud800"}', b'{"joke": "caf\xe9"}'])
async def test_a_body_that_is_not_json_is_400(redis, raw):
    response = await make_app(redis).test_client().post(
        "/jokes", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert (await response.get_json())["detail"].startswith("body is not valid JSON")
    assert await redis.hlen(KEY) == 0


async def test_a_joke_at_the_limit_and_with_a_newline_is_fine(redis):
    client = make_app(redis, joke_max_length=20).test_client()
    assert (await client.post("/jokes", json={"joke": "x" * 20})).status_code == 201
    assert (await client.post("/jokes", json={"joke": "coin\ncoin"})).status_code == 201
    assert (await client.post("/jokes", json={"joke": "x" * 21})).status_code == 400
