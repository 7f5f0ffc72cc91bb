"""The chat history through Caddy, as a script reads it: written by a real IRC client logged
in to an account, readable over HTTP by that account while it is in the channel, and by no
other (the one history rule, the same as CHATHISTORY's)."""

from __future__ import annotations

import secrets

import httpx

from scripts.devkit.ircclient import IrcClient


def irc_ports(stack) -> list[int]:
    """The IRC port of each gateway replica, as the directory lists them."""
    instances = stack.get("/directory/ircd").json()["instances"]
    return [int(item["meta"]["ports"]["irc"]) for item in instances]


def account(stack) -> tuple[str, str]:
    """A new account and its web session token."""
    name = f"reader{secrets.token_hex(3)}"
    body = {"account": name, "password": "long enough"}
    assert httpx.post(f"{stack.url}/api/users/register", json=body).status_code == 201
    return name, httpx.post(f"{stack.url}/api/users/login", json=body).json()["token"]


def test_history_through_caddy_for_an_account_in_the_channel_only(stack):
    channel = f"#e2e{secrets.token_hex(3)}"
    path = f"/api/messages/{channel.replace('#', '%23')}"
    name, token = account(stack)
    _, outsider_token = account(stack)
    irc = IrcClient(irc_ports(stack)[0])
    try:
        lines = irc.register(name, sasl=(name, "long enough"))
        assert any(" 903 " in line for line in lines), lines  # logged in
        irc.send(f"JOIN {channel}", *[f"PRIVMSG {channel} :m{i}" for i in range(3)])
        irc.sync()
        assert stack.get(path).status_code == 401
        reader = stack.get(path, headers={"Authorization": f"Bearer {token}"})
        assert reader.status_code == 200
        ids = [m["id"] for m in reader.json()["messages"]]
        assert [m["text"] for m in reader.json()["messages"]] == ["m0", "m1", "m2"]
        page = stack.get(f"{path}?before={ids[2]}", headers={"Authorization": f"Bearer {token}"})
        assert [m["id"] for m in page.json()["messages"]] == ids[:2]
        outsider = stack.get(path, headers={"Authorization": f"Bearer {outsider_token}"})
        assert outsider.status_code == 403 and outsider.json()["error"].startswith("not in that channel")
        bad = stack.get(f"{path}?limit=0", headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 400 and bad.json()["parameter"] == "limit"
        irc.send(f"PART {channel}")
        irc.sync()
        left = stack.get(path, headers={"Authorization": f"Bearer {token}"})
        assert left.status_code == 403  # out of the channel, out of its history
    finally:
        irc.close()


def test_internal_history_is_not_routed(stack):
    assert stack.get("/internal/history/%23anything").status_code == 404
    assert stack.get("/api/messages/limits").json()["max_limit"] == 100
