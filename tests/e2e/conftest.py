"""End-to-end tests: the whole local stack started by scripts/up, reached through Caddy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scripts.devkit import LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """One stack for the whole e2e session (starting it takes a few seconds)."""
    stack = LocalStack().start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    """One headless Chromium for every browser test of the session (each module opens the
    windows it needs); skips, saying why, without chromium, its driver or selenium."""
    from tests.e2e.browser import chromium, missing

    if missing():
        pytest.skip(missing())
    with chromium(1200, 800) as driver:
        yield driver
