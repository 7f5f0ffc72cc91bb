"""A ping/pong player (exercises 1, 2 and 4): run as SERVICE_NAME=ping and SERVICE_NAME=pong.

TRANSPORT=http: shots are POSTed to PEER_URL; directory: to the URL the directory gives for
the peer; broker (the default): envelopes relayed by the broker service. Either player answers
`GET /rally` from the scoreboard hash both keep in Redis.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from quart import Blueprint, Response, current_app, jsonify, request
from redis.asyncio import Redis

from apps.kit.app import ServiceApp, error
from apps.kit.app import create_app as create_service_app
from apps.kit.openapi import documented
from apps.player.player import Player
from apps.player.rally import Shot
from apps.player.settings import PlayerSettings

routes = Blueprint("player", __name__)



def create_app(settings: PlayerSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The player app; it starts playing once it is registered."""
    settings = settings or PlayerSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis)
    player = Player(settings, app.runtime)
    app.extensions["player"] = player
    app.quiet_paths.add("/shots")  # one line per shot would flood the log
    app.runtime.on_start(player.start)
    app.runtime.on_stop(player.stop)
    app.register_blueprint(routes)
    return app


def _player() -> Player:
    return current_app.extensions["player"]


class RallyNow(BaseModel):
    id: int
    hits: int


class RoundTrips(BaseModel):
    p50: float | None  # ms; None before any shot came back
    p99: float | None
    samples: int


class Scoreboard(BaseModel):
    """`GET /rally`: the scoreboard both players write in Redis."""

    transport: str
    rallies: int
    current_rally: RallyNow
    longest_rally: int
    players: dict[str, dict[str, Any]]  # per player: status, points, misses, shots, returned...
    round_trip_ms: RoundTrips
    shots_per_s: float
    answered_by: str


class ShotBody(BaseModel):
    """`POST /shots`: a shot from the peer (the http and directory transports)."""

    rally: int
    hit: int
    sender: str
    kind: Literal["serve", "return"]


class ShotTaken(BaseModel):
    accepted: bool
    rally: int
    hit: int


@routes.get("/rally")
@documented(ok=Scoreboard, errors=[503])
async def scoreboard() -> Response:
    """The scoreboard: transport, rallies, current and longest rally, points, round trips."""
    player = _player()
    board = await player.scoreboard.read()  # Redis down: the kit's JSON 503
    return jsonify({**board, "answered_by": player.me})


@routes.post("/shots")
@documented(body=ShotBody, ok=ShotTaken, ok_status=202, errors=[400, 409])
async def take_shot() -> Response:
    """A shot from the peer (transports http and directory); 202 at once, answered later."""
    player = _player()
    if player.link.name == "broker":
        return error(409, "this player plays over the broker: shots arrive on its inbox")
    data = await request.get_json(silent=True)
    try:
        shot = Shot.from_dict(data)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        return error(400, f"invalid {exc}", field=field)
    if shot.sender != player.peer:
        return error(400, f"invalid sender: expected {player.peer}", field="sender")
    player.take(shot)
    response = jsonify({"accepted": True, "rally": shot.rally, "hit": shot.hit})
    response.status_code = 202
    return response
