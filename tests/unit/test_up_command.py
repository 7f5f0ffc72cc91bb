"""`scripts/up <names>`: which processes run for which names, their table, and a usage error
for a name the manifest does not know."""

from __future__ import annotations

import re
import threading
import time

import pytest
from honcho.manager import Manager

from scripts.devkit import stack
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


def test_nothing_is_asked_through_caddy_before_every_instance_is_ready(monkeypatch, capsys) -> None:
    """A route's first SRV lookup failing (the directory's DNS not up yet) would keep Caddy on
    its empty answer for the whole grace period: the probes through Caddy wait for the rest."""
    run = plan_run(parse_args(["ping", "pong"]))
    caddy = f"http://127.0.0.1:{run.settings.http_port}/"
    asked: list[str] = []
    ready: set[str] = set()

    def ok(url: str) -> bool:
        asked.append(url)
        if url.startswith(caddy):
            return True
        if len([u for u in asked if u == url]) >= 3:  # each instance ready at its third probe
            ready.add(url)
        return url in ready

    monkeypatch.setattr(stack, "_ok", ok)
    stack.watch_readiness(run.settings, run.running, time.monotonic(), threading.Event())
    first_through_caddy = next(i for i, url in enumerate(asked) if url.startswith(caddy))
    assert len(ready) == len(run.running)
    assert max(i for i, url in enumerate(asked) if not url.startswith(caddy)) < first_through_caddy
    assert {"/health", "/rally"} <= {url.removeprefix(caddy[:-1]) for url in asked[first_through_caddy:]}
    assert "canaduck: ready in" in capsys.readouterr().out
