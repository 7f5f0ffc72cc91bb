"""Installs are reproducible: every package imported is declared, every declared one pinned."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"apps", "scripts", "tests"}
#: Imported from a checkout outside the repository, never installed: irctest (our controller
#: in tests/irctest/ runs inside it; it is on no package registry in a usable version).
EXTERNAL = {"irctest"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])


RUNTIME = {requirement_name(r) for r in PROJECT["dependencies"]}
DEV = {requirement_name(r) for r in PROJECT["optional-dependencies"]["dev"]}
PINS = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#"))


def third_party_imports(folder: str) -> set[str]:
    """Top-level modules imported under `folder` that are neither stdlib nor ours."""
    found: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            found.update(n.split(".")[0] for n in names)
    return found - set(sys.stdlib_module_names) - FIRST_PARTY - EXTERNAL


def undeclared(folder: str, declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    missing = []
    for module in sorted(third_party_imports(folder)):
        owners = {normalized(d) for d in distributions.get(module, [module])}
        if not owners & declared:
            missing.append(f"{module} (from {', '.join(sorted(owners))})")
    return missing


def test_services_import_only_runtime_dependencies():
    assert undeclared("apps", RUNTIME) == []


def test_scripts_and_tests_import_only_declared_dependencies():
    assert undeclared("scripts", RUNTIME | DEV) == []
    assert undeclared("tests", RUNTIME | DEV) == []


def test_every_declared_dependency_is_pinned_in_constraints():
    pinned = {normalized(name) for name in PINS}
    missing = sorted((RUNTIME | DEV) - pinned)
    assert missing == [], f"run scripts/lock: {missing} not in constraints.txt"


def test_the_linters_are_pinned_to_their_locked_versions():
    for tool in ("ruff", "mypy"):
        requirement = next(r for r in PROJECT["optional-dependencies"]["dev"]
                           if requirement_name(r) == tool)
        assert requirement == f"{tool}=={PINS[tool]}"
