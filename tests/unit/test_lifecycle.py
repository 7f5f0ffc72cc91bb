"""An instance's life on fakeredis: a SIGTERM that lands during start-up leaves no entry."""

from __future__ import annotations

import asyncio

from apps.kit.lifecycle import Runtime
from apps.kit.settings import KitSettings

SETTINGS = KitSettings(service_name="broker", instance_id="b1", advertise_url="http://127.0.0.1:1")


async def test_a_withdraw_while_registering_leaves_no_entry(redis, monkeypatch):
    runtime = Runtime(SETTINGS, redis)
    runtime.checked = True  # fakeredis has no hash-field expiry probe to pass
    registering, release = asyncio.Event(), asyncio.Event()
    register = runtime.directory.register

    async def slow_register(entry):
        registering.set()
        await release.wait()
        await register(entry)  # lands after the withdraw's HDEL, as a slow HSET would

    monkeypatch.setattr(runtime.directory, "register", slow_register)
    starting = asyncio.create_task(runtime.start())
    await registering.wait()
    await runtime.withdraw()
    release.set()
    await starting

    assert await redis.hgetall("canaduck:directory:broker") == {}
    assert not runtime.started and runtime._heartbeat is None
    await runtime.stop()


async def test_a_withdraw_before_start_never_registers(redis):
    runtime = Runtime(SETTINGS, redis)
    runtime.checked = True
    await runtime.withdraw()
    await runtime.start()
    assert await redis.hgetall("canaduck:directory:broker") == {}
    await runtime.stop()


async def test_a_normal_start_registers_and_stop_deregisters(redis):
    runtime = Runtime(SETTINGS, redis)
    runtime.checked = True
    await runtime.start()
    assert list(await redis.hgetall("canaduck:directory:broker")) == [b"b1"]
    assert await redis.smembers("canaduck:services") == {b"broker"}
    await runtime.stop()
    assert await redis.hgetall("canaduck:directory:broker") == {}


async def test_stop_waits_for_a_withdraw_in_flight_before_closing_redis(redis, monkeypatch, caplog):
    runtime = Runtime(SETTINGS, redis)
    runtime.checked = True
    await runtime.start()
    deregistering, release = asyncio.Event(), asyncio.Event()
    deregister = runtime.directory.deregister

    async def slow_deregister(service, instance):
        deregistering.set()
        await release.wait()
        return await deregister(service, instance)

    monkeypatch.setattr(runtime.directory, "deregister", slow_deregister)
    signal_handler = asyncio.create_task(runtime.withdraw())  # what SIGTERM starts
    await deregistering.wait()
    stopping = asyncio.create_task(runtime.stop())  # what Hypercorn's shutdown then runs
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop() must wait for the withdraw in flight"
    release.set()
    await asyncio.gather(signal_handler, stopping)
    assert "could not deregister" not in caplog.text


async def test_beat_hooks_run_after_each_beat_and_a_failing_one_does_not_stop_it(redis):
    runtime = Runtime(SETTINGS.model_copy(update={"heartbeat_interval": 0.01}), redis)
    runtime.checked = True
    beats = []

    @runtime.on_beat
    async def failing() -> None:
        beats.append("failing")
        raise RuntimeError("boom")

    @runtime.on_beat
    async def counting() -> None:
        beats.append("counting")

    await runtime.start()
    for _ in range(200):
        if beats.count("counting") >= 3:
            break
        await asyncio.sleep(0.01)
    await runtime.stop()
    assert beats.count("counting") >= 3 and beats.count("failing") >= 3
