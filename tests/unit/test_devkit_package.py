"""The dev toolkit is a package of the project: installed by pyproject.toml, and documented
module by module (a line in the README's table, a docstring saying the module's job)."""

from __future__ import annotations

import ast
import os
import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVKIT = ROOT / "scripts" / "devkit"
MODULES = sorted(p.stem for p in DEVKIT.glob("*.py") if p.stem != "__init__")
README = (ROOT / "README.md").read_text()


def installed_packages() -> set[str]:
    """The packages `[tool.setuptools.packages.find]` selects, found as setuptools finds them
    (namespaces on, its default): every folder under the root, named by its dotted path, that
    matches an `include` pattern and no `exclude` one."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find.get("namespaces", True) and find.get("where", ["."]) == ["."]
    found = set()
    for folder, subfolders, _files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if "." not in name]  # .git, .venv
        for name in subfolders:
            package = Path(folder, name).relative_to(ROOT).as_posix().replace("/", ".")
            if (any(fnmatchcase(package, p) for p in find.get("include", ["*"]))
                    and not any(fnmatchcase(package, p) for p in find.get("exclude", []))):
                found.add(package)
    return found


def test_pyproject_installs_the_services_and_the_devkit_but_not_the_entry_points():
    packages = installed_packages()
    assert {"apps", "apps.kit", "apps.arithmetic", "scripts.devkit"} <= packages
    assert not {"scripts", "scripts.recipe", "tests"} & packages


def devkit_table() -> list[str]:
    """The modules the README's "The dev toolkit" table has a line for, in its order."""
    section = README[README.index("### The dev toolkit"):]
    table = section[section.index("| module |"):section.index("\n\n", section.index("| module |"))]
    return re.findall(r"^\| `(\w+)` \| \S", table, re.MULTILINE)


def test_the_readme_has_one_line_for_every_devkit_module_and_no_other():
    listed = devkit_table()
    assert sorted(listed) == MODULES, "README.md's dev toolkit table and scripts/devkit/ disagree"


@pytest.mark.parametrize("module", MODULES)
def test_every_devkit_module_says_its_job(module):
    docstring = ast.get_docstring(ast.parse((DEVKIT / f"{module}.py").read_text()))
    assert docstring and len(docstring.split()) >= 8, f"scripts/devkit/{module}.py: say what it is for"


def test_free_ports_are_all_different_and_free():
    import socket

    from scripts.devkit import free_ports

    ports = free_ports(64)
    assert len(set(ports)) == 64
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))  # nobody holds it
