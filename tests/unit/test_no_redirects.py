"""No service redirects, so none builds a redirect from the Host header a client sent.

Werkzeug's routing answers a path it would spell differently (`//`, a missing trailing slash)
with a redirect to an absolute URL built from Host: whoever sends the request picks where the
redirect points. Every path is tried the ways that used to redirect, on every service's app.
"""

from __future__ import annotations

import pytest

from scripts.devkit.inprocess import SERVICES

FORGED = {"Host": "evil.example"}
#: Answers that never end (the dashboard's event stream): the test client would wait forever.
#: (Leading slashes are not a different path: Werkzeug drops them before matching.)
STREAMS = {"/dashboard/feed"}


def variants(rule: str) -> set[str]:
    """Spellings of a route's path that differ from it only by slashes."""
    path = rule.replace("<", "").replace(">", "").replace("path:", "").replace(":", "")
    return {f"/{path}", f"{path}/" if not path.endswith("/") else path.rstrip("/") or "//",
            path.replace("/", "//", 1), path.replace("/", "//")}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_no_route_redirects_to_the_host_a_client_names(service, redis, started):
    app = SERVICES[service](redis)
    paths = {p for rule in app.url_map.iter_rules() if not rule.websocket for p in variants(rule.rule)}
    paths |= {"/static//x", "//static/x", "/health//", "///health"}
    async with started(app) as client:
        for path in sorted(p for p in paths if "/" + p.lstrip("/") not in STREAMS):
            response = await client.get(path, headers=FORGED)
            assert "Location" not in response.headers, (path, response.headers["Location"])
            assert not 300 <= response.status_code < 400, (path, response.status_code)
            if response.status_code >= 400:
                assert "error" in await response.get_json(), path
