"""A CPU quota per process, as if each replica had a host of its own (cgroup v1 `cpu`).

On one 2-core machine every replica shares the same cores, so adding replicas cannot add
throughput: a 1-vs-N curve then measures the machine, not the design. Holding each replica
to the same quota (`cpu.cfs_quota_us` over `cpu.cfs_period_us`, what `docker run --cpus` and
compose's `deploy.resources.limits.cpus` set) makes each one a small host of its own: N
replicas get N times the CPU, and what does not scale shows.

Needs root and the cgroup v1 `cpu` controller mounted at /sys/fs/cgroup/cpu (`available()`
says why not otherwise). Groups are made under `canaduck-quota/` and removed by `release()`.

A quota bounds a replica's CPU time, not where it runs: on a shared machine the scheduler may
run a lone replica on the core of the load generator it talks to, which none of N hosts
would do, and less often when there are four of them. `cpu_layout()` and `pin()` keep the
replicas on CPUs of their own and the rest off them, the same way at every N.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable
from pathlib import Path

CPU_ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000


def available(root: Path = CPU_ROOT) -> str | None:
    """None if quotas can be set here, else why not."""
    if not (root / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 cpu controller at {root}"
    if not os.access(root, os.W_OK):
        return f"{root} is not writable (run as root)"
    return None


def cpu_layout(replica_cores: float, cpus: Iterable[int]) -> tuple[set[int], set[int]]:
    """The CPUs for the replicas and those for everything else: the last of `cpus`, as many as
    the replicas' quotas add up to (at least one), and the others (at least one)."""
    ordered = sorted(cpus)
    if len(ordered) < 2:
        raise ValueError(f"{len(ordered)} CPU: one is needed for the replicas and one for the rest")
    # Rounded first: 100 replicas at 0.07 core make 7.000000000000001 in floating point, not 8 CPUs.
    count = min(len(ordered) - 1, max(1, math.ceil(round(replica_cores, 9))))
    return set(ordered[-count:]), set(ordered[:-count])


def step_aside(replica_cores: float) -> tuple[set[int], set[int]]:
    """`cpu_layout()` over the CPUs this process may use, then this process held to the others:
    what it starts from now on (Redis, a load generator, a stack's other processes) runs there.
    The replicas' CPUs and the others; ValueError with one CPU."""
    replicas, others = cpu_layout(replica_cores, os.sched_getaffinity(0))
    os.sched_setaffinity(0, others)
    return replicas, others


def cpu_list(cpus: Iterable[int]) -> str:
    """CPU numbers as the benchmarks print them: 1, or 2+3."""
    return "+".join(str(cpu) for cpu in sorted(cpus))


def pin(pid: int, cpus: set[int], proc: Path = Path("/proc")) -> None:
    """Hold every thread of process `pid` to `cpus` (threads started later inherit it)."""
    for task in (proc / str(pid) / "task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


class CpuQuotas:
    """One cgroup per named process under `root/<parent>/`, each held to `cores` of CPU."""

    def __init__(self, cores: float, root: Path = CPU_ROOT, parent: str = "canaduck-quota") -> None:
        if cores <= 0:
            raise ValueError("a quota is a positive number of cores")
        self.cores = cores
        self._root = root
        self._base = root / parent
        self._groups: dict[str, Path] = {}

    def hold(self, name: str, pids: Iterable[int]) -> Path:
        """Put `pids` (every thread of each) in the group `name`, created with the quota."""
        group = self._groups.get(name)
        if group is None:
            group = self._base / name
            group.mkdir(parents=True, exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(round(self.cores * PERIOD_US)))
            self._groups[name] = group
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                (group / "cgroup.procs").write_text(str(pid))
        return group

    def throttled_seconds(self, name: str) -> float:
        """How long the group's processes were held back by the quota so far (cpu.stat)."""
        stat = dict(line.split() for line in (self._groups[name] / "cpu.stat").read_text().splitlines())
        return int(stat.get("throttled_time", 0)) / 1e9

    def release(self) -> None:
        """Move every process back to the root group and remove the groups."""
        for group in self._groups.values():
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (self._root / "cgroup.procs").write_text(pid)
            with contextlib.suppress(OSError):
                group.rmdir()
        self._groups.clear()
        with contextlib.suppress(OSError):
            self._base.rmdir()
