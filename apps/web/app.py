"""The web front: the chat page (`/`), the live dashboard (`/dashboard`) and its feed.

Plain HTML, CSS and JavaScript modules from `static/`, no build step. The dashboard's data
comes from one Server-Sent Events stream (`/dashboard/feed`) that this service builds from
Redis (see feed.py). The chat page is an IRC client: it speaks IRC over WebSocket to the
gateways at `/irc` and logs in through the users service's `/api/users/*`, all through Caddy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from quart import Blueprint, Response, current_app, make_response
from redis.asyncio import Redis

from apps.kit.app import ServiceApp, runtime
from apps.kit.app import create_app as create_service_app
from apps.web.feed import Feed
from apps.web.settings import WebSettings

routes = Blueprint("web", __name__)

#: Seconds of silence after which the feed sends an SSE comment (proxies close idle streams).
KEEP_ALIVE = 15.0

#: Everything the pages load comes from this origin: no CDN, no inline script or style.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'; form-action 'self'")


def create_app(settings: WebSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The web app; its feed starts reading Redis once the instance is registered."""
    settings = settings or WebSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis)
    feed = Feed(app.runtime, settings)
    app.extensions["feed"] = feed
    # Static files are revalidated (ETag) on every load: a new version is seen at once.
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 0
    app.runtime.on_start(feed.start)
    app.runtime.on_stop(feed.stop)
    app.metrics.expose_counts("canaduck_web", "Dashboards connected to the feed",
                              lambda: {"dashboards": feed.clients})
    app.after_request(_security_headers)
    app.register_blueprint(routes)
    return app


def _feed() -> Feed:
    feed: Feed = current_app.extensions["feed"]
    return feed


async def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


async def _page(name: str) -> Response:
    response = await current_app.send_static_file(name)
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.get("/")
async def chat_page() -> Response:
    """The chat: an IRC client over WebSocket (`/irc`), logged in with a session token."""
    return await _page("index.html")


@routes.get("/dashboard")
async def dashboard_page() -> Response:
    """The live dashboard of the stack."""
    return await _page("dashboard.html")


@routes.get("/dashboard/feed")
async def dashboard_feed() -> Response:
    """Server-Sent Events: `snapshot` every FEED_INTERVAL, `event` as they happen, `status`
    while Redis cannot be read. The stream ends when this instance stops (the browser's
    EventSource then reconnects, through Caddy, to another one)."""
    feed = _feed()
    rt = runtime()
    queue = feed.connect()

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            while not rt.stopping:
                try:
                    async with asyncio.timeout(KEEP_ALIVE):
                        message = await queue.get()
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            feed.disconnect(queue)

    response = await make_response(stream(), {
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })
    assert isinstance(response, Response)
    response.timeout = None  # Quart's RESPONSE_TIMEOUT would cut the stream after 60 s
    return response
