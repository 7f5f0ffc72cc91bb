"""A short irctest run (a handful of its tests) on one gateway and on two behind the proxy.

The whole selection takes many minutes: `scripts/irc-conformance IRCTEST_DIR=...` runs it and
docs/chat.md keeps its figures. irctest is not vendored (it is not on any package registry in
a usable version), so this test runs only where IRCTEST_DIR names a checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.devkit import ROOT
from scripts.devkit.ircstack import has_ircd

#: Registration, PING, JOIN, private and channel messages between two clients (on two
#: replicas in the second run), KICK and TOPIC seen by another member.
SHORT = ("testPing or testJoinTwice or testPrivmsgToUser or PrivmsgTestCase and testPrivmsg "
         "or testKickSendsMessages or testTopicMode")


def _irctest_dir() -> Path:
    value = os.environ.get("IRCTEST_DIR", "")
    if not value:
        pytest.skip("IRCTEST_DIR is not set: no irctest checkout here (git clone "
                    "https://github.com/progval/irctest, then IRCTEST_DIR=<it>)")
    path = Path(value)
    if not (path / "irctest/server_tests").is_dir():
        pytest.skip(f"IRCTEST_DIR={value} is not an irctest checkout")
    return path


@pytest.mark.timeout(900)
def test_short_irctest_run_passes_on_one_and_two_gateways() -> None:
    irctest_dir = _irctest_dir()
    if not has_ircd():
        pytest.skip("this checkout has no IRC gateway (apps.ircd)")
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.irc_conformance", f"IRCTEST_DIR={irctest_dir}", "-k", SHORT,
         "--runs", "one,two", "--ngircd", "off", "--workers", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    result = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert result.startswith("RESULT"), proc.stdout + proc.stderr
    figures = dict(field.split("=") for field in result.split()[1:])
    assert figures["one_failed"] == figures["two_failed"] == "0", proc.stdout
    assert int(figures["one_passed"]) >= 8 and int(figures["two_passed"]) >= 8, proc.stdout
