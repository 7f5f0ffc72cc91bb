"""The mult service: /mult on exact numbers, parsed and answered like calc's /sum (the
arithmetic domain, apps/arithmetic)."""

from __future__ import annotations

import operator

from quart import Blueprint, Response
from redis.asyncio import Redis

from apps.arithmetic.route import Operands, Result, answer
from apps.kit.app import ServiceApp
from apps.kit.app import create_app as create_service_app
from apps.kit.openapi import documented
from apps.mult.settings import MultSettings

routes = Blueprint("mult", __name__)


def create_app(settings: MultSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The mult service app."""
    app = create_service_app(settings or MultSettings(), import_name=__name__, redis=redis)
    app.register_blueprint(routes)
    return app


@routes.get("/mult")
@documented(query=Operands, ok=Result, errors=[400])
async def mult() -> Response:
    """op1 * op2: integers stay integers (2 * 3 is 6), decimals are exact."""
    return answer(operator.mul)
