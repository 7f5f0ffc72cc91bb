"""The Swarm stack file, generated from the service manifest (docker-compose.yml).

`docker stack deploy` reads a compose file but not all of it, and Swarm needs things compose
does not. Rather than keep a second list of services by hand, docker-stack.yml is rendered from
docker-compose.yml by `render` (`scripts/swarm render` writes it; a unit test fails when the
committed file is not what `render` gives). What changes on the way:

- `build:` is ignored by `stack deploy`: each app service runs the image of its APP,
  `${CANADUCK_IMAGE_PREFIX:-canaduck}/<app>:${CANADUCK_TAG:-latest}` (`scripts/swarm up`
  builds them; across machines the prefix names a registry every node can pull from);
- `depends_on` conditions, the top-level `name:`, `restart:`, `expose:` and `x-canaduck` go:
  Swarm rejects or ignores them; each service waits for Redis itself (REDIS_WAIT) and the
  restart policy covers the rest;
- every service gets `endpoint_mode: dnsrr`: no virtual IP (this kernel has no IPVS, and the
  directory routes to instances anyway), the service name resolves to every task;
- each replica gets its own INSTANCE_ID, `<service>-<slot>-<task id>`: the slot says which
  replica it is, the task id keeps a replaced task and its replacement apart while both run
  (a start-first update), so one leaving never deregisters the other;
- stateless services update one task at a time, start-first (the new task healthy before the
  old one gets SIGTERM, deregisters and drains), roll back on their own when the new tasks
  fail, and restart whatever ends them;
- Redis is one task with its volume, updated stop-first (one append-only file, one writer),
  kept on a manager node so that its volume stays where it was;
- the edge, Caddy and the IRC balancer (a service that is no app and publishes a port), runs
  on every node (`mode: global`) and publishes its ports on the node itself (`mode: host`: the
  routing mesh needs IPVS); stop-first, since two tasks cannot bind one port;
- a service built from a folder of its own (the IRC balancer, `proxy/irc`) runs
  `${CANADUCK_IMAGE_PREFIX:-canaduck}/<service>:${CANADUCK_TAG:-latest}`, built by `scripts/swarm up`;
- a published port without a fixed host port (an IRC gateway's own: one per replica) gets a
  free host port per task, `mode: host`, on every address of the node (Swarm cannot bind
  one address, as compose's `127.0.0.1::6667` does);
- files mounted from the checkout (`./redis`, the Caddyfile) become Swarm configs, which
  every node receives; their names carry CANADUCK_CONFIG_VERSION (a digest of the files,
  set by `scripts/swarm`), since a config cannot change once created;
- health checks are compose's (or the image's, for an app that has none in compose), with more
  retries: Swarm kills an unhealthy task (compose only reports it), so a starved machine must
  not look like a dead service (HEALTH_RETRIES);
- the bridge network becomes an attachable overlay network.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from scripts.devkit.processes import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
STACK_FILE = ROOT / "docker-stack.yml"
#: The stack's overlay network.
NETWORK = "overlay"
IMAGE = "${CANADUCK_IMAGE_PREFIX:-canaduck}/%s:${CANADUCK_TAG:-latest}"
STACK_NAME = "${CANADUCK_STACK:-canaduck-swarm}"
CONFIG_VERSION = "${CANADUCK_CONFIG_VERSION:-1}"
#: Keys not copied as they are: Swarm rejects or ignores them (dns_opt included), or they are
#: rewritten below (networks, ports, volumes).
DROPPED = ("build", "depends_on", "restart", "expose", "x-canaduck", "dns_opt",
           "networks", "ports", "volumes")

#: Consecutive failed health checks before Swarm kills a task. Compose only reports a container
#: unhealthy; Swarm replaces it. With compose's 5 (15 s at a 3 s interval), a machine at load
#: 80 failed five probes in a row and Swarm killed 15 starved but working tasks at once, which
#: loaded it more; 20 checks is a minute of answering nothing, still caught.
HEALTH_RETRIES = 20

HEADER = """\
# The stack on Docker Swarm: `scripts/swarm up` (or, with the images built and
# CANADUCK_CONFIG_VERSION set, `docker stack deploy --resolve-image never -c docker-stack.yml
# canaduck-swarm`). GENERATED from docker-compose.yml by `scripts/swarm render`: do not edit;
# change docker-compose.yml (or scripts/devkit/swarmstack.py) and render again. A unit test
# fails when this file is not what they give. See docs/cluster.md.
"""


def app_of(body: dict[str, Any]) -> str:
    """The apps/ folder a compose service builds (its build's APP argument), or ""."""
    return str(((body.get("build") or {}).get("args") or {}).get("APP", ""))


def images(compose: dict[str, Any]) -> dict[str, str]:
    """Each app folder the manifest builds -> its image name in the stack (uninterpolated)."""
    apps = (app_of(body) for body in compose["services"].values())
    return {app: IMAGE % app for app in dict.fromkeys(apps) if app}


def other_builds(compose: dict[str, Any]) -> dict[str, str]:
    """Each service built from a folder of its own, not an app -> that folder (its context)."""
    return {name: str(body["build"]["context"]) for name, body in compose["services"].items()
            if isinstance(body.get("build"), dict) and not app_of(body)}


def image_of(name: str, body: dict[str, Any]) -> str:
    """The image a service runs in the stack: its app's, its own build's, or compose's image."""
    app = app_of(body)
    if app:
        return IMAGE % app
    return IMAGE % name if body.get("build") else str(body["image"])


def is_edge(body: dict[str, Any]) -> bool:
    """Caddy and the IRC balancer: no app, and a port published for clients."""
    return not app_of(body) and bool(body.get("ports"))


def _config_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", path.strip("./")).strip("-")


def _mounts(body: dict[str, Any], root: Path) -> tuple[list[str], list[dict[str, str]], dict[str, Any]]:
    """Named volumes kept; bind mounts of checkout files become configs, one per file."""
    volumes: list[str] = []
    mounts: list[dict[str, str]] = []
    configs: dict[str, Any] = {}
    for volume in body.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        if not source.startswith("."):
            volumes.append(str(volume))
            continue
        path = (root / source).resolve()
        files = [path]
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix != ".md")
        for file in files:
            relative = file.relative_to(root).as_posix()
            key = _config_name(relative)
            configs[key] = {"name": f"{STACK_NAME}_{key}_{CONFIG_VERSION}", "file": f"./{relative}"}
            inside = f"{target}/{file.name}" if path.is_dir() else target
            mounts.append({"source": key, "target": inside})
    return volumes, mounts, configs


def _ports(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Published ports on the node itself (`mode: host`); a range, or no host port
    (`127.0.0.1::6667`), gets a free port per task. A host address is dropped: Swarm has none."""
    ports = []
    for spec in body.get("ports") or []:
        # [address:]published:target, where `published` may hold a `${VAR:-default}` (its colon).
        rest, _, target = str(spec).rpartition(":")
        published = rest if rest.startswith("${") else rest.rpartition(":")[2]
        entry: dict[str, Any] = {"target": int(target), "protocol": "tcp", "mode": "host"}
        default = re.sub(r"\$\{[A-Za-z0-9_]+:?-?([^}]*)\}", r"\1", published)
        if default and not re.fullmatch(r"\d+-\d+", default):  # one fixed host port
            entry["published"] = published
        ports.append(entry)
    return ports


def _deploy(name: str, body: dict[str, Any]) -> dict[str, Any]:
    replicas = int((body.get("deploy") or {}).get("replicas", 1))
    restart = {"condition": "any", "delay": "2s"}
    if is_edge(body):
        # One Caddy (one IRC balancer) per node, each on the node's own port: any node answers.
        order = "stop-first"
        deploy: dict[str, Any] = {"mode": "global"}
    elif app_of(body):
        order = "start-first"
        deploy = {"mode": "replicated", "replicas": replicas}
    else:
        # Redis: one writer of one append-only file, on the node that holds its volume.
        order = "stop-first"
        deploy = {"mode": "replicated", "replicas": 1,
                  "placement": {"constraints": ["node.role == manager"]}}
    update = {"parallelism": 1, "delay": "1s", "order": order, "failure_action": "rollback",
              "monitor": "10s", "max_failure_ratio": 0}
    return {**deploy, "endpoint_mode": "dnsrr", "restart_policy": restart,
            "update_config": update,
            "rollback_config": {"parallelism": 1, "order": order, "failure_action": "pause"}}


def render(compose: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """The stack file for `compose` (docker-compose.yml as loaded by YAML, anchors merged)."""
    services: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    for name, declared in compose["services"].items():
        body = copy.deepcopy(declared)
        app = app_of(body)
        service: dict[str, Any] = {"image": image_of(name, body)}
        service.update({key: value for key, value in body.items() if key not in DROPPED and key != "image"})
        if app:
            environment = dict(body.get("environment") or {})
            environment.setdefault("INSTANCE_ID", f"{name}-{{{{.Task.Slot}}}}-{{{{.Task.ID}}}}")
            service["environment"] = environment
            # Longer than DRAIN_SECONDS plus GRACEFUL_TIMEOUT (2 + 5 s): SIGKILL never cuts a drain.
            service["stop_grace_period"] = "15s"
        if "healthcheck" in service or app:
            # An app without one in compose keeps its image's probe (no `test`: inherited).
            service["healthcheck"] = {**service.get("healthcheck", {}), "retries": HEALTH_RETRIES}
        volumes, mounts, more = _mounts(body, root)
        configs.update(more)
        if volumes:
            service["volumes"] = volumes
        if mounts:
            service["configs"] = mounts
        ports = _ports(body)
        if ports:
            service["ports"] = ports
        service["networks"] = [NETWORK]
        service["deploy"] = _deploy(name, body)
        services[name] = service
    stack: dict[str, Any] = {"services": services,
                             "networks": {NETWORK: {"driver": "overlay", "attachable": True}}}
    if compose.get("volumes"):
        stack["volumes"] = {name: body or {} for name, body in compose["volumes"].items()}
    if configs:
        stack["configs"] = configs
    return stack


def dump(stack: dict[str, Any]) -> str:
    """The stack file's text: the header, then YAML in a stable order."""
    return HEADER + yaml.safe_dump(stack, sort_keys=False, width=100, default_flow_style=False)


def rendered(compose_file: Path = COMPOSE_FILE) -> str:
    """docker-stack.yml as docker-compose.yml says it should be."""
    return dump(render(yaml.safe_load(compose_file.read_text()), compose_file.parent))


def config_version(stack: dict[str, Any], root: Path = ROOT) -> str:
    """A digest of every file the stack's configs read: a new one names new configs."""
    digest = hashlib.sha256()
    for key, config in sorted((stack.get("configs") or {}).items()):
        digest.update(key.encode() + b"\0" + (root / config["file"]).read_bytes() + b"\0")
    return digest.hexdigest()[:12]
