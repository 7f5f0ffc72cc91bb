"""EVENT_LOOP: every service runs on uvloop unless told to use the standard library's loop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import ValidationError

from apps.kit.serve import loop_factory
from apps.kit.settings import KitSettings


@pytest.mark.parametrize(("name", "loop_class"), [("uvloop", uvloop.Loop),
                                                  ("asyncio", asyncio.BaseEventLoop)])
def test_the_setting_picks_the_loop(name: str, loop_class: type) -> None:
    loop = loop_factory(name)()
    try:
        assert isinstance(loop, loop_class)
        assert isinstance(loop, uvloop.Loop) == (name == "uvloop")
    finally:
        loop.close()


def test_uvloop_is_the_default_and_anything_else_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KitSettings().event_loop == "uvloop"
    monkeypatch.setenv("EVENT_LOOP", "asyncio")
    assert KitSettings().event_loop == "asyncio"
    monkeypatch.setenv("EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="event_loop"):
        KitSettings()
