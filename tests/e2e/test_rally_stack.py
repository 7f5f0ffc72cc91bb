"""The rally and the broker as a user meets them: scripts/up, then requests through Caddy."""

from scripts.devkit import wait_until


def test_the_rally_is_played_over_the_broker_and_shown_through_caddy(stack):
    wait_until(lambda: stack.get("/rally").json()["longest_rally"] >= 3, timeout=20)
    board = stack.get("/rally").json()
    assert board["transport"] == "broker"
    assert set(board["players"]) == {"ping", "pong"}
    assert board["answered_by"] in ("ping", "pong")


def test_post_messages_through_caddy(stack):
    import httpx

    url = f"{stack.url}/messages"
    sent = httpx.post(url, json={"to": "pong", "kind": "note", "body": {"hi": 1}}, timeout=10)
    assert sent.status_code == 202 and sent.json()["delivered"] is True
    unknown = httpx.post(url, json={"to": "nobody", "kind": "note"}, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["to"] == "nobody"
    bad = httpx.post(url, json={"kind": "note"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"].startswith("invalid to")
