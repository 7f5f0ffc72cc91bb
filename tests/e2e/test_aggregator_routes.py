"""The aggregator's public routes through Caddy, on the shared local stack."""

from __future__ import annotations


def test_fullinfo_rodez(stack):
    response = stack.get("/fullinfo?city=Rodez")
    assert response.status_code == 200
    assert response.headers["x-cache"] in {"HIT", "MISS"}
    body = response.json()
    assert list(body) == ["city", "weather", "joke"]
    assert body["city"] == "Rodez"
    assert set(body["weather"]) == {"temperature", "condition", "source"}
    assert isinstance(body["joke"], str) and body["joke"]
    assert stack.get("/fullinfo?city=Rodez").headers["x-cache"] == "HIT"


def test_weather_honolulu(stack):
    response = stack.get("/weather", params={"city": "Honolulu"})
    assert response.status_code == 200
    body = response.json()
    assert body["city"] == "Honolulu" and body["source"] == "synthetic"
    assert isinstance(body["temperature"], float) and body["condition"]


def test_joke(stack):
    response = stack.get("/joke")
    assert response.status_code == 200
    assert set(response.json()) == {"id", "joke"}


def test_unicode_and_bad_cities_through_caddy(stack):
    assert stack.get("/fullinfo", params={"city": "東京"}).json()["city"] == "東京"
    bad = stack.get("/fullinfo", params={"city": "x" * 101})
    assert bad.status_code == 400 and bad.json()["parameter"] == "city"
    assert stack.get("/weather").status_code == 400


def test_weather_stays_internal_and_only_the_jokes_routes_are_public(stack):
    assert stack.get("/weather/x").status_code == 404
    assert stack.get("/jokes/0123456789ab").json()["error"] == "no such joke"
    listing = stack.get("/jokes")  # POST only: a JSON 405 from the jokes service itself
    assert listing.status_code == 405 and "POST" in listing.headers["Allow"]
