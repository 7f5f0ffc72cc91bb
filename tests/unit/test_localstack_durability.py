"""The local runner's Redis: a restart loop, a run directory kept across runs, `--fresh`."""

from __future__ import annotations

import pytest
from honcho.manager import Manager

from scripts.devkit import manifest
from scripts.devkit.stack import StackSettings, build, parse_args, redis_dir


def test_the_run_directory_is_kept_unless_fresh_and_locked_while_in_use(tmp_path):
    settings = StackSettings(run_dir=tmp_path)
    with redis_dir(settings, fresh=False) as path:
        (path / "appendonly").mkdir()
        (path / "appendonly" / "canaduck.aof.manifest").write_text("kept")
        with pytest.raises(SystemExit, match="in use by another scripts/up"), redis_dir(settings, False):
            pass
    with redis_dir(settings, fresh=False) as path:
        assert (path / "appendonly" / "canaduck.aof.manifest").read_text() == "kept"
    with redis_dir(settings, fresh=True) as path:
        assert [p.name for p in path.iterdir()] == [".lock"]
    assert parse_args(["--fresh"]).fresh and not parse_args([]).fresh


def test_redis_and_caddy_run_in_a_restart_loop_redis_on_the_run_directory(tmp_path):
    manager = Manager()
    stack = manifest.load()
    build(manager, StackSettings(run_dir=tmp_path), tmp_path / "redis", stack, manifest.plan(stack, 5000))
    for name in ("redis", "caddy"):
        command = manager._processes[name]["obj"].cmd
        assert "while :; do" in command and "restarting in" in command, name
    assert f"--dir {tmp_path / 'redis'}" in manager._processes["redis"]["obj"].cmd


def test_cluster_mode_runs_six_nodes_in_restart_loops_and_tells_every_service(tmp_path):
    manager = Manager()
    stack = manifest.load()
    settings = StackSettings(run_dir=tmp_path, redis_port=25000, cluster=True)
    password = build(manager, settings, tmp_path / "cluster", stack, manifest.plan(stack, 5000))
    nodes = [name for name in manager._processes if name.startswith("redis-")]
    assert nodes == [f"redis-{i}" for i in range(1, 7)] and "redis" not in manager._processes
    for index, name in enumerate(nodes):
        command = manager._processes[name]["obj"].cmd
        assert "while :; do" in command and f"{tmp_path / 'cluster' / str(25000 + index)}" in command
        conf = (tmp_path / "cluster" / str(25000 + index) / "redis.conf").read_text()
        assert "cluster-enabled yes" in conf and f"port {25000 + index}" in conf
        assert f"cluster-port {25006 + index}" in conf  # the bus: the 6 ports after the nodes'
    # The run's ACL file adds a cluster admin with a password of this run only.
    assert password and f">{password}" in (tmp_path / "cluster" / "users.acl").read_text()
    service = manager._processes["calc-1"]["obj"]
    assert service.env["REDIS_CLUSTER"] == "1" and ":25000/" in service.env["REDIS_URL"]
    assert parse_args(["--cluster"]).cluster
