"""The local stack as a user meets it: scripts/up, then requests through Caddy."""

from scripts.devkit import LocalStack, running_server, wait_until


def test_directory_through_caddy_lists_every_running_service(stack):
    from scripts.devkit import manifest

    body = stack.get("/directory").json()
    expected = {spec.service_name for spec in manifest.load().services}
    assert expected <= set(body["services"])
    for instances in body["services"].values():
        assert all(0 < item["ttl"] <= 10 for item in instances)


def test_directory_of_one_service_and_bad_names(stack):
    assert stack.get("/directory/directory").json()["service"] == "directory"
    missing = stack.get("/directory/nobody")
    assert missing.status_code == 404 and missing.json()["service"] == "nobody"
    for bad in ("Calc", "a_b", "x" * 65, "caf%C3%A9"):
        response = stack.get(f"/directory/{bad}")
        assert response.status_code == 400, bad
        assert "invalid service name" in response.json()["error"]


def test_unknown_path_is_a_json_404_from_caddy(stack):
    response = stack.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "not found"


def test_a_plain_request_to_the_irc_websocket_is_a_json_426_through_caddy(stack):
    response = stack.get("/irc")
    assert response.status_code == 426  # (Caddy drops the Upgrade header: a hop-by-hop one)
    assert response.json()["error"] == "upgrade required" and "/irc" in response.json()["detail"]


def test_caddy_health(stack):
    assert stack.get("/health").json() == {"status": "ok", "service": "caddy"}


def test_a_killed_service_comes_back_and_caddy_answers_json_502_meanwhile(stack):
    with stack.held_down("directory"):
        wait_until(lambda: stack.get("/directory").status_code in (502, 503), timeout=10)
        down = stack.get("/directory")
        assert down.headers["content-type"].startswith("application/json")
        assert down.json()["status"] in (502, 503)
    wait_until(lambda: stack.get("/directory").status_code == 200, timeout=20)


def test_stopping_leaves_no_process_and_no_directory_entry():
    with running_server() as server:
        admin = server.admin()
        local = LocalStack(redis_url=server.admin_url).start()
        try:
            services = admin.smembers("canaduck:services")
            assert "directory" in services
            assert all(admin.hlen(f"canaduck:directory:{name}") >= 1 for name in services)
        finally:
            assert local.stop() == 0
        assert local.leaked == [] and not local.process_group_alive()
        assert admin.keys("canaduck:directory*") == []  # every instance left its service's hash
        assert "SIGTERM received" in local.log()
    assert "could not deregister" not in local.log()

