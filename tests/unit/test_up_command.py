"""`scripts/up <names>`: which processes run for which names, their table, and a usage error
for a name the manifest does not know."""

from __future__ import annotations

import re

import pytest
from honcho.manager import Manager

from scripts.devkit.stack import build, main, parse_args, plan_run, summary


def test_up_with_names_runs_them_what_they_need_redis_and_caddy(tmp_path):
    run = plan_run(parse_args(["ping", "pong"]))
    manager = Manager()
    build(manager, run.settings, tmp_path, run.manifest, run.instances, run.running)
    assert set(manager._processes) == {"redis", "directory", "ping", "pong", "broker", "caddy"}
    ports = {i.name: i.port for i in run.instances}
    env = {name: process["obj"].env for name, process in manager._processes.items()}
    assert env["ping"]["PEER_URL"] == f"http://127.0.0.1:{ports['pong']}"
    # A service not running is dialed where it would run, and refuses: Caddy answers JSON 502/503.
    assert env["caddy"]["MULT_A_UPSTREAM"] == f"127.0.0.1:{ports['mult-a']}"


def test_the_ready_table_lists_what_runs_and_a_hash_of_one_of_them():
    ping_pong = plan_run(parse_args(["ping", "pong"]))
    table = summary(ping_pong.settings, ping_pong.running, 1.5)
    rows = re.findall(r"^  (\S+) +(?:http|redis)://", table, re.MULTILINE)
    assert rows == ["caddy", "directory", "ping", "pong", "broker", "redis"]
    assert "HGETALL canaduck:directory:ping" in table and "/dashboard" not in table
    everything = plan_run(parse_args([]))
    assert "HGETALL canaduck:directory:calc" in summary(everything.settings, everything.running, 1.5)


def test_an_unknown_name_is_a_usage_error_naming_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["ping", "nobody"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "no service 'nobody'" in error and "known: directory, ping, pong" in error


def test_names_and_options_mix_in_any_order():
    args = parse_args(["calc", "--scale", "calc=3", "mult", "--fresh"])
    assert args.services == ["calc", "mult"] and args.scale == ["calc=3"] and args.fresh
    assert parse_args([]).services == []
