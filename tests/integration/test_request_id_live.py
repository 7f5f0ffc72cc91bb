"""One request id follows a request: over HTTP between services and through the broker."""

from __future__ import annotations

import json
import uuid

import httpx

from scripts.devkit import ServiceProcess, wait_until


def logged_with(svc: ServiceProcess, request_id: str) -> list[dict]:
    """The service's JSON log lines that carry `request_id`."""
    lines = []
    for text in svc.log().splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("request_id") == request_id:
            lines.append(line)
    return lines


def test_one_fullinfo_is_followed_through_the_aggregator_weather_and_jokes(launcher):
    weather = launcher.start("apps.weather", "weather")
    jokes = launcher.start("apps.jokes", "jokes")
    aggregator = launcher.start("apps.aggregator", "aggregator")
    request_id = f"follow-{uuid.uuid4().hex}"

    response = aggregator.get("/fullinfo?city=Rodez", headers={"X-Request-ID": request_id})

    assert response.status_code == 200 and response.headers["x-cache"] == "MISS"
    assert response.headers["X-Request-ID"] == request_id
    expected = [(aggregator, "GET /fullinfo 200"), (weather, "GET /weather 200"),
                (jokes, "GET /joke 200")]
    for svc, access_line in expected:
        wait_until(lambda svc=svc: logged_with(svc, request_id), timeout=5)
        assert access_line in [line["msg"] for line in logged_with(svc, request_id)], svc.module


def test_a_request_without_an_id_gets_one_and_passes_it_on(launcher):
    weather = launcher.start("apps.weather", "weather")
    launcher.start("apps.jokes", "jokes")
    aggregator = launcher.start("apps.aggregator", "aggregator")
    response = aggregator.get("/fullinfo?city=Tokyo")
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32
    wait_until(lambda: logged_with(weather, request_id), timeout=5)


def test_a_message_posted_to_the_broker_carries_the_request_id_to_the_inbox(launcher, admin) -> None:
    launcher.start("apps.broker", "broker")
    inbox = admin.pubsub(ignore_subscribe_messages=True)
    inbox.subscribe("canaduck:inbox:sink")
    admin.hset("canaduck:directory:sink", "test", json.dumps(
        {"service": "sink", "instance": "test", "url": "", "channel": "canaduck:inbox:sink",
         "started_at": 0, "version": "", "meta": {}}))
    broker = launcher.started[0]
    request_id = f"follow-{uuid.uuid4().hex}"
    try:
        response = httpx.post(f"{broker.url}/messages", json={"to": "sink", "kind": "note",
                                                              "body": {"n": 1}},
                              headers={"X-Request-ID": request_id}, timeout=5)
        assert response.status_code == 202, response.text
        messages: list[dict] = []

        def received() -> bool:
            # None also for the subscription's own confirmation, which is skipped.
            message = inbox.get_message(timeout=0.1)
            if message is not None:
                messages.append(message)
            return bool(messages)

        wait_until(received, timeout=5)
        envelope = json.loads(messages[0]["data"])
        assert envelope["request_id"] == request_id and envelope["body"] == {"n": 1}
        assert logged_with(broker, request_id)
    finally:
        inbox.close()
