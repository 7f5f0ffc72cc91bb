"""The calc service: /sum and /sub on exact numbers, and /calc to say which replica answers."""

from __future__ import annotations

import operator

from pydantic import BaseModel
from quart import Blueprint, Response, jsonify
from redis.asyncio import Redis

from apps.arithmetic.route import Operands, Result, answer
from apps.calc.settings import CalcSettings
from apps.kit.app import ServiceApp, service_app
from apps.kit.app import create_app as create_service_app
from apps.kit.openapi import documented

routes = Blueprint("calc", __name__)


class CalcInfo(BaseModel):
    """`GET /calc`: which replica answered."""

    status: str
    service: str
    version: str
    instance: str


def create_app(settings: CalcSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The calc service app."""
    app = create_service_app(settings or CalcSettings(), import_name=__name__, redis=redis)
    app.register_blueprint(routes)
    return app


@routes.get("/sum")
@documented(query=Operands, ok=Result, errors=[400])
async def sum_() -> Response:
    """op1 + op2: integers stay integers, decimals are exact."""
    return answer(operator.add)


@routes.get("/sub")
@documented(query=Operands, ok=Result, errors=[400])
async def sub() -> Response:
    """op1 - op2: integers stay integers, decimals are exact."""
    return answer(operator.sub)


@routes.get("/calc")
@documented(ok=CalcInfo)
async def calc() -> Response:
    """Which service, version and replica answered: the "calc is working" check."""
    settings = service_app().settings
    return jsonify({"status": "calc is working", "service": settings.service_name,
                    "version": settings.version, "instance": settings.instance_id})
