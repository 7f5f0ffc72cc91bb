"""Static checks of the Docker and Caddy files: they need no engine and no server."""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from apps.kit.settings import KitSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_DIRS = sorted(p.parent for p in (ROOT / "apps").glob("*/app.py") if p.parent.name != "kit")
# Env vars read by something other than a settings class: Caddy's, and Redis's entrypoint.
NON_APP_SERVICES = {"redis", "proxy", "kit"}


def app_package(service: dict) -> str | None:
    """The apps.<name> package a compose service builds, from its Dockerfile path."""
    dockerfile = (service.get("build") or {}).get("dockerfile", "")
    match = re.fullmatch(r"apps/([a-z_]+)/Dockerfile", dockerfile)
    return f"apps.{match.group(1)}" if match and match.group(1) != "kit" else None


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


@pytest.mark.parametrize("app_dir", APP_DIRS, ids=lambda p: p.name)
def test_every_app_has_a_dockerfile_from_the_kit_image(app_dir: Path):
    dockerfile = app_dir / "Dockerfile"
    assert dockerfile.exists(), f"{app_dir.name} has no Dockerfile"
    text = dockerfile.read_text()
    assert "FROM ${KIT_IMAGE}" in text
    assert f"apps.kit.serve\", \"apps.{app_dir.name}\"" in text


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


def test_only_caddy_publishes_a_port_and_nobody_gets_the_docker_socket():
    for name, service in SERVICES.items():
        if name != "proxy":
            assert not service.get("ports"), f"{name} publishes a port"
        for volume in service.get("volumes", []):
            assert "docker.sock" not in str(volume)


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
