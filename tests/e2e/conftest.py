"""End-to-end tests: the whole local stack started by scripts/up, reached through Caddy."""

from __future__ import annotations

from collections.abc import Iterator

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
