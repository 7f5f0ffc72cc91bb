"""The broker on fakeredis: relaying, bouncing, expiry, and POST /messages' answers."""

import asyncio
import json
import time

import pytest

from apps.broker.app import create_app
from apps.broker.settings import BrokerSettings
from apps.kit.broker import BrokerClient
from apps.kit.directory import Directory, Entry
from apps.kit.envelope import Envelope
from apps.kit.names import Keys
from scripts.devkit import wait_until_async

KEYS = Keys()


@pytest.fixture
def app(redis):
    return create_app(BrokerSettings(service_name="broker", instance_id="b1"), redis=redis)


async def register(redis, service: str) -> None:
    await Directory(redis, KEYS, 10).register(
        Entry(service=service, instance="i1", url="http://x", channel=KEYS.inbox(service)))


async def inbox(redis, service: str) -> tuple[list[Envelope], object]:
    received: list[Envelope] = []

    async def on_envelope(envelope: Envelope) -> None:
        received.append(envelope)

    subscription = BrokerClient(redis, KEYS, service).listen_envelopes([KEYS.inbox(service)], on_envelope)
    await subscription.subscribed.wait()
    return received, subscription


async def stats(client) -> dict:
    return await (await client.get("/stats")).get_json()


async def test_an_envelope_is_relayed_to_the_recipients_inbox(app, redis, started):
    await register(redis, "pong")
    received, sub = await inbox(redis, "pong")
    async with started(app) as client:
        envelope = BrokerClient(redis, KEYS, "ping").envelope("pong", "shot", {"hit": 1}, within=5)
        await BrokerClient(redis, KEYS, "ping").send(envelope)
        await wait_until_async(lambda: received)
        assert received[0].id == envelope.id and received[0].body == {"hit": 1}
        assert (await stats(client))["relayed"] == 1
    await sub.stop()


async def test_unknown_recipient_and_nobody_listening_bounce_back_as_undeliverable(app, redis, started):
    await register(redis, "deaf")  # in the directory, but nobody subscribed
    received, sub = await inbox(redis, "ping")
    async with started(app) as client:
        ping = BrokerClient(redis, KEYS, "ping")
        await ping.send(ping.envelope("nobody", "hello", 1))
        await ping.send(ping.envelope("deaf", "hello", 2))
        await wait_until_async(lambda: len(received) == 2)
        reasons = sorted(e.body["reason"] for e in received)
        assert reasons == ["nobody subscribed", "unknown recipient"]
        assert all(e.kind == "undeliverable" and e.sender == "broker" for e in received)
        assert sorted(e.body["body"] for e in received) == [1, 2]
        assert (await stats(client))["undeliverable"] == 2
    await sub.stop()


async def test_expired_and_malformed_envelopes_are_dropped_and_counted(app, redis, started):
    await register(redis, "pong")
    received, sub = await inbox(redis, "pong")
    async with started(app) as client:
        late = Envelope(sender="ping", to="pong", kind="shot", sent_at=time.time() - 2,
                        deadline=time.time() - 1)
        await redis.publish(KEYS.broker, late.to_json())
        await redis.publish(KEYS.broker, b"{not json")
        await redis.publish(KEYS.broker, json.dumps({"from": "ping", "to": "Bad Name", "kind": "x"}))
        await wait_until_async(lambda: app.extensions["relay"].counts["malformed"] == 2)
        await wait_until_async(lambda: app.extensions["relay"].counts["expired"] == 1)
        body = await stats(client)
        assert (body["expired"], body["malformed"], body["relayed"]) == (1, 2, 0)
        await asyncio.sleep(0.05)
        assert received == []
    await sub.stop()


async def test_post_messages_relays_and_says_how_many_heard_it(app, redis, started):
    await register(redis, "pong")
    received, sub = await inbox(redis, "pong")
    async with started(app) as client:
        response = await client.post("/messages", json={"to": "pong", "kind": "note", "body": {"a": 1}})
        assert response.status_code == 202
        body = await response.get_json()
        assert body["receivers"] == 1 and body["delivered"] is True
        await wait_until_async(lambda: received)
        assert received[0].id == body["id"] and received[0].sender == "broker"
    await sub.stop()


@pytest.mark.parametrize("payload, field", [
    ({"kind": "note"}, "to"),
    ({"to": "Not A Name", "kind": "note"}, "to"),
    ({"to": "pong"}, "kind"),
    ({"to": "pong", "kind": ""}, "kind"),
    ({"to": "pong", "kind": "note", "from": "ping"}, "from"),  # nobody speaks as a service
    ({"to": "pong", "kind": "note", "surprise": 1}, "surprise"),
    ({"to": "pong", "kind": "no\u0000te\n"}, "kind"),
])
async def test_post_messages_with_a_bad_field_is_a_400_naming_it(app, redis, started, payload, field):
    await register(redis, "pong")
    async with started(app) as client:
        response = await client.post("/messages", json=payload)
        assert response.status_code == 400
        body = await response.get_json()
        assert body["error"].startswith(f"invalid {field}")


@pytest.mark.parametrize("raw, problem", [
    (b"to=pong", "body is not valid JSON"),
    (b'{"to": "pong", "kind": "note", "body": ' + b"[" * 260 + b"]" * 260 + b"}", "recursion limit"),
    (b'{"to": "pong", "kind": "note", "body": "\\udfff"}', "surrogate"),
    (b'{"to": "pong", "kind": "note", "body": "caf\xe9"}', "not UTF-8"),
])
async def test_post_messages_that_is_not_strict_json_is_a_400_saying_why(app, redis, started, raw,
                                                                         problem):
    await register(redis, "pong")
    async with started(app) as client:
        response = await client.post("/messages", data=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert problem in (await response.get_json())["detail"]
    assert app.extensions["relay"].counts["relayed"] == 0


async def test_post_messages_as_a_form_is_a_400_about_the_body(app, started):
    async with started(app) as client:
        response = await client.post("/messages", form={"to": "pong", "kind": "note"})
        assert response.status_code == 400
        assert (await response.get_json())["error"].startswith("invalid body")


async def test_post_messages_over_64_kib_is_a_413(app, redis, started):
    await register(redis, "pong")
    async with started(app) as client:
        response = await client.post("/messages", json={"to": "pong", "kind": "x", "body": "a" * 70_000})
        assert response.status_code == 413
        assert "error" in await response.get_json()


async def test_post_messages_to_an_unknown_recipient_is_a_404(app, started):
    async with started(app) as client:
        response = await client.post("/messages", json={"to": "nobody", "kind": "x"})
        assert response.status_code == 404
        body = await response.get_json()
        assert body["to"] == "nobody" and "unknown recipient" in body["error"]
