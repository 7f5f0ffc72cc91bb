"""Static checks of the Docker and Caddy files: they need no engine and no server."""

from __future__ import annotations

import ast
import contextlib
import http.server
import importlib
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from apps.kit.settings import KitSettings
from scripts.devkit.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_DIRS = sorted(p.parent for p in (ROOT / "apps").glob("*/app.py") if p.parent.name != "kit")
# Env vars read by something other than a settings class: Caddy's, Redis's entrypoint, and the
# IRC balancer's (proxy/irc/entrypoint.sh).
NON_APP_SERVICES = {"redis", "proxy", "irc-proxy"}
IRC_PROXY = ROOT / "proxy/irc"


def app_package(service: dict) -> str | None:
    """The apps.<name> package a compose service builds: its build's APP argument."""
    app = ((service.get("build") or {}).get("args") or {}).get("APP")
    return f"apps.{app}" if app else None


def settings_env_names(package: str) -> set[str]:
    """Env var names the package's settings class reads (the kit's, if it has none)."""
    classes: list[type[BaseSettings]] = [KitSettings]
    try:
        module = importlib.import_module(f"{package}.settings")
    except ModuleNotFoundError:
        module = None
    if module is not None:
        classes += [c for _, c in inspect.getmembers(module, inspect.isclass)
                    if issubclass(c, KitSettings)]
    names = set()
    for cls in classes:
        for name, field in cls.model_fields.items():
            names.add(name.upper())
            if isinstance(field.validation_alias, str):
                names.add(field.validation_alias.upper())
    return names


DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_one_dockerfile_builds_every_app_slim_non_root_with_pinned_wheels_and_a_healthcheck():
    # The other one is the IRC balancer's, which is no app (below).
    assert sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("Dockerfile*")
                  if ".venv" not in p.parts) == ["Dockerfile", "proxy/irc/Dockerfile"]
    assert DOCKERFILE.count("FROM ") == 1 and "FROM python:3.11-slim\n" in DOCKERFILE
    assert "USER canaduck" in DOCKERFILE and "--only-binary=:all:" in DOCKERFILE
    assert "-c constraints.txt" in DOCKERFILE, "images install the versions the tests ran on"
    assert "\nHEALTHCHECK " in DOCKERFILE
    assert 'CMD exec python -m apps.kit.serve "apps.$APP"' in DOCKERFILE
    # What all apps share comes before the argument, so those layers are built once.
    assert DOCKERFILE.index("COPY apps/kit apps/kit") < DOCKERFILE.index("\nARG APP\n") \
        < DOCKERFILE.index("COPY apps/${APP} apps/${APP}")


def packages_imported(folder: Path) -> set[str]:
    """The apps/ packages `folder`'s modules import (`apps.kit.app` -> "kit")."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            names.update(m.split(".")[1] for m in modules if m.startswith("apps."))
    return names


@pytest.mark.parametrize("app_dir", APP_DIRS, ids=lambda p: p.name)
def test_every_package_an_app_imports_is_in_its_image(app_dir: Path):
    # The shared layers copy the kit and the domain packages; `COPY apps/${APP}` the app.
    copied = set(re.findall(r"^COPY apps/(\w+) apps/\1$", DOCKERFILE[:DOCKERFILE.index("\nARG APP\n")],
                            re.MULTILINE))
    needed, todo = set(), {app_dir.name}
    while todo:
        package = todo.pop()
        needed.add(package)
        todo |= packages_imported(ROOT / "apps" / package) - needed
    assert needed - {app_dir.name} <= copied


@pytest.mark.parametrize("name", sorted(set(SERVICES) - NON_APP_SERVICES))
def test_every_app_service_builds_the_one_dockerfile_with_its_app(name: str):
    build = SERVICES[name]["build"]
    assert build["context"] == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile"
    package = app_package(SERVICES[name])
    assert package and (ROOT / package.replace(".", "/") / "app.py").exists(), package
    # No service may rely on another's build: each one builds its own image.
    assert "image" not in SERVICES[name] or "build" in SERVICES[name]


@pytest.mark.parametrize("app_dir", APP_DIRS, ids=lambda p: p.name)
def test_every_app_runs_in_compose(app_dir: Path):
    built = {app_package(s) for s in SERVICES.values()}
    assert f"apps.{app_dir.name}" in built


@pytest.mark.parametrize("name", sorted(set(SERVICES) - NON_APP_SERVICES))
def test_every_env_var_a_compose_service_sets_is_read_by_it(name: str):
    service = SERVICES[name]
    package = app_package(service)
    assert package, f"{name} does not build an app"
    unknown = set(service.get("environment", {})) - settings_env_names(package)
    assert not unknown, f"{name} sets env vars nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(set(SERVICES) - NON_APP_SERVICES))
def test_every_app_service_is_on_the_network_with_init_healthy_deps_and_restart(name: str):
    service = SERVICES[name]
    assert service.get("init") is True
    assert "canaduck" in service.get("networks", [])
    assert service.get("restart") in ("unless-stopped", "always", "on-failure")
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_every_caddy_upstream_is_a_compose_service():
    caddyfile = (ROOT / "proxy/Caddyfile").read_text()
    upstream_vars = set(re.findall(r"\{\$([A-Z_]+_UPSTREAMS?)(?::[^}]*)?\}", caddyfile))
    assert upstream_vars, "the Caddyfile routes nothing"
    proxy_env = SERVICES["proxy"]["environment"]
    missing = upstream_vars - set(proxy_env)
    assert not missing, f"compose leaves these Caddy upstreams at their local defaults: {missing}"
    for var in upstream_vars:
        for address in str(proxy_env[var]).split():
            host = address.split(":")[0]
            assert host in SERVICES, f"{var}: {host} is not a compose service"


def test_only_caddy_and_the_irc_balancer_publish_ports_and_nobody_gets_the_docker_socket():
    for name, service in SERVICES.items():
        if name == "ircd":
            # Each replica's own IRC port on a free loopback port of the host, for reaching one
            # on purpose; never its PROXY listener, whose headers it believes.
            assert service.get("ports") == ["127.0.0.1::6667"], name
        elif name == "irc-proxy":
            assert service["ports"] == ["${CANADUCK_IRC_PORT:-6667}:6667",
                                        "${CANADUCK_IRC_TLS_PORT:-6697}:6697"]
        elif name != "proxy":
            assert not service.get("ports"), f"{name} publishes a port"
        for volume in service.get("volumes", []):
            assert "docker.sock" not in str(volume)


def test_the_irc_balancer_follows_the_replicas_proxy_listener_as_the_directory_lists_it():
    ircd, balancer = SERVICES["ircd"], SERVICES["irc-proxy"]
    assert balancer["build"] == {"context": "proxy/irc"}
    env = ircd["environment"]
    announced = json.loads(env["ADVERTISE_PORTS"])
    assert announced == {"irc": int(env["IRC_PORT"]), "irc-proxy": int(env["IRC_PROXY_PORT"])}
    assert ircd["x-canaduck"]["ports"] == {"irc": "IRC_PORT", "irc-proxy": "IRC_PROXY_PORT"}
    config = (IRC_PROXY / "haproxy.cfg").read_text()
    assert "_irc-proxy._tcp.ircd.service.canaduck resolvers directory" in config
    assert "send-proxy-v2-ssl" in config and "proxy-v2-options authority" in config
    assert balancer["environment"]["DIRECTORY_DNS"] == SERVICES["proxy"]["environment"]["DIRECTORY_DNS"]
    assert balancer["depends_on"] == {"directory": {"condition": "service_healthy"}}
    assert balancer.get("init") is True and "canaduck" in balancer["networks"]
    dockerfile = (IRC_PROXY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim\n" in dockerfile and "USER haproxy" in dockerfile


def balancers_entrypoint(tmp_path: Path, haproxy: str) -> tuple[list[str], dict[str, str]]:
    """proxy/irc/entrypoint.sh runnable here, HAProxy stubbed by the shell script `haproxy`."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "haproxy").write_text(f"#!/bin/sh\necho \"haproxy $*\" >\"$RUN/args\"\n{haproxy}")
    (fake / "openssl").write_text("#!/bin/sh\nexit 1\n")  # never asked: a certificate is given
    for tool in fake.iterdir():
        tool.chmod(0o755)
    script = (IRC_PROXY / "entrypoint.sh").read_text().replace("run=/run/haproxy", 'run="$RUN"')
    (tmp_path / "entrypoint.sh").write_text(script)
    pem = tmp_path / "irc.pem"
    pem.write_text("certificate and key")
    env = {"PATH": f"{fake}:/usr/bin:/bin", "RUN": str(tmp_path), "DIRECTORY_DNS": "localhost:8600",
           "IRC_TLS_PEM": str(pem)}
    return ["sh", str(tmp_path / "entrypoint.sh")], env


needs_sh = pytest.mark.skipif(shutil.which("sh") is None or shutil.which("getent") is None,
                              reason="no sh or getent")


@needs_sh
def test_the_balancers_entrypoint_writes_the_directorys_address_as_its_name_server(tmp_path: Path):
    # HAProxy itself stubbed: the script's part is the resolvers section and the certificate.
    command, env = balancers_entrypoint(tmp_path, haproxy="")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    resolvers = (tmp_path / "resolvers.cfg").read_text()
    assert "resolvers directory" in resolvers and "nameserver directory 127.0.0.1:8600" in resolvers
    assert (tmp_path / "args").read_text().split() == [
        "haproxy", "-W", "-db", "-f", f"{tmp_path}/resolvers.cfg", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]


@needs_sh
def test_the_balancer_stops_when_haproxy_does_not_a_poll_later(tmp_path: Path):
    # The engine kills a container still there 10 s after SIGTERM. The entrypoint used to go
    # round its 5 s poll once more (and a lookup) when HAProxy took a moment to exit: killed
    # in a loaded `docker compose down`. Now it ends when HAProxy ends.
    command, env = balancers_entrypoint(
        tmp_path, haproxy="trap 'sleep 0.5; echo stopped >\"$RUN/haproxy-stopped\"; exit 143' TERM\n"
                          "while :; do sleep 0.1; done\n")
    # A session of its own: the stubbed HAProxy is killed with it if the test fails.
    entrypoint = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: (tmp_path / "args").exists(), timeout=10)
        time.sleep(0.3)  # past the trap, into its poll
        entrypoint.send_signal(signal.SIGTERM)
        status = entrypoint.wait(timeout=4)  # the poll is 5 s: less than one
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(entrypoint.pid, signal.SIGKILL)
        entrypoint.wait()
    assert (tmp_path / "haproxy-stopped").read_text() == "stopped\n"
    assert status == 143  # HAProxy's own status, passed on


def test_no_image_is_ever_pulled_on_purpose():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "pull_policy: always" not in text and "--pull" not in text


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_compose_config_is_valid():
    result = subprocess.run(["docker", "compose", "config", "-q"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    if "is not a docker command" in result.stderr or "unknown" in result.stderr.lower():
        pytest.skip("docker compose is not installed")
    assert result.returncode == 0, result.stderr


ACL_USERS = {line.split()[1] for line in (ROOT / "redis/users.acl").read_text().splitlines()
             if line.startswith("user ")}


@pytest.mark.parametrize("name", sorted(set(SERVICES) - NON_APP_SERVICES))
def test_every_service_logs_in_as_an_acl_user_with_its_password_variable(name: str):
    env = SERVICES[name]["environment"]
    user = env["REDIS_USERNAME"]
    var = f"REDIS_PASSWORD_{user.upper().replace('-', '_')}"
    assert user in ACL_USERS
    assert "@" not in env["REDIS_URL"], "credentials go in REDIS_USERNAME/REDIS_PASSWORD"
    assert env["REDIS_PASSWORD"] == f"${{{var}:-dev-only-{user}}}"
    assert var in SERVICES["redis"]["environment"], "Redis would keep the dev-only password"
    assert f"\n{var}=" in (ROOT / ".env.example").read_text()


def run_redis_entrypoint(tmp_path: Path, **passwords: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """redis/entrypoint.sh with the image's entry point stubbed: the rendered ACL file."""
    stub = tmp_path / "bin/docker-entrypoint.sh"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\necho \"$@\"\n")
    stub.chmod(0o755)
    acl = tmp_path / "users.acl"
    env = {"PATH": f"{stub.parent}:/usr/bin:/bin", "REDIS_CONF_DIR": str(ROOT / "redis"),
           "REDIS_ACL_FILE": str(acl), **passwords}
    result = subprocess.run(["sh", str(ROOT / "redis/entrypoint.sh")], env=env,
                            capture_output=True, text=True, timeout=10)
    return result, acl.read_text() if acl.exists() else ""


def test_the_redis_entrypoint_writes_passwords_as_they_are(tmp_path: Path):
    odd = 'p&a\\s/s>w"o\'r#d%41'
    result, acl = run_redis_entrypoint(tmp_path, REDIS_PASSWORD_CALC=odd, REDIS_PASSWORD_MULT="")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in acl.splitlines() if line.startswith("user ")}
    assert f" >{odd} " in lines["calc"] and "dev-only" not in lines["calc"]
    assert " >dev-only-mult " in lines["mult"]  # empty: the dev-only password stays
    assert "--aclfile" in result.stdout and "redis-server" in result.stdout


def test_the_redis_entrypoint_changes_nothing_but_the_passwords(tmp_path: Path):
    # ACL selectors hold spaces and parentheses (`(~canaduck:services +sadd +smembers)`): the
    # rewrite, which splits each line on whitespace, must give them back as they were.
    passwords = {f"REDIS_PASSWORD_{user.upper()}": f"real-{user}" for user in ACL_USERS}
    result, acl = run_redis_entrypoint(tmp_path, **passwords)
    assert result.returncode == 0, result.stderr
    assert acl == (ROOT / "redis/users.acl").read_text().replace(">dev-only-", ">real-")
    services = ACL_USERS - {"default", "inspector", "directory"}  # the directory may also SREM
    assert acl.count(" (~canaduck:services +sadd +smembers)") == len(services)
    assert acl.count(" (%R~canaduck:users:*:account +exists)\n") == 1  # the ircd's second selector


def test_the_redis_entrypoint_refuses_a_password_with_whitespace(tmp_path: Path):
    result, _ = run_redis_entrypoint(tmp_path, REDIS_PASSWORD_CALC="pass word")
    assert result.returncode != 0
    assert "REDIS_PASSWORD_CALC contains whitespace" in result.stderr
    assert "redis-server" not in result.stdout


def health_probe() -> list[str]:
    """The image's HEALTHCHECK command, as the engine runs it (exec form)."""
    line = re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$", DOCKERFILE, re.M)
    assert line, "the Dockerfile has an exec-form HEALTHCHECK"
    return json.loads(line.group(1))


@pytest.mark.skipif(shutil.which("bash") is None, reason="the probe runs in bash; bash is missing")
@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_image_health_probe_passes_on_200_and_fails_otherwise(status: int, healthy: bool):
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        probe = subprocess.run(health_probe(), env={"PORT": str(port), "PATH": "/usr/bin:/bin"},
                               capture_output=True, timeout=15, check=False)
        server.shutdown()
    assert (probe.returncode == 0) is healthy, probe.stderr


def test_the_image_health_probe_fails_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connection is refused
        probe = subprocess.run(health_probe(), env={"PORT": str(port), "PATH": "/usr/bin:/bin"},
                               capture_output=True, timeout=15, check=False)
    assert probe.returncode != 0
