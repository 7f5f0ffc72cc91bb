"""Which URL an instance puts in the directory."""

from __future__ import annotations

import pytest

from apps.kit.advertise import own_address
from apps.kit.lifecycle import Runtime
from apps.kit.settings import KitSettings


@pytest.mark.parametrize(("env", "url", "own"), [
    ({"ADVERTISE_URL": "http://calc-1:5000"}, "http://calc-1:5000", False),
    ({"HOST": "127.0.0.1", "PORT": "5020"}, "http://127.0.0.1:5020", False),
    ({"HOST": "0.0.0.0", "PORT": "5000"}, "http://127.0.0.1:5000", True),
    ({"HOST": "::1", "PORT": "5000"}, "http://[::1]:5000", False),
])
def test_the_url_comes_from_advertise_url_or_host(monkeypatch, env, url, own):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = KitSettings()
    assert settings.url == url
    assert settings.advertises_own_address is own


async def test_own_address_is_the_local_end_towards_redis():
    assert await own_address("redis://127.0.0.1:6379/0") == "127.0.0.1"
    assert await own_address("unix:///run/redis.sock") == "127.0.0.1"
    assert await own_address("redis://no-such-host.invalid:6379/0") == "127.0.0.1"


async def test_an_instance_listening_everywhere_registers_its_own_address(redis, monkeypatch):
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "5999")
    monkeypatch.setenv("SERVICE_NAME", "calc")
    runtime = Runtime(KitSettings(), redis)
    await runtime.start()
    try:
        [entry] = await runtime.directory.lookup("calc")
        assert entry.url == "http://127.0.0.1:5999"  # REDIS_URL's default host is loopback
    finally:
        await runtime.stop()


async def test_extra_ports_are_announced_in_the_entry(redis, monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "ircd")
    monkeypatch.setenv("ADVERTISE_PORTS", '{"irc": 6667}')
    runtime = Runtime(KitSettings(), redis)
    await runtime.start()
    try:
        [entry] = await runtime.directory.lookup("ircd")
        assert entry.meta == {"ports": {"irc": 6667}}
    finally:
        await runtime.stop()


@pytest.mark.parametrize("value", ['{"IRC": 6667}', '{"irc": 0}', '{"irc": 70000}', "irc=6667"])
def test_bad_extra_ports_are_refused(monkeypatch, value):
    monkeypatch.setenv("ADVERTISE_PORTS", value)
    with pytest.raises(ValueError):
        KitSettings()
