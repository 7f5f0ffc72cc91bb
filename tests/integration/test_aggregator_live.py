"""The aggregator with real weather and jokes services, on the real server with the ACL."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from scripts.devkit import wait_until


def start_all(launcher, **aggregator_env):
    weather = launcher.start("apps.weather", "weather")
    jokes = launcher.start("apps.jokes", "jokes")
    aggregator = launcher.start("apps.aggregator", "aggregator", **aggregator_env)
    return weather, jokes, aggregator


@pytest.mark.cluster
def test_fullinfo_through_the_directory_then_from_the_cache(launcher, admin):
    _, _, aggregator = start_all(launcher)
    first = aggregator.get("/fullinfo?city=Rodez")
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    body = first.json()
    assert body["city"] == "Rodez" and body["weather"]["source"] == "synthetic" and body["joke"]
    assert aggregator.get("/fullinfo?city=Rodez").headers["x-cache"] == "HIT"
    assert admin.exists("canaduck:cache:weather:rodez", "canaduck:cache:joke") == 2
    assert 0 < admin.ttl("canaduck:cache:weather:rodez") <= 86_400


def test_jokes_are_loaded_and_added_with_the_jokes_acl_user(launcher, admin):
    jokes = launcher.start("apps.jokes", "jokes")
    assert admin.hlen("canaduck:jokes") >= 50
    new = {"joke": "Quel est le canard le plus patient ? Celui qui attend son cache."}
    created = httpx.post(f"{jokes.url}/jokes", json=new, timeout=5)
    assert created.status_code == 201
    assert httpx.post(f"{jokes.url}/jokes", json=new, timeout=5).status_code == 409
    assert jokes.get(f"/jokes/{created.json()['id']}").json()["joke"] == new["joke"]


def test_killing_weather_keeps_fullinfo_answering_until_it_comes_back(launcher):
    weather, _, aggregator = start_all(launcher, WEATHER_TTL="0.2")
    assert aggregator.get("/fullinfo?city=Rodez").json()["weather"] is not None
    weather.stop(signal.SIGKILL)
    time.sleep(0.3)  # past WEATHER_TTL: the cached copy is no longer fresh

    stale = aggregator.get("/fullinfo?city=Rodez")  # the 0.2 s copy is stale: served anyway
    assert stale.status_code == 200 and stale.headers["x-cache"] == "STALE"
    assert stale.json()["weather"] is not None and "weather" in stale.json()["errors"]
    partial = aggregator.get("/fullinfo?city=Albi")  # never seen: nothing stale to serve
    assert partial.status_code == 200
    assert partial.json()["weather"] is None and partial.json()["joke"]
    assert "weather" in partial.json()["errors"]

    launcher.start("apps.weather", "weather")
    wait_until(lambda: aggregator.get("/fullinfo?city=Albi").json()["weather"] is not None, timeout=15)
    recovered = aggregator.get("/fullinfo?city=Rodez")
    assert recovered.status_code == 200 and "errors" not in recovered.json()
