"""docker-stack.yml is docker-compose.yml made fit for Swarm: checked without an engine."""

from __future__ import annotations

import copy

import pytest
import yaml

from scripts.devkit.swarmstack import (
    COMPOSE_FILE,
    HEALTH_RETRIES,
    STACK_FILE,
    config_version,
    other_builds,
    render,
    rendered,
)

COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
STACK = yaml.safe_load(STACK_FILE.read_text())
SERVICES = STACK["services"]
APPS = sorted(name for name, body in COMPOSE["services"].items() if (body.get("build") or {}).get("args"))


def test_the_committed_stack_file_is_what_the_manifest_gives():
    assert STACK_FILE.read_text() == rendered(), \
        "docker-stack.yml is out of date with docker-compose.yml: run `scripts/swarm render`"


def test_every_compose_service_is_in_the_stack_with_its_settings():
    assert list(SERVICES) == list(COMPOSE["services"])
    for name, body in COMPOSE["services"].items():
        environment = dict(SERVICES[name].get("environment") or {})
        environment.pop("INSTANCE_ID", None)
        declared = dict(body.get("environment") or {})
        declared.pop("INSTANCE_ID", None)
        assert environment == declared, name
        # The same probe; more retries, since Swarm kills what it finds unhealthy.
        # An app with none in compose inherits its image's (only the retries are given).
        health = dict(SERVICES[name].get("healthcheck") or {})
        checked = "healthcheck" in body or "build" in body
        assert health.pop("retries", None) == (HEALTH_RETRIES if checked else None), name
        assert health == {k: v for k, v in (body.get("healthcheck") or {}).items() if k != "retries"}, name


def test_what_stack_deploy_rejects_or_ignores_is_gone():
    assert "name" not in STACK
    for name, service in SERVICES.items():
        assert not {"build", "depends_on", "restart", "expose", "dns_opt", "x-canaduck"} & set(service), name


@pytest.mark.parametrize("name", APPS)
def test_an_app_runs_its_apps_image_as_replicas_with_a_name_per_task(name: str):
    service = SERVICES[name]
    app = COMPOSE["services"][name]["build"]["args"]["APP"]
    assert service["image"] == f"${{CANADUCK_IMAGE_PREFIX:-canaduck}}/{app}:${{CANADUCK_TAG:-latest}}"
    assert service["deploy"]["replicas"] == (COMPOSE["services"][name].get("deploy") or {}).get("replicas", 1)
    fixed = (COMPOSE["services"][name].get("environment") or {}).get("INSTANCE_ID")
    # The slot says which replica; the task id keeps a replacement apart from the task it
    # replaces while both run (start-first), so the old one's deregistration spares the new.
    assert service["environment"]["INSTANCE_ID"] == (fixed or f"{name}-{{{{.Task.Slot}}}}-{{{{.Task.ID}}}}")


@pytest.mark.parametrize("name", APPS)
def test_an_app_updates_start_first_rolls_back_and_restarts(name: str):
    deploy = SERVICES[name]["deploy"]
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["update_config"]["parallelism"] == 1
    assert deploy["restart_policy"]["condition"] == "any"
    # SIGTERM deregisters, drains DRAIN_SECONDS (2), then Hypercorn finishes (GRACEFUL_TIMEOUT 5).
    assert SERVICES[name]["stop_grace_period"] == "15s"


def test_every_service_resolves_to_its_tasks_and_shares_one_overlay_network():
    assert STACK["networks"] == {"overlay": {"driver": "overlay", "attachable": True}}
    for name, service in SERVICES.items():
        assert service["deploy"]["endpoint_mode"] == "dnsrr", name  # no IPVS: no virtual IP
        assert service["networks"] == ["overlay"], name


def test_redis_is_one_task_with_its_volume_replaced_stop_first():
    redis = SERVICES["redis"]
    assert redis["deploy"]["replicas"] == 1 and redis["volumes"] == ["redis-data:/data"]
    assert redis["deploy"]["update_config"]["order"] == "stop-first"
    assert redis["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert STACK["volumes"] == {"redis-data": {}}


def test_caddy_runs_on_every_node_and_publishes_its_port_on_the_node():
    proxy = SERVICES["proxy"]
    assert proxy["deploy"]["mode"] == "global"
    assert proxy["ports"] == [{"target": 80, "protocol": "tcp", "mode": "host",
                               "published": "${CANADUCK_HTTP_PORT:-80}"}]
    assert proxy["deploy"]["update_config"]["order"] == "stop-first"  # two tasks cannot bind it
    assert {"source": "proxy-Caddyfile", "target": "/etc/caddy/Caddyfile"} in proxy["configs"]


def test_the_irc_balancer_runs_on_every_node_with_its_own_image_and_fixed_ports():
    balancer = SERVICES["irc-proxy"]
    assert balancer["image"] == "${CANADUCK_IMAGE_PREFIX:-canaduck}/irc-proxy:${CANADUCK_TAG:-latest}"
    assert balancer["deploy"]["mode"] == "global"
    assert balancer["deploy"]["update_config"]["order"] == "stop-first"
    assert balancer["ports"] == [
        {"target": 6667, "protocol": "tcp", "mode": "host", "published": "${CANADUCK_IRC_PORT:-6667}"},
        {"target": 6697, "protocol": "tcp", "mode": "host", "published": "${CANADUCK_IRC_TLS_PORT:-6697}"}]
    assert other_builds(COMPOSE) == {"irc-proxy": "proxy/irc"}


def test_the_irc_gateways_publish_a_free_host_port_per_task():
    assert SERVICES["ircd"]["ports"] == [{"target": 6667, "protocol": "tcp", "mode": "host"}]


def test_files_from_the_checkout_become_configs_named_by_their_content():
    redis_targets = {mount["target"] for mount in SERVICES["redis"]["configs"]}
    assert redis_targets == {"/usr/local/etc/redis/entrypoint.sh", "/usr/local/etc/redis/redis.conf",
                             "/usr/local/etc/redis/users.acl"}
    for key, config in STACK["configs"].items():
        assert config["name"] == f"${{CANADUCK_STACK:-canaduck-swarm}}_{key}_${{CANADUCK_CONFIG_VERSION:-1}}"
    version = config_version(STACK)
    assert len(version) == 12 and version == config_version(STACK)


def test_a_config_change_gives_new_config_names(tmp_path):
    for folder in ("redis", "proxy"):
        (tmp_path / folder).mkdir()
    (tmp_path / "redis" / "redis.conf").write_text("port 6379\n")
    (tmp_path / "proxy" / "Caddyfile").write_text(":80\n")
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["redis"]["volumes"] = ["./redis:/usr/local/etc/redis:ro", "redis-data:/data"]
    stack = render(compose, tmp_path)
    before = config_version(stack, tmp_path)
    (tmp_path / "proxy" / "Caddyfile").write_text(":81\n")
    assert config_version(stack, tmp_path) != before


def test_a_new_compose_service_appears_in_the_stack_as_it_is_declared():
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["quotes"] = {**copy.deepcopy(COMPOSE["services"]["jokes"]),
                                     "build": {"context": ".", "args": {"APP": "quotes"}},
                                     "deploy": {"replicas": 3}}
    stack = render(compose)
    assert stack["services"]["quotes"]["deploy"]["replicas"] == 3
    assert stack["services"]["quotes"]["image"].endswith("/quotes:${CANADUCK_TAG:-latest}")
