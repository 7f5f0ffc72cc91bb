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


def test_search_through_caddy_channel_and_private(stack):
    channel = f"#find{secrets.token_hex(3)}"
    path = f"/api/messages/search/{channel.replace('#', '%23')}"
    (alice, alice_token), (bob, _), (_, outsider_token) = account(stack), account(stack), account(stack)
    ports = irc_ports(stack)
    clients = [IrcClient(ports[0]), IrcClient(ports[-1])]  # on two replicas when there are two
    try:
        for client, name in zip(clients, (alice, bob), strict=True):
            assert any(" 903 " in line for line in client.register(name, sasl=(name, "long enough")))
        clients[0].send(f"JOIN {channel}", f"PRIVMSG {channel} :The pond is frozen",
                        f"PRIVMSG {channel} :ducks on the POND", f"PRIVMSG {channel} :nothing",
                        f"PRIVMSG {bob} :meet me at the pond")
        clients[0].sync()
        clients[1].sync()
        auth = {"Authorization": f"Bearer {alice_token}"}
        found = stack.get(f"{path}?q=pond", headers=auth)
        assert found.status_code == 200, found.text
        assert [m["text"] for m in found.json()["messages"]] == ["ducks on the POND", "The pond is frozen"]
        first = stack.get(f"{path}?q=pond&limit=1", headers=auth).json()
        rest = stack.get(f"{path}?q=pond&before={first['next_before']}", headers=auth).json()
        assert [m["text"] for m in rest["messages"]] == ["The pond is frozen"]
        assert stack.get(f"{path}?q=pond").status_code == 401
        outsider = stack.get(f"{path}?q=pond", headers={"Authorization": f"Bearer {outsider_token}"})
        assert outsider.status_code == 403
        for bad, parameter in (("q=", "q"), ("q=" + "x" * 201, "q"), ("q=pond&limit=0", "limit"),
                               ("q=pond&before=soon", "before")):
            answer = stack.get(f"{path}?{bad}", headers=auth)
            assert answer.status_code == 400 and answer.json()["parameter"] == parameter
        private = stack.get(f"/api/messages/search/private/{bob}?q=pond", headers=auth)
        assert [m["text"] for m in private.json()["messages"]] == ["meet me at the pond"]
        # The outsider names the same party: its own conversation with bob, empty.
        theirs = stack.get(f"/api/messages/search/private/{bob}?q=pond",
                           headers={"Authorization": f"Bearer {outsider_token}"})
        assert theirs.status_code == 200 and theirs.json()["messages"] == []
    finally:
        for client in clients:
            client.close()
