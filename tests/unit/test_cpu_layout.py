"""`--pin`'s layout (scripts/devkit/cpuquota.py): the replicas on CPUs of their own, the same at
every replica count, and everything else on the others."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scripts.devkit.cpuquota import cpu_layout, cpu_list, pin, step_aside


@pytest.mark.parametrize(("cores", "cpus", "replicas", "others"), [
    (0.6, [0, 1], {1}, {0}),            # four replicas at 0.15 on this machine
    (1.0, [0, 1], {1}, {0}),            # four at 0.25: one whole CPU, not two
    (1.2, [0, 1, 2, 3], {2, 3}, {0, 1}),
    (7.5, [0, 1, 2, 3], {1, 2, 3}, {0}),  # never every CPU: the load generator needs one
    (0.3, [4, 2, 6], {6}, {2, 4}),      # the CPUs this process may use, in any order
    (100 * 0.07, list(range(16)), set(range(9, 16)), set(range(9))),  # 7.000000000000001: 7 CPUs
])
def test_the_replicas_get_the_last_cpus_their_quotas_add_up_to(cores, cpus, replicas, others):
    assert cpu_layout(cores, cpus) == (replicas, others)


def test_the_benchmarks_name_the_cpus_as_one_word():
    assert (cpu_list({1}), cpu_list({3, 2})) == ("1", "2+3")


def test_one_cpu_cannot_keep_the_replicas_apart():
    with pytest.raises(ValueError, match="one is needed for the replicas and one for the rest"):
        cpu_layout(0.6, [0])


def test_stepping_aside_holds_this_process_and_what_it_starts_to_the_other_cpus():
    everywhere = os.sched_getaffinity(0)
    if len(everywhere) < 2:
        pytest.skip("one CPU: nothing to pin apart")
    try:
        replicas, others = step_aside(0.6)
        assert replicas == {max(everywhere)} and others == everywhere - replicas
        assert os.sched_getaffinity(0) == others
        child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == str(sorted(others))
    finally:
        os.sched_setaffinity(0, everywhere)


def test_every_thread_of_a_pinned_process_stays_on_its_cpus():
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: nothing to pin apart")
    # Two threads, so that the pin must reach every task of the process, not only its first.
    child = subprocess.Popen([sys.executable, "-c", "import threading, time; "
                              "threading.Thread(target=time.sleep, args=(30,)).start(); "
                              "print('ready', flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        pin(child.pid, {cpus[-1]})
        tasks = os.listdir(f"/proc/{child.pid}/task")
        assert len(tasks) == 2
        assert all(os.sched_getaffinity(int(task)) == {cpus[-1]} for task in tasks)
    finally:
        child.kill()
        child.wait()

