"""A CPU quota per process (cgroup v1): a busy loop held to a fifth of a core uses about that."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.devkit.cpuquota import CpuQuotas, available

BUSY = "while True: pass"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_process_held_to_a_fifth_of_a_core_uses_no_more():
    if reason := available():
        pytest.skip(reason)
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    quotas = CpuQuotas(0.2, parent="canaduck-quota-test")
    try:
        group = quotas.hold("busy", [busy.pid])
        assert str(busy.pid) in (group / "cgroup.procs").read_text().split()
        start, used = time.monotonic(), cpu_seconds(busy.pid)
        time.sleep(1.5)
        share = (cpu_seconds(busy.pid) - used) / (time.monotonic() - start)
        assert share < 0.3, share  # unheld, a busy loop takes a whole core
        assert quotas.throttled_seconds("busy") > 0
    finally:
        busy.kill()
        busy.wait()
        quotas.release()
    assert not group.exists() and not group.parent.exists()


def test_a_quota_must_be_positive():
    with pytest.raises(ValueError):
        CpuQuotas(0)
