"""The jokes service: `GET /joke`, `GET /jokes/<id>`, `POST /jokes {"joke"}`.

The jokes live in Redis; the jokes of a JSON file (by default the packaged `jokes.json`) are
seeded at start and put back whenever Redis comes back without them (see `store`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from quart import Blueprint, Response, jsonify
from quart_schema import validate_request
from redis.asyncio import Redis

from apps.jokes.settings import JokesSettings
from apps.jokes.store import PACKAGED_JOKES, Joke, JokeStore, read_jokes_file
from apps.kit.app import ServiceApp, error, service_app
from apps.kit.app import create_app as create_service_app
from apps.kit.openapi import documented

routes = Blueprint("jokes", __name__)

_JOKE_ID = re.compile(r"[0-9a-f]{12}")


class NewJoke(BaseModel):
    """The body of POST /jokes."""

    model_config = ConfigDict(extra="forbid")

    joke: str


def create_app(settings: JokesSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The jokes service app. A bad jokes file fails here, before serving."""
    settings = settings or JokesSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis)
    seeded = read_jokes_file(Path(settings.jokes_file) if settings.jokes_file else PACKAGED_JOKES)
    store = JokeStore(app.runtime.redis, settings.keys["jokes"], seeded)
    app.extensions["jokes.store"] = store
    app.runtime.on_start(store.restore_seeded)
    app.runtime.on_beat(store.heal)

    app.register_blueprint(routes)
    return app


def _store() -> JokeStore:
    store: JokeStore = service_app().extensions["jokes.store"]
    return store


@routes.get("/joke")
@documented(ok=Joke, errors=[404])
async def random_joke() -> Response:
    """One joke at random: {id, joke}."""
    joke = await _store().random()
    if joke is None:
        return error(404, "no jokes yet")
    return jsonify(asdict(joke))


@routes.get("/jokes/<joke_id>")
@documented(ok=Joke, errors=[400, 404])
async def one_joke(joke_id: str) -> Response:
    """The joke with this id; 400 for a malformed id, 404 for an unknown one."""
    if not _JOKE_ID.fullmatch(joke_id):
        return error(400, "invalid joke id: expected 12 hex characters", id=joke_id)
    joke = await _store().get(joke_id)
    if joke is None:
        return error(404, "no such joke", id=joke_id)
    return jsonify(asdict(joke))


@routes.post("/jokes")
@validate_request(NewJoke)
@documented(ok=Joke, ok_status=201, errors=[400, 409, 413])
async def add_joke(data: NewJoke) -> Response:
    """Add a joke: 201 with its id, 409 if it is already there (up to case and spacing)."""
    text = data.joke.strip()
    limit = service_app().settings.joke_max_length  # type: ignore[attr-defined]
    if not text:
        return error(400, "invalid joke: empty", field="joke")
    if len(text) > limit:
        return error(400, f"invalid joke: longer than {limit} characters", field="joke")
    if any(unicodedata.category(c) == "Cc" and c != "\n" for c in text):
        return error(400, "invalid joke: contains a control character", field="joke")
    joke, created = await _store().add(text)
    if not created:
        return error(409, "duplicate joke", id=joke.id)
    response = jsonify(asdict(joke))
    response.status_code = 201
    response.headers["Location"] = f"/jokes/{joke.id}"
    return response
