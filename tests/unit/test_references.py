"""Paths named in the docs, docstrings and comments point to files that exist."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A path into the checkout as the docs write it: `apps/kit/app.py`, docs/aggregator.md...
PATH = re.compile(r"(?<![\w./-])((?:apps|scripts|tests|docs|redis|proxy)/[\w./-]*[\w/]"
                  r"|[A-Za-z_-]+\.(?:md|toml|yml|txt)\b|Dockerfile|LICENSE)")
PLACEHOLDER = re.compile(r"[<>*{}]")


def sources() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *ROOT.glob("redis/*.md")]
    for folder in ("apps", "scripts", "tests"):
        found += sorted((ROOT / folder).rglob("*.py"))
    return found


def file_names() -> set[str]:
    """Names of the checkout's files (not the venv's, not git's)."""
    names = set()
    for _folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        names.update(files)
    return names


def test_every_named_path_exists():
    names = file_names()
    missing = []
    for source in sources():
        for number, line in enumerate(source.read_text().splitlines(), 1):
            for match in PATH.finditer(line):
                name = match.group(1).rstrip("./")
                if PLACEHOLDER.search(line[max(0, match.start() - 1):match.end() + 1]):
                    continue
                if "/" not in name:  # a bare file name: anywhere in the checkout will do
                    if name not in names:
                        missing.append(f"{source.relative_to(ROOT)}:{number}: {name}")
                elif not (ROOT / name).exists():
                    missing.append(f"{source.relative_to(ROOT)}:{number}: {name}")
    assert missing == []
