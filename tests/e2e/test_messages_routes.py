"""The chat history through Caddy, as the web page reads it; written as the ircd writes it."""

from __future__ import annotations

import secrets

import httpx

import redis
from apps.kit.names import Keys


def ircd_client(stack) -> redis.Redis:
    return redis.Redis(port=stack.redis_port, username="ircd", password="dev-only-ircd")


def test_public_history_through_caddy_needs_a_session(stack):
    channel = f"#e2e{secrets.token_hex(3)}"
    ircd = ircd_client(stack)
    key = Keys().chat_log(channel)
    ids = [ircd.xadd(key, {"command": "PRIVMSG", "from": "a!b@c", "account": "", "target": channel,
                           "text": f"m{i}"}).decode() for i in range(3)]
    ircd.hset(Keys().irc_channel(channel), mapping={"name": channel, "modes": "nt"})
    ircd.close()
    path = f"/api/messages/{channel.replace('#', '%23')}"
    assert stack.get(path).status_code == 401
    name = f"reader{secrets.token_hex(3)}"
    httpx.post(f"{stack.url}/api/users/register", json={"account": name, "password": "long enough"})
    token = httpx.post(f"{stack.url}/api/users/login",
                       json={"account": name, "password": "long enough"}).json()
    response = stack.get(f"{path}?before={ids[2]}", headers={"Authorization": f"Bearer {token['token']}"})
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["messages"]] == ids[:2]
    bad = stack.get(f"{path}?limit=0", headers={"Authorization": f"Bearer {token['token']}"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "limit"


def test_internal_history_is_not_routed(stack):
    assert stack.get("/internal/history/%23anything").status_code == 404
    assert stack.get("/api/messages/limits").json()["max_limit"] == 100
