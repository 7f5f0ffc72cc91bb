"""The request id travels: on HTTP calls between services, and inside envelopes."""

from __future__ import annotations

import json

import httpx
import pytest

from apps.kit.broker import BrokerClient
from apps.kit.envelope import Envelope, MalformedEnvelope
from apps.kit.http import new_http_client
from apps.kit.logs import request_id_var, serving
from apps.kit.names import Keys
from scripts.devkit import wait_until_async

KEYS = Keys()


async def sent_headers(**headers: str) -> httpx.Headers:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with new_http_client(transport=httpx.MockTransport(record)) as client:
        await client.get("http://weather/weather", headers=headers)
    return seen[0].headers


async def test_the_http_client_forwards_the_request_being_served():
    with serving("trace-1"):
        assert (await sent_headers())["x-request-id"] == "trace-1"
    assert "x-request-id" not in await sent_headers()  # outside a request: none invented
    with serving("trace-1"):
        assert (await sent_headers(**{"X-Request-ID": "mine"}))["x-request-id"] == "mine"


def test_serving_sets_the_id_for_the_block_only():
    with serving("outer"):
        with serving("inner"):
            assert request_id_var.get() == "inner"
        assert request_id_var.get() == "outer"
    assert request_id_var.get() == ""


def test_an_envelope_carries_the_request_being_served(redis):
    broker = BrokerClient(redis, KEYS, "ping")
    assert broker.envelope("pong", "note").request_id is None
    with serving("trace-2"):
        envelope = broker.envelope("pong", "note")
    assert envelope.request_id == "trace-2"
    assert json.loads(envelope.to_json())["request_id"] == "trace-2"
    assert broker.envelope("pong", "note", request_id="given").request_id == "given"


def test_an_envelope_without_a_request_id_is_valid_and_a_bad_one_is_refused():
    base = {"id": "ab", "from": "ping", "to": "pong", "kind": "note"}
    assert Envelope.parse(json.dumps(base)).request_id is None
    with pytest.raises(MalformedEnvelope, match="request_id"):
        Envelope.parse(json.dumps({**base, "request_id": "has spaces\n"}))


async def test_an_envelope_is_handled_as_part_of_its_request(redis) -> None:
    pong = BrokerClient(redis, KEYS, "pong")
    seen: list[str] = []

    async def on_envelope(envelope: Envelope) -> None:
        seen.append(request_id_var.get())

    subscription = pong.listen_envelopes([KEYS.inbox("pong")], on_envelope)
    await subscription.subscribed.wait()
    ping = BrokerClient(redis, KEYS, "ping")
    with serving("trace-3"):
        await ping.deliver(ping.envelope("pong", "note"))
    await ping.deliver(ping.envelope("pong", "note"))
    await wait_until_async(lambda: len(seen) == 2)
    assert seen == ["trace-3", ""]
    await subscription.stop()
