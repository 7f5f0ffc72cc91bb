"""Who may import whom: services import no dev code; scripts/ and tests/ share the dev toolkit
(scripts/devkit) and never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, by absolute name (also imports inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return names


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("apps", ("tests", "scripts")),
    ("scripts", ("tests",)),
])
def test_layers(folder, forbidden):
    assert offenders(folder, forbidden) == []


def test_tests_take_dev_helpers_from_the_toolkit_not_from_entry_points():
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for name in imported_modules(path):
            if name.startswith("scripts.") and not name.startswith("scripts.devkit"):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []


def test_no_script_edits_the_import_path():
    # Entry points run as `python -m scripts.<name>` from the checkout: no sys.path surgery.
    edits = [str(p.relative_to(ROOT)) for p in (ROOT / "scripts").rglob("*.py")
             if "sys.path" in p.read_text()]
    assert edits == []


#: Domain packages: code the services of one domain share, and the services that may import
#: it. A domain package imports only the kit; the kit imports no service and no domain.
DOMAINS: dict[str, set[str]] = {
    "arithmetic": {"calc", "mult"},
    "chat": {"ircd", "messages", "users"},
    "rally": {"player", "web"},
}


def test_services_import_only_the_kit_their_domain_and_themselves():
    found = []
    for package in sorted(p for p in (ROOT / "apps").iterdir() if (p / "__init__.py").exists()):
        allowed = {"apps", "apps.kit"} if package.name == "kit" else {"apps", "apps.kit",
                                                                        f"apps.{package.name}"}
        allowed |= {f"apps.{domain}" for domain, users in DOMAINS.items() if package.name in users}
        for path in sorted(package.rglob("*.py")):
            for name in imported_modules(path):
                parts = name.split(".")
                if parts[0] == "apps" and ".".join(parts[:2]) not in allowed:
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []


def test_every_domain_package_exists_and_is_used_by_each_service_it_names():
    for domain, users in DOMAINS.items():
        assert (ROOT / "apps" / domain / "__init__.py").exists(), domain
        for service in users:
            imports = {name for path in (ROOT / "apps" / service).rglob("*.py")
                       for name in imported_modules(path)}
            assert any(name.startswith(f"apps.{domain}") for name in imports), (domain, service)
