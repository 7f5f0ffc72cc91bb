"""The web pages' JavaScript logic (IRC parsing, merging history and live messages), run by
node's own test runner on tests/js/. Skips where node is not installed: the pages need no
build step and no node, only these tests do."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from scripts.devkit.processes import ROOT

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install nodejs)")
def test_the_pages_javascript_logic():
    assert NODE is not None
    result = subprocess.run([NODE, "--test", str(ROOT / "tests/js")], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
