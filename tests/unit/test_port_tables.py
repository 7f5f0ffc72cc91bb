"""The local ports the README and the docs name are where `scripts/up` puts each instance,
computed from the manifest with the runner's own code (manifest.plan, stack.summary)."""

from __future__ import annotations

import re
from itertools import groupby
from pathlib import Path

import pytest

from scripts.devkit import manifest
from scripts.devkit.stack import StackSettings, summary

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
#: The runner's defaults (model_construct: no CANADUCK_* variable of this environment read).
DEFAULTS = StackSettings.model_construct()
INSTANCES = manifest.plan(manifest.load(environ={}), DEFAULTS.port_base)
LOCAL_PORT = re.compile(r"127\.0\.0\.1:(\d+)")
#: The ports the runner gives instances: from the base up (the base itself is the container's).
RUNNER_RANGE = range(DEFAULTS.port_base + 1, DEFAULTS.port_base + 100)


def test_the_readme_ready_table_is_what_scripts_up_prints():
    assert f"```\n{summary(DEFAULTS, INSTANCES, 5.0)}\n```" in README


def test_the_readme_docs_table_gives_every_instance_its_port():
    rows = ["| service | instances | its own API: `/docs` (`/openapi.json` beside it) |", "|---|---|---|"]
    for service, group in groupby(INSTANCES, key=lambda i: i.spec.service_name):
        instances = list(group)
        rows.append(f"| {service} | {', '.join(i.name for i in instances)} | "
                    f"{', '.join(f'{i.url}/docs' for i in instances)} |")
    assert "\n".join(rows) in README


def ports_of(*words: str) -> set[int]:
    """The ports of the instances these words name (an instance, or all of a service's)."""
    return {port for i in INSTANCES if {i.name, i.spec.name, i.spec.service_name} & set(words)
            for port in (i.port, *i.extra_ports.values(), *i.shared_ports.values())}


EVERY_PORT = ports_of(*(i.name for i in INSTANCES))
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")), "proxy/Caddyfile"]


@pytest.mark.parametrize("path", PAGES)
def test_every_local_port_a_page_names_is_where_the_manifest_puts_it(path):
    wrong = []
    for number, line in enumerate((ROOT / path).read_text().splitlines(), 1):
        named = ports_of(*re.findall(r"[a-z][a-z0-9-]*", line))
        for port in (p for p in map(int, LOCAL_PORT.findall(line)) if p in RUNNER_RANGE):
            # A line that names instances names their ports; any other, one of the runner's.
            if port not in (named or EVERY_PORT):
                wrong.append(f"{path}:{number}: {port}")
    assert wrong == []
