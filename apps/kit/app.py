"""The app factory every service starts from.

It gives each service the same plumbing: /health, /ready, /metrics, OpenAPI (quart-schema),
JSON errors (never an HTML page, never a traceback), an X-Request-ID on every request and
log line, and the Runtime that connects to Redis and keeps the instance in the directory.
"""

from __future__ import annotations

import errno
import logging
import time
from typing import Any, Literal, NoReturn, cast

import httpx
import pydantic_core
from pydantic import BaseModel
from quart import Quart, Request, Response, current_app, g, has_websocket_context, jsonify, request
from quart.json.provider import DefaultJSONProvider
from quart.wrappers import BaseRequestWebsocket
from quart_schema import QuartSchema, RequestSchemaValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.routing.exceptions import WebsocketMismatch

from apps.kit.clientaddr import IPAddress, client_address
from apps.kit.envelope import new_id
from apps.kit.lifecycle import Runtime
from apps.kit.limits import REFUSAL, ASGIApp, RequestLimits
from apps.kit.logs import REQUEST_ID_HEADER, is_request_id, request_id_var
from apps.kit.looplag import LoopLagMonitor
from apps.kit.metrics import CONTENT_TYPE, Metrics
from apps.kit.openapi import documented
from apps.kit.params import InvalidParameter
from apps.kit.redispool import FairBlockingPool
from apps.kit.reporter import StatsReporter
from apps.kit.settings import KitSettings

log = logging.getLogger("canaduck.http")

_PROBE_PATHS = frozenset({"/health", "/ready", "/metrics"})


class ServiceJSON(DefaultJSONProvider):
    """JSON in and out of every service.

    Out: keys in the order a route wrote them, non-ASCII as UTF-8 (São Paulo, not S\\u00e3o),
    pydantic models as their JSON (what quart-schema's own provider adds).
    In: parsed by pydantic-core instead of the json module, so lone surrogates (`"\\ud800"`),
    NaN/Infinity and nesting deeper than 200 levels are refused at the door as a 400, instead
    of failing later, as a 500, when the value is written out again.
    """

    sort_keys = False
    ensure_ascii = False

    @staticmethod
    def default(value: Any) -> Any:
        try:
            return DefaultJSONProvider.default(value)
        except TypeError:
            return pydantic_core.to_jsonable_python(value)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return pydantic_core.from_json(s, allow_inf_nan=False)


class ServiceRequest(Request):
    """A request whose JSON parse error says why (Quart says why only in debug mode)."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The body parsed as JSON; a body that is not UTF-8 is a 400 like any other bad JSON.

        Quart decodes the body before parsing it, outside the guard that turns a parse error
        into a 400: its UnicodeDecodeError would otherwise surface as a 500.
        """
        try:
            return await super().get_json(force=force, silent=silent, cache=cache)
        except UnicodeDecodeError as exc:
            if silent:
                return None
            return self.on_json_loading_failed(
                ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})"))

    def on_json_loading_failed(self, error: Exception) -> Any:
        raise BadRequest(f"body is not valid JSON: {error}")


class ServiceApp(Quart):
    """A Quart app that carries its service's settings, runtime and metrics."""

    request_class = ServiceRequest

    settings: KitSettings
    runtime: Runtime
    metrics: Metrics
    #: Readiness policy: True for a service that keeps serving without Redis (its /ready then
    #: answers 200 "degraded" instead of 503, so it stays in rotation).
    ready_without_redis: bool = False
    #: Paths logged at DEBUG instead of INFO: probes, and hot paths a service adds.
    quiet_paths: set[str]

    def raise_routing_exception(self, request: BaseRequestWebsocket) -> NoReturn:
        """A service never redirects: a path its routes do not spell exactly is not found.

        Werkzeug's routing answers a path it would spell differently (`//`, a missing trailing
        slash) with a redirect to an absolute URL built from the Host header, so whoever sends
        the request picks where the redirect points (an open redirect).
        """
        if isinstance(request.routing_exception, RequestRedirect):
            raise NotFound()
        super().raise_routing_exception(request)

    async def send_static_file(self, filename: str) -> Response:
        """A file of the static folder; a name longer than a file system holds is not found.

        Quart looks such a name up as it is, and the OSError (ENAMETOOLONG) would be a 500.
        """
        try:
            return await super().send_static_file(filename)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            raise NotFound() from None


def create_app(settings: KitSettings, *, import_name: str, redis: Redis | None = None,
               http_transport: httpx.AsyncBaseTransport | None = None,
               ready_without_redis: bool = False) -> ServiceApp:
    """A service app with the kit's routes and hooks; the caller adds its own routes.

    `redis` replaces the client built from REDIS_URL (tests pass a fakeredis one) and
    `http_transport` the network under `runtime().http` (tests pass an httpx.MockTransport).
    `ready_without_redis` sets the readiness policy (see `ServiceApp.ready_without_redis`).
    """
    app = ServiceApp(import_name)
    app.settings = settings
    app.runtime = Runtime(settings, redis, http_transport=http_transport)
    app.ready_without_redis = ready_without_redis
    app.metrics = Metrics(settings.service_name)
    app.quiet_paths = set(_PROBE_PATHS)
    app.metrics.expose_counts("canaduck_pubsub", "Pub/sub messages by outcome",
                              lambda: app.runtime.broker.counts)
    pool = getattr(app.runtime.redis, "connection_pool", None)
    if isinstance(pool, FairBlockingPool):  # a bounded pool (REDIS_POOL_SIZE): its line, live
        app.metrics.expose_gauge("canaduck_redis_commands_waiting",
                                 "Commands waiting for a connection of the Redis pool", lambda: pool.waiting)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Quart's way to wrap the app in ASGI middleware (Hypercorn and the test client both go through it).
    app.asgi_app = cast(Any, RequestLimits(  # type: ignore[method-assign]
        cast(ASGIApp, app.asgi_app), max_header_bytes=settings.max_header_bytes,
        max_body_bytes=settings.max_body_bytes, body_timeout=app.config["BODY_TIMEOUT"],
        linger_seconds=settings.linger_seconds))
    QuartSchema(app, info={"title": settings.service_name, "version": settings.version})
    app.json = ServiceJSON(app)  # after QuartSchema, which installs a provider of its own

    # Every instance publishes its counters (what /metrics shows) for the dashboard.
    reporter = StatsReporter(app.runtime.redis, settings.keys.stats, settings.service_name,
                             settings.instance_id, settings.stats_interval, app.metrics.snapshot)
    app.runtime.on_start(reporter.start)
    app.runtime.on_stop(reporter.stop)

    # Measured from the first request served to the last, Redis or not: it is the loop's.
    lag = LoopLagMonitor(app.metrics.loop_lag, settings.loop_lag_interval)
    app.extensions["kit.loop_lag"] = lag
    app.before_serving(lag.start)
    app.after_serving(lag.stop)

    app.before_serving(app.runtime.start)
    app.after_serving(app.runtime.stop)
    app.before_request(_begin_request)
    app.after_request(_end_request)
    app.register_error_handler(RequestSchemaValidationError, _validation_error)
    app.register_error_handler(InvalidParameter, _invalid_parameter)
    app.register_error_handler(WebsocketMismatch, _websocket_only)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RedisError, _redis_unavailable)
    app.register_error_handler(Exception, _unexpected_error)

    app.add_url_rule("/health", "health", _health, methods=["GET"])
    app.add_url_rule("/ready", "ready", _ready, methods=["GET"])
    app.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])
    return app


def service_app() -> ServiceApp:
    """The app serving the current request."""
    return cast(ServiceApp, current_app)


def runtime() -> Runtime:
    """The Runtime of the app serving the current request."""
    return service_app().runtime


def request_client() -> IPAddress | None:
    """The client of the current request: its peer, or the client a trusted proxy says it
    forwards (X-Forwarded-For from a peer in TRUSTED_PROXIES; apps/kit/clientaddr.py)."""
    return client_address(request_peer(), request.headers.getlist("X-Forwarded-For"),
                          service_app().settings.trusted_proxies)


def request_peer() -> str | None:
    """The address the current request's connection comes from (a proxy, behind Caddy)."""
    client = request.scope.get("client")
    return client[0] if client else None


def error(status: int, message: str, **details: Any) -> Response:
    """A JSON error response: `{"error": message, "status": status, ...details}`."""
    response = jsonify({"error": message, "status": status, **details})
    response.status_code = status
    return response


async def _begin_request() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if is_request_id(incoming) else new_id()
    g.request_id = request_id
    g.started = time.perf_counter()
    request_id_var.set(request_id)
    refusal = cast(HTTPException | None, request.scope.get(REFUSAL))
    if refusal is not None:  # too large or too slow: see apps/kit/limits.py
        raise refusal


async def _end_request(response: Response) -> Response:
    request_id = getattr(g, "request_id", "")
    response.headers[REQUEST_ID_HEADER] = request_id
    started = getattr(g, "started", None)
    if started is not None:
        elapsed = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        service_app().metrics.observe(request.method, route, response.status_code, elapsed)
        # Probes (Caddy's health checks, the runner) would drown the log at INFO.
        level = logging.DEBUG if request.path in service_app().quiet_paths else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "%s %s %d", request.method, request.path, response.status_code,
                extra={"fields": {"status": response.status_code, "ms": round(elapsed * 1000, 2),
                                 "request_id": request_id}},
            )
    return response


async def _validation_error(exc: RequestSchemaValidationError) -> Response:
    problems = []
    errors = getattr(exc.validation_error, "errors", None)
    for item in errors(include_url=False) if callable(errors) else []:
        problems.append({"field": ".".join(str(p) for p in item["loc"]), "problem": item["msg"]})
    if not problems:
        problems.append({"field": "body", "problem": str(exc.validation_error)})
    for problem in problems:  # a body that is not an object at all has no field name
        problem["field"] = problem["field"] or "body"
    first = problems[0]
    return error(400, f"invalid {first['field']}: {first['problem']}", problems=problems)


async def _invalid_parameter(exc: InvalidParameter) -> Response:
    return error(400, str(exc), parameter=exc.name)


async def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = (exc.name or "error").lower()
    response = error(status, message, detail=exc.description)
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


async def _websocket_only(exc: WebsocketMismatch) -> Response:
    # Werkzeug calls a plain request to a WebSocket route a 400; 426 Upgrade Required
    # (RFC 9110, 15.5.22) tells the client what it has to do instead.
    if has_websocket_context():
        return await _http_error(exc)  # the other way round: a WebSocket to an HTTP route
    response = error(426, "upgrade required",
                     detail=f"{request.path} takes WebSocket connections only (Upgrade: websocket)")
    response.headers["Upgrade"] = "websocket"
    response.headers["Connection"] = "Upgrade"
    return response


async def _redis_unavailable(exc: RedisError) -> Response:
    # A route that needs Redis while it is down or hung: the client may retry shortly.
    log.warning("Redis unavailable in %s %s: %s", request.method, request.path, exc)
    response = error(503, "Redis unavailable", detail=type(exc).__name__)
    response.headers["Retry-After"] = "1"
    return response


async def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error(500, "internal error", request_id=getattr(g, "request_id", ""))


class Health(BaseModel):
    """`GET /health`: the process answers."""

    status: Literal["ok"]
    service: str
    instance: str


class Readiness(BaseModel):
    """`GET /ready`: 200 when ready (or degraded, for a service that can do without Redis)."""

    status: Literal["ready", "degraded", "not ready"]
    service: str
    instance: str
    redis: bool
    registered: bool


@documented(ok=Health)
async def _health() -> Response:
    settings = service_app().settings
    return jsonify({"status": "ok", "service": settings.service_name,
                    "instance": settings.instance_id})


@documented(ok=Readiness, errors=[503])
async def _ready() -> Response:
    rt = runtime()
    body = {"service": rt.settings.service_name, "instance": rt.settings.instance_id,
            "redis": rt.redis_ok, "registered": rt.registered}
    if rt.registered and rt.redis_ok and not rt.stopping:
        return jsonify({"status": "ready", **body})
    if rt.started and not rt.stopping and service_app().ready_without_redis:
        return jsonify({"status": "degraded", **body})
    response = jsonify({"status": "not ready", "error": "not ready", **body})
    response.status_code = 503
    return response


async def _metrics() -> Response:
    return Response(service_app().metrics.render(), content_type=CONTENT_TYPE)
