"""The service manifest: docker-compose.yml, read by the local runner too.

The list of services, their replicas and settings is written once, in docker-compose.yml;
`scripts/up` runs what it says as local processes, so the two cannot disagree. What compose
knows and a local run does not is derived here:

- an app service is one that builds the one Dockerfile with `args: {APP: <package>}`; it runs
  as `python -m apps.kit.serve apps.<package>`;
- its instances: `deploy.replicas` (1 if absent), or `--scale <service>=<n>`; an instance is
  named like its container (`calc-1`, `calc-2`; a single one keeps the service's name);
- each instance gets its own local port, from CANADUCK_PORT_BASE up, in manifest order, the
  same whichever services run (`scripts/up ping pong` runs ping on the port the whole stack
  gives it);
- what runs: every service, or the ones named and what they need (`depends_on`, as with
  `docker compose up <names>`), plus what Caddy needs, since the runner always runs Caddy;
- its environment is compose's, with `${VAR:-default}` taken from the environment, minus the
  Redis login (the runner gives each its ACL user's URL) and with every `http://<service>:5000`
  or `<service>:<port>` pointing at that service's first local instance instead;
- `x-canaduck` on a service holds what only a local run needs: `probe`, a public path that
  answers through Caddy once the service is reachable, and `ports`, the extra ports an
  instance listens on (`{dns: DNS_PORT}`: a local port is chosen per instance and given in
  that variable, and in ADVERTISE_PORTS so that it is announced in the directory), and
  `shared_ports`, ports every instance of the service listens on together
  (`{irc_shared: IRC_SHARED_PORT}`: one local port for the whole service, the same in each
  instance's variable; the ircd's replicas bind it with SO_REUSEPORT).

Adding a service is its folder, one entry here, one route in proxy/Caddyfile and one line in
redis/users.acl.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from scripts.devkit.processes import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
#: The port every app listens on inside its container.
CONTAINER_PORT = 5000
#: Set by the runner for each instance, whatever compose says.
RUNNER_SET = frozenset({"REDIS_URL", "REDIS_USERNAME", "REDIS_PASSWORD", "INSTANCE_ID", "PORT", "HOST",
                        "ADVERTISE_URL", "ADVERTISE_PORTS"})
_APP = re.compile(r"[a-z_]+")
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


class ManifestError(ValueError):
    """docker-compose.yml or a --scale argument does not say something the runner can run."""


@dataclass(frozen=True)
class ServiceSpec:
    """One app service of the manifest."""

    name: str  # the compose service: calc, mult-a
    module: str  # apps.calc
    service_name: str  # SERVICE_NAME: its name in the directory
    redis_user: str  # REDIS_USERNAME: its ACL user
    replicas: int
    environment: dict[str, str]  # compose's, interpolated, minus what the runner sets
    instance_id: str = ""  # a fixed INSTANCE_ID (mult-a), used when there is one instance
    probe: str = ""
    ports: dict[str, str] = field(default_factory=dict)  # extra port name -> its env var
    shared_ports: dict[str, str] = field(default_factory=dict)  # port of every instance -> env var
    depends_on: tuple[str, ...] = ()  # compose services it needs (redis among them)

    def container_port(self, port_name: str) -> int | None:
        """The port an extra port has in compose (its env var's value there)."""
        value = self.environment.get(self.ports.get(port_name, ""), "")
        return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class Manifest:
    services: tuple[ServiceSpec, ...]
    proxy_environment: dict[str, str]
    proxy_depends_on: tuple[str, ...] = ()  # what Caddy needs: the directory

    def get(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise ManifestError(f"no service {name!r} in the manifest "
                            f"(services: {', '.join(s.name for s in self.services)})")

    def expand(self, name: str) -> list[str]:
        """The compose services a name given to `scripts/up` stands for: a compose service
        (`calc`, `mult-a`) itself, else a name in the directory (SERVICE_NAME) for every
        compose service registering under it (`mult`: mult-a, mult-b, mult-backup)."""
        if any(spec.name == name for spec in self.services):
            return [name]
        found = [spec.name for spec in self.services if spec.service_name == name]
        if not found:
            raise ManifestError(f"no service {name!r}; known: {self.known_names()}")
        return found

    def known_names(self) -> str:
        """The names `expand` takes, for an error message: the compose services, then each
        directory name that is no compose service's, with the services it stands for."""
        names = [spec.name for spec in self.services]
        groups: dict[str, list[str]] = {}
        for spec in self.services:
            if spec.service_name not in names:
                groups.setdefault(spec.service_name, []).append(spec.name)
        return ", ".join(names + [f"{alias} (= {', '.join(members)})" for alias, members in groups.items()])


@dataclass(frozen=True)
class Instance:
    """One process of the local stack."""

    spec: ServiceSpec
    name: str  # process name and INSTANCE_ID: calc-1
    port: int
    extra_ports: dict[str, int] = field(default_factory=dict)
    shared_ports: dict[str, int] = field(default_factory=dict)  # the same in every instance

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def interpolate(value: object, environ: Mapping[str, str]) -> str:
    """A compose value with `${VAR}`, `${VAR:-default}` and `${VAR-default}` replaced."""

    def one(match: re.Match[str]) -> str:
        found = environ.get(match.group(1))
        default = match.group(2) or ""
        if ":-" in match.group(0):
            return found or default
        return default if found is None else found

    return _INTERPOLATION.sub(one, str(value))


def _depends_on(body: Mapping[str, object]) -> tuple[str, ...]:
    """A compose service's `depends_on`, a list or a mapping of names, as names."""
    declared = body.get("depends_on") or ()
    return tuple(str(name) for name in declared) if isinstance(declared, Iterable) else ()


def load(path: Path = COMPOSE_FILE, environ: Mapping[str, str] | None = None) -> Manifest:
    """The app services and Caddy's environment, as docker-compose.yml declares them."""
    environ = os.environ if environ is None else environ
    compose = yaml.safe_load(path.read_text())
    services = []
    proxy_environment: dict[str, str] = {}
    proxy_depends_on: tuple[str, ...] = ()
    for name, body in (compose.get("services") or {}).items():
        declared = body.get("environment") or {}
        environment = {key: interpolate(value, environ) for key, value in declared.items()}
        if name == "proxy":
            proxy_environment, proxy_depends_on = environment, _depends_on(body)
            continue
        app = str(((body.get("build") or {}).get("args") or {}).get("APP", ""))
        if not _APP.fullmatch(app):
            continue  # redis and the like: the runner brings its own
        local = body.get("x-canaduck") or {}
        replicas = int((body.get("deploy") or {}).get("replicas", 1))
        services.append(ServiceSpec(
            name=name, module=f"apps.{app}",
            service_name=environment.get("SERVICE_NAME", name),
            redis_user=environment.get("REDIS_USERNAME", environment.get("SERVICE_NAME", name)),
            replicas=replicas,
            environment={k: v for k, v in environment.items() if k not in RUNNER_SET},
            instance_id=environment.get("INSTANCE_ID", ""),
            probe=str(local.get("probe", "")),
            ports={str(k): str(v) for k, v in (local.get("ports") or {}).items()},
            shared_ports={str(k): str(v) for k, v in (local.get("shared_ports") or {}).items()},
            depends_on=_depends_on(body),
        ))
    return Manifest(tuple(services), proxy_environment, proxy_depends_on)


def select(manifest: Manifest, names: Iterable[str] = ()) -> set[str]:
    """The compose services `scripts/up <names>` runs: every one when no name is given; else
    what each name stands for (`Manifest.expand`) and what Caddy needs, with what those
    depend on in turn, as `docker compose up <names>` follows `depends_on`. Redis is not an
    app service: the runner always brings its own."""
    wanted = [expanded for name in names for expanded in manifest.expand(name)]
    if not wanted:
        return {spec.name for spec in manifest.services}
    specs = {spec.name: spec for spec in manifest.services}
    wanted += manifest.proxy_depends_on
    selected: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in specs and name not in selected:
            selected.add(name)
            wanted += specs[name].depends_on
    return selected


def parse_scale(values: list[str], manifest: Manifest) -> dict[str, int]:
    """`["calc=4", "ircd=2"]` (or one comma-separated string) -> {"calc": 4, "ircd": 2}."""
    scale: dict[str, int] = {}
    for item in (part for value in values for part in value.split(",") if part.strip()):
        name, _, count = item.strip().partition("=")
        if not count.isdigit() or int(count) > 64:
            raise ManifestError(f"--scale {item!r}: expected <service>=<0..64>")
        manifest.get(name)
        scale[name] = int(count)
    return scale


def plan(manifest: Manifest, port_base: int, scale: Mapping[str, int] | None = None) -> list[Instance]:
    """Every instance to run, with its ports: port_base + 1, + 2... in manifest order, then the
    shared ports (after all the others, so that adding one moves no instance's port)."""
    scale = scale or {}
    instances: list[Instance] = []
    next_port = port_base + 1
    shared: dict[str, dict[str, int]] = {}
    for spec in manifest.services:
        count = scale.get(spec.name, spec.replicas)
        # A replicated or scaled service names its instances like compose's containers
        # (calc-1, calc-2, even when scaled to one); a plain service keeps its own name.
        numbered = spec.replicas > 1 or spec.name in scale
        for index in range(1, count + 1):
            name = f"{spec.name}-{index}" if numbered else (spec.instance_id or spec.name)
            extra = {port_name: next_port + 1 + k for k, port_name in enumerate(spec.ports)}
            instances.append(Instance(spec, name, next_port, extra))
            next_port += 1 + len(extra)
    for spec in manifest.services:
        if spec.shared_ports and any(i.spec is spec for i in instances):
            shared[spec.name] = {port_name: next_port + k for k, port_name in enumerate(spec.shared_ports)}
            next_port += len(spec.shared_ports)
    return [replace(i, shared_ports=shared[i.spec.name]) if i.spec.name in shared else i
            for i in instances]


def _local_addresses(instances: list[Instance]) -> dict[str, str]:
    """`<service>:<container port>` -> `127.0.0.1:<local port>` of its first instance."""
    addresses: dict[str, str] = {}
    for instance in instances:
        spec = instance.spec
        addresses.setdefault(f"{spec.name}:{CONTAINER_PORT}", f"127.0.0.1:{instance.port}")
        for port_name, local in instance.extra_ports.items():
            container = spec.container_port(port_name)
            if container is not None:
                addresses.setdefault(f"{spec.name}:{container}", f"127.0.0.1:{local}")
    return addresses


def localize(value: str, addresses: Mapping[str, str]) -> str:
    """`value` with every compose address (`pong:5000`, `directory:8600`) made local."""
    return re.sub(r"\b([a-z0-9-]+:\d+)\b", lambda m: addresses.get(m.group(1), m.group(1)), value)


def instance_environment(instance: Instance, instances: list[Instance]) -> dict[str, str]:
    """The environment compose gives `instance`, made local (without the Redis login)."""
    addresses = _local_addresses(instances)
    env = {key: localize(value, addresses) for key, value in instance.spec.environment.items()}
    env.update(SERVICE_NAME=instance.spec.service_name, INSTANCE_ID=instance.name, PORT=str(instance.port),
               HOST="127.0.0.1", ADVERTISE_URL=instance.url)
    for port_name, port in instance.extra_ports.items():
        env[instance.spec.ports[port_name]] = str(port)
    for port_name, port in instance.shared_ports.items():
        env[instance.spec.shared_ports[port_name]] = str(port)
    if instance.extra_ports:
        env["ADVERTISE_PORTS"] = json.dumps(instance.extra_ports)
    return env


def proxy_environment(manifest: Manifest, instances: list[Instance], http_port: int) -> dict[str, str]:
    """Caddy's environment in compose, made local: it listens on loopback, on `http_port`."""
    addresses = _local_addresses(instances)
    env = {key: localize(value, addresses) for key, value in manifest.proxy_environment.items()
           if key != "CADDY_BIND"}  # compose binds 0.0.0.0 to publish the port; locally loopback
    env["CADDY_PORT"] = str(http_port)
    return env

