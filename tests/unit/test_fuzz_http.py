"""Hypothesis against every HTTP route of every service (scripts/devkit/fuzz_http.py): never a
5xx, never a hang, and a 4xx is a JSON object with an "error".

A short run, seeded so that CI is reproducible; `scripts/fuzz --target http` runs long.
"""

from __future__ import annotations

import pytest

from scripts.devkit.fuzz_http import Answer, fuzz_service, problem_with
from scripts.devkit.inprocess import SERVICES

EXAMPLES = 6  # per route
SEED = 20261204
KIT_ROUTES_IN = "calc"  # the kit's own routes are the same code everywhere: fuzzed once


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_no_request_breaks_a_service(service):
    report = await fuzz_service(service, examples=EXAMPLES, seed=SEED, kit_routes=service == KIT_ROUTES_IN)
    assert report.routes > 0 and report.examples >= report.routes
    assert report.findings == [], "\n".join(f"{f.route}: {f.problem}\n  {f.attempt}" for f in report.findings)


@pytest.mark.parametrize(("status", "body", "ok"), [
    (200, b"not json", True),
    (404, b'{"error": "not found", "status": 404}', True),
    (400, b"Bad Request", False),
    (400, b'{"status": 400}', False),
    (400, b'["error"]', False),
    (500, b'{"error": "internal error", "status": 500}', False),
    (0, b"", False),  # no answer at all
])
def test_the_property(status, body, ok):
    assert (problem_with(Answer(status, {}, body)) is None) == ok
