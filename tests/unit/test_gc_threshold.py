"""GC_YOUNG_THRESHOLD: how often the garbage collector looks at young objects, per service."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from apps.ircd.settings import IrcdSettings
from apps.kit import serve
from apps.kit.settings import KitSettings


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_cpythons_default_unless_a_service_measured_better(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KitSettings().gc_young_threshold == 700
    assert IrcdSettings().gc_young_threshold == 50_000  # the gateway's join waves
    monkeypatch.setenv("GC_YOUNG_THRESHOLD", "2000")
    assert IrcdSettings().gc_young_threshold == 2000
    monkeypatch.setenv("GC_YOUNG_THRESHOLD", "0")
    with pytest.raises(ValidationError):
        KitSettings()


def test_only_the_young_threshold_changes(thresholds: None) -> None:
    gc.set_threshold(700, 11, 12)
    serve.collect_less_often(50_000)
    assert gc.get_threshold() == (50_000, 11, 12)


def test_a_service_starts_with_its_threshold(thresholds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = KitSettings(gc_young_threshold=1234, log_level="ERROR")
    app: Any = SimpleNamespace(settings=settings)
    seen: list[tuple[int, int, int]] = []

    async def run(_: Any) -> int:
        seen.append(gc.get_threshold())
        return 0

    monkeypatch.setattr(serve, "load_app", lambda module: app)
    monkeypatch.setattr(serve, "setup_logging", lambda *args: None)
    monkeypatch.setattr(serve, "run", run)
    assert serve.main(["apps.somewhere"]) == 0
    assert seen[0][0] == 1234
