"""The kit's request limits (apps/kit/limits.py), driven at the ASGI level and through an app.

Over a real socket (what a client sees on the wire): tests/integration/test_request_limits_server.py.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from apps.kit.app import create_app
from apps.kit.limits import REFUSAL, RequestLimits
from apps.kit.serve import HEADER_READ_LIMIT
from apps.kit.settings import KitSettings
from scripts.devkit import ROOT

LIMIT = 1000


class Peer:
    """The server side of one request: messages the client sent, and what the app answered."""

    def __init__(self, *messages: dict) -> None:
        self.incoming: asyncio.Queue[dict] = asyncio.Queue()
        for message in messages:
            self.incoming.put_nowait(message)
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        return await self.incoming.get()

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def left_unread(self) -> int:
        return self.incoming.qsize()

    @property
    def response_headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])


def chunk(size: int, more: bool = True) -> dict:
    return {"type": "http.request", "body": b"x" * size, "more_body": more}


class App:
    """An ASGI app that reads its body (if not refused) and answers 200, or 4xx if refused."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        self.calls.append(scope)
        refusal = scope.get(REFUSAL)
        if refusal is None:
            message = await receive()
            self.bodies.append(message["body"])
            assert not message["more_body"]
        status = refusal.code if refusal else 200
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})


def http(*headers: tuple[bytes, bytes]) -> dict:
    return {"type": "http", "method": "POST", "raw_path": b"/x", "query_string": b"",
            "headers": list(headers)}


def limits(app, **overrides) -> RequestLimits:
    options = {"max_header_bytes": 200, "max_body_bytes": LIMIT, "body_timeout": 1.0,
               "linger_seconds": 1.0, **overrides}
    return RequestLimits(app, **options)


async def test_a_body_within_the_limit_reaches_the_app_whole_in_one_message():
    app, peer = App(), Peer(chunk(600), chunk(400, more=False))
    await limits(app)(http((b"transfer-encoding", b"chunked")), peer.receive, peer.send)
    assert app.bodies == [b"x" * 1000]
    assert b"connection" not in peer.response_headers


async def test_a_declared_length_over_the_limit_is_refused_then_the_rest_is_read_and_dropped():
    app, peer = App(), Peer(chunk(LIMIT), chunk(LIMIT), chunk(5, more=False))
    await limits(app)(http((b"content-length", b"2005")), peer.receive, peer.send)
    assert app.calls[0][REFUSAL].code == 413 and app.bodies == []
    assert peer.response_headers[b"connection"] == b"close"
    assert peer.left_unread == 0, "the rest of the body was read before the end of the answer"
    assert [m.get("more_body") for m in peer.sent[1:]] == [True, False]  # the answer, then its end
    assert peer.sent[1]["body"] == b"{}"


async def test_a_chunked_body_is_refused_as_soon_as_it_goes_over():
    app, peer = App(), Peer(chunk(600), chunk(600), chunk(600), chunk(1, more=False))
    await limits(app)(http((b"transfer-encoding", b"chunked")), peer.receive, peer.send)
    assert app.calls[0][REFUSAL].code == 413
    assert "1000-byte limit" in app.calls[0][REFUSAL].description
    assert peer.left_unread == 0


async def test_a_body_over_the_limit_in_its_last_piece_needs_no_lingering():
    app, peer = App(), Peer(chunk(LIMIT + 1, more=False))
    await asyncio.wait_for(limits(app, linger_seconds=30)(http((b"transfer-encoding", b"chunked")),
                                                          peer.receive, peer.send), 1)
    assert peer.response_headers[b"connection"] == b"close"


async def test_the_lingering_stops_when_the_client_leaves_or_time_is_up():
    app, peer = App(), Peer(chunk(LIMIT + 1), {"type": "http.disconnect"}, chunk(1))
    await limits(app)(http((b"transfer-encoding", b"chunked")), peer.receive, peer.send)
    assert peer.left_unread == 1 and peer.sent[-1] == {"type": "http.response.body", "body": b"",
                                                       "more_body": False}
    app, peer = App(), Peer(chunk(LIMIT + 1))  # and nothing more, ever
    started = asyncio.get_running_loop().time()
    await limits(app, linger_seconds=0.2)(http((b"transfer-encoding", b"chunked")), peer.receive, peer.send)
    assert 0.2 <= asyncio.get_running_loop().time() - started < 1
    assert peer.sent[-1]["more_body"] is False


async def test_a_body_that_does_not_come_in_time_is_a_408():
    app, peer = App(), Peer(chunk(10))
    await limits(app, body_timeout=0.1, linger_seconds=0.1)(http((b"content-length", b"20")),
                                                             peer.receive, peer.send)
    assert app.calls[0][REFUSAL].code == 408 and peer.response_headers[b"connection"] == b"close"


async def test_headers_over_the_limit_are_refused_without_waiting_for_a_body():
    app, peer = App(), Peer()
    await asyncio.wait_for(limits(app)(http((b"x-big", b"a" * 300)), peer.receive, peer.send), 1)
    refusal = app.calls[0][REFUSAL]
    assert refusal.code == 431 and "over the 200-byte limit" in refusal.description


async def test_a_request_without_a_body_goes_to_the_app_untouched():
    seen = []

    async def app(scope, receive, send):
        seen.append(receive)

    peer = Peer()
    await limits(app)({**http(), "method": "GET"}, peer.receive, peer.send)
    assert seen == [peer.receive]  # not wrapped: a streaming answer starts at once


async def test_a_client_that_leaves_mid_body_is_not_answered():
    app, peer = App(), Peer(chunk(10), {"type": "http.disconnect"})
    await limits(app)(http((b"content-length", b"100")), peer.receive, peer.send)
    assert app.calls == [] and peer.sent == []


async def test_websockets_and_lifespan_pass_untouched():
    app = App()
    calls = []

    async def inner(scope, receive, send):
        calls.append(scope["type"])

    for kind in ("websocket", "lifespan"):
        await limits(inner)({"type": kind, "headers": [(b"x", b"a" * 500)]}, Peer().receive, Peer().send)
    assert calls == ["websocket", "lifespan"] and app.calls == []


# Through the kit's app: the refusal is a JSON error like any other.

def make_app(redis):
    app = create_app(KitSettings(service_name="calc", instance_id="calc-1", max_body_bytes=LIMIT,
                                 max_header_bytes=2048), import_name=__name__, redis=redis)

    @app.post("/echo")
    async def echo():
        from quart import request
        return {"size": len(await request.get_data())}

    return app


# (Quart's test client frames no body: the Content-Length an HTTP/1.1 client sends is given here.)
@pytest.mark.parametrize(("headers", "data", "status"), [
    ({"Content-Length": str(LIMIT + 1)}, b"x" * (LIMIT + 1), 413),
    ({"X-Big": "a" * 3000}, b"", 431),
])
async def test_a_refusal_is_a_json_error_with_a_request_id_and_a_closed_connection(redis, headers, data,
                                                                                 status):
    response = await make_app(redis).test_client().post("/nowhere", data=data, headers=headers)
    assert response.status_code == status
    body = await response.get_json()
    assert body["status"] == status and body["error"] and "limit" in body["detail"]
    assert response.headers["X-Request-ID"] and response.headers["Connection"] == "close"


# The gateway's limits and the services' agree (proxy/Caddyfile, apps/kit/serve.py).

CADDYFILE = (ROOT / "proxy/Caddyfile").read_text()


def handle_blocks(text: str) -> list[str]:
    """The site's top-level `handle` blocks, each as its text."""
    return re.findall(r"^\thandle [^\n]*\{\n.*?^\t\}$", text, flags=re.S | re.M)


def test_every_proxied_route_refuses_what_its_service_would_refuse():
    proxied = [b for b in handle_blocks(CADDYFILE) if "reverse_proxy" in b or "import routed" in b]
    assert len(proxied) >= 10
    for block in proxied:
        assert f"import body_limit {KitSettings().max_body_bytes}\n" in block, block.splitlines()[0]


def test_the_services_header_limit_is_the_one_a_client_meets_through_caddy():
    caddy = int(re.search(r"max_header_size (\d+)KiB", CADDYFILE).group(1)) * 1024
    assert KitSettings().max_header_bytes < caddy  # under it, Go's plain-text 431 would answer
    go_slack = 4096  # net/http reads this much past its limit
    # Caddy forwards the client's headers plus Host again in X-Forwarded-Host: Hypercorn must
    # read it all for the kit to answer.
    assert 2 * (caddy + go_slack) < HEADER_READ_LIMIT
