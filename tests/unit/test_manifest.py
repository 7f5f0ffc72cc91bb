"""docker-compose.yml is the service manifest: the local runner plans its processes from it,
and the Caddyfile, the ACL file and the apps agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.devkit import manifest as m

ROOT = Path(__file__).resolve().parents[2]
CADDYFILE = "\n".join(line for line in (ROOT / "proxy/Caddyfile").read_text().splitlines()
                      if not line.lstrip().startswith("#"))
ACL_USERS = {line.split()[1] for line in (ROOT / "redis/users.acl").read_text().splitlines()
             if line.startswith("user ")}


@pytest.fixture
def manifest() -> m.Manifest:
    return m.load(environ={})


def test_every_app_folder_is_a_service_of_the_manifest(manifest):
    apps = {f"apps.{p.parent.name}" for p in (ROOT / "apps").glob("*/app.py") if p.parent.name != "kit"}
    assert apps == {s.module for s in manifest.services}


def test_every_routed_service_name_runs_in_the_manifest(manifest):
    routed = set(re.findall(r"(?:import routed|srv) ([a-z0-9-]+)(?:\.service\.canaduck)?", CADDYFILE))
    assert routed, "the Caddyfile routes nothing through the directory"
    assert routed <= {s.service_name for s in manifest.services}


def test_every_service_logs_in_as_an_acl_user(manifest):
    for spec in manifest.services:
        assert spec.redis_user in ACL_USERS, spec.name


def test_the_plan_names_replicas_like_containers_and_gives_each_its_own_ports(manifest):
    instances = m.plan(manifest, 5000, {"calc": 4})
    names = [i.name for i in instances]
    assert names.count("calc-1") == 1 and "calc-4" in names and "calc" not in names
    assert {"directory", "mult-a", "mult-b", "mult-backup"} <= set(names)
    ports = [i.port for i in instances] + [p for i in instances for p in i.extra_ports.values()]
    assert len(ports) == len(set(ports)) and min(ports) == 5001
    assert m.plan(manifest, 5000, {"calc": 0}) == [i for i in m.plan(manifest, 5000, {"calc": 0})
                                                   if i.spec.name != "calc"]


def test_a_shared_port_is_one_port_for_every_replica_after_all_the_others(manifest):
    instances = m.plan(manifest, 5000, {"ircd": 3})
    gateways = [i for i in instances if i.spec.name == "ircd"]
    assert len(gateways) == 3 and len({tuple(i.shared_ports.items()) for i in gateways}) == 1
    shared = gateways[0].shared_ports["irc_shared"]
    own = [i.port for i in instances] + [p for i in instances for p in i.extra_ports.values()]
    assert shared == max(own) + 1  # adding it moved no instance's own port
    envs = [m.instance_environment(i, instances) for i in gateways]
    assert {env["IRC_SHARED_PORT"] for env in envs} == {str(shared)}
    assert len({env["IRC_PORT"] for env in envs}) == 3  # each keeps its own port too
    assert not any(i.shared_ports for i in m.plan(manifest, 5000, {"ircd": 0}))


def test_default_replicas_come_from_deploy(manifest):
    assert [i.name for i in m.plan(manifest, 5000) if i.spec.name == "calc"] == ["calc-1", "calc-2"]
    # Scaled to one, a replicated service keeps numbering, as compose does: calc-1.
    assert [i.name for i in m.plan(manifest, 5000, {"calc": 1}) if i.spec.name == "calc"] == ["calc-1"]


def test_instance_environment_is_compose_s_made_local(manifest):
    instances = m.plan(manifest, 7000)
    by_name = {i.name: i for i in instances}
    ping = m.instance_environment(by_name["ping"], instances)
    assert ping["PEER_URL"] == by_name["pong"].url  # compose's http://pong:5000
    assert ping["TRANSPORT"] == "broker"  # ${TRANSPORT:-broker}
    assert ping["INSTANCE_ID"] == "ping" and ping["ADVERTISE_URL"] == by_name["ping"].url
    assert "REDIS_PASSWORD" not in ping and "REDIS_USERNAME" not in ping
    mult = m.instance_environment(by_name["mult-a"], instances)
    assert mult["SERVICE_NAME"] == "mult" and mult["INSTANCE_ID"] == "mult-a"
    directory = m.instance_environment(by_name["directory"], instances)
    assert directory["DNS_PORT"] == str(by_name["directory"].extra_ports["dns"])
    assert directory["ADVERTISE_PORTS"] == f'{{"dns": {directory["DNS_PORT"]}}}'


def test_caddy_gets_the_directory_dns_and_the_static_mult_upstreams_locally(manifest):
    instances = m.plan(manifest, 7000)
    by_name = {i.name: i for i in instances}
    env = m.proxy_environment(manifest, instances, 8123)
    assert env["CADDY_PORT"] == "8123" and "CADDY_BIND" not in env
    assert env["DIRECTORY_DNS"] == f"127.0.0.1:{by_name['directory'].extra_ports['dns']}"
    assert env["MULT_A_UPSTREAM"] == f"127.0.0.1:{by_name['mult-a'].port}"
    placeholders = set(re.findall(r"\{\$([A-Z_]+)(?::[^}]*)?\}", CADDYFILE)) - {"CADDY_ADMIN", "CADDY_BIND"}
    assert placeholders <= set(env), "a Caddy placeholder keeps its default locally"


def test_interpolation_follows_compose():
    env = {"SET": "x", "EMPTY": ""}
    assert m.interpolate("${SET:-d}/${EMPTY:-d}/${UNSET:-d}", env) == "x/d/d"
    assert m.interpolate("${SET-d}/${EMPTY-d}/${UNSET-d}", env) == "x//d"
    assert m.interpolate("${SET}/${UNSET}", env) == "x/"


@pytest.mark.parametrize("value", ["calc", "calc=x", "calc=-1", "calc=65", "nobody=2"])
def test_bad_scale_arguments_are_refused_with_a_reason(manifest, value):
    with pytest.raises(m.ManifestError):
        m.parse_scale([value], manifest)


def test_scale_arguments(manifest):
    assert m.parse_scale(["calc=4", "mult-a=2,broker=0"], manifest) == {"calc": 4, "mult-a": 2, "broker": 0}


def test_an_extra_tcp_port_per_instance(tmp_path):
    compose = tmp_path / "services.yaml"  # a manifest of its own, with one ircd entry
    compose.write_text("""
services:
  ircd:
    build: {context: ., args: {APP: ircd}}
    deploy: {replicas: 2}
    x-canaduck: {probe: /irc/health, ports: {irc: IRC_PORT}}
    environment: {SERVICE_NAME: ircd, IRC_PORT: "6667", REDIS_USERNAME: ircd}
""")
    manifest = m.load(compose, environ={})
    a, b = m.plan(manifest, 6000)
    assert (a.name, b.name) == ("ircd-1", "ircd-2")
    assert a.extra_ports["irc"] != b.extra_ports["irc"]
    env = m.instance_environment(b, [a, b])
    assert env["IRC_PORT"] == str(b.extra_ports["irc"])
    assert env["ADVERTISE_PORTS"] == f'{{"irc": {b.extra_ports["irc"]}}}'


def test_several_extra_ports_are_as_many_ports(tmp_path):
    compose = tmp_path / "services.yaml"
    compose.write_text("""
services:
  ircd:
    build: {context: ., args: {APP: ircd}}
    deploy: {replicas: 2}
    x-canaduck: {ports: {irc: IRC_PORT, irc-proxy: IRC_PROXY_PORT}}
    environment: {SERVICE_NAME: ircd, IRC_PORT: "6667", IRC_PROXY_PORT: "6670"}
""")
    a, b = m.plan(m.load(compose, environ={}), 6000)
    ports = [a.port, *a.extra_ports.values(), b.port, *b.extra_ports.values()]
    assert ports == list(range(6001, 6007))  # every one its own, in order
    env = m.instance_environment(b, [a, b])
    assert (env["IRC_PORT"], env["IRC_PROXY_PORT"]) == ("6005", "6006")
    assert env["ADVERTISE_PORTS"] == '{"irc": 6005, "irc-proxy": 6006}'


def running(manifest: m.Manifest, *names: str) -> list[str]:
    """The instances `scripts/up <names>` starts, in manifest order."""
    selected = m.select(manifest, names)
    return [i.name for i in m.plan(manifest, 5000) if i.spec.name in selected]


@pytest.mark.parametrize(("names", "instances"), [
    # The directory always runs (Caddy depends on it); each service brings its depends_on.
    (("ping", "pong"), ["directory", "ping", "pong", "broker"]),
    (("ping",), ["directory", "ping", "broker"]),
    (("weather", "jokes", "aggregator"), ["directory", "weather", "jokes", "aggregator"]),
    (("aggregator",), ["directory", "weather", "jokes", "aggregator"]),
    # A replicated service starts every replica; a directory name, every service under it.
    (("calc",), ["directory", "calc-1", "calc-2"]),
    (("mult",), ["directory", "mult-a", "mult-b", "mult-backup"]),
    (("mult-b",), ["directory", "mult-b"]),
    (("calc", "mult"), ["directory", "calc-1", "calc-2", "mult-a", "mult-b", "mult-backup"]),
    (("ircd",), ["directory", "users", "ircd-1", "ircd-2"]),
    (("users", "messages", "ircd", "web"), ["directory", "users", "messages", "web", "ircd-1", "ircd-2"]),
    (("directory", "directory"), ["directory"]),
])
def test_named_services_run_with_what_they_depend_on(manifest, names, instances):
    assert running(manifest, *names) == instances


def test_no_name_runs_everything(manifest):
    assert running(manifest) == [i.name for i in m.plan(manifest, 5000)]


def test_a_selection_keeps_the_ports_of_the_whole_stack(manifest):
    whole = {i.name: (i.port, i.extra_ports) for i in m.plan(manifest, 5000)}
    assert whole["ping"][0] == 5003 and whole["directory"] == (5001, {"dns": 5002})
    selected = m.select(manifest, ["ping", "pong"])
    for instance in m.plan(manifest, 5000):
        if instance.spec.name in selected:
            assert (instance.port, instance.extra_ports) == whole[instance.name]


def test_an_unknown_name_is_refused_naming_the_known_ones(manifest):
    with pytest.raises(m.ManifestError) as refused:
        m.select(manifest, ["ping", "pingg"])
    message = str(refused.value)
    assert "'pingg'" in message
    assert all(spec.name in message for spec in manifest.services)
    assert "mult (= mult-a, mult-b, mult-backup)" in message
