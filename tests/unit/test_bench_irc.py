"""scripts/bench-irc's parts that need no run: the TLS parts of `--tls` (scripts/devkit/ircstack.py:
the run's own certificate, a load generator's client registering with it over TLS), and the
scenarios' shapes, plans and RESULT lines (scripts/devkit/ircbench.py)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.devkit.benchclient import BenchClient, Tally
from scripts.devkit.curves import curve_order
from scripts.devkit.ircbench import (
    ReplicaRow,
    Row,
    bighall_result,
    capacity_result,
    curve_result,
    plans,
    shapes,
)
from scripts.devkit.ircstack import client_tls_context, self_signed
from tests.unit.ircd_support import running_gateway

ROOT = Path(__file__).resolve().parents[2]


async def test_a_client_registers_over_tls_with_the_runs_own_certificate(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = self_signed(tmp_path)
    async with running_gateway(tls_cert=str(cert), tls_key=str(key), irc_tls_port=0) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["ircs"],
                                                       ssl=client_tls_context())
        writer.write(b"NICK tlsbench\r\nUSER tlsbench 0 * :bench\r\n")
        await writer.drain()
        while b" 001 " not in (line := await asyncio.wait_for(reader.readline(), 5)):
            assert line, "closed before the welcome"
        assert writer.get_extra_info("ssl_object") is not None
        assert [c.transport.secure for c in gateway.roster.connections] == [True]
        writer.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The flags the shapes read, with the entry point's defaults."""
    given = dict(zip((a.lstrip("-").replace("-", "_") for a in argv[::2]), argv[1::2], strict=True))
    return argparse.Namespace(
        scenarios=given.get("scenarios", "rooms,hall"), clients=int(given.get("clients", 0)) or None,
        room=20, rate=200.0, hall=None, hall_rate=None, replicas=int(given.get("replicas", 0)) or None,
        workers=2, no_implicit_names=False, tls=False, quota=float(given.get("quota", 0)),
        curve=[int(n) for n in given["curve"].split(",")] if "curve" in given else None,
        rounds=int(given.get("rounds", 1)), scaled_load="scaled_load" in given, window=0)


def test_the_capacity_scenario_takes_a_replica_per_18000_clients_and_a_generator_per_15000():
    args = parse_args(["--scenarios", "capacity,bighall,rooms"])
    by_kind = {s.kind: s for s in shapes(args.scenarios.split(","), args)}
    capacity, bighall, rooms = by_kind["capacity"], by_kind["bighall"], by_kind["rooms"]
    assert (capacity.clients, capacity.size, capacity.rate) == (100_000, 20, 200)
    assert (capacity.replicas, capacity.workers) == (6, 7)
    assert (bighall.clients, bighall.rate, bighall.replicas) == (7000, 5, 2)
    assert (rooms.clients, rooms.replicas, rooms.workers) == (1000, 2, 2)
    given = parse_args(["--scenarios", "capacity", "--clients", "2000", "--replicas", "3"])
    [small] = shapes(["capacity"], given)
    assert (small.clients, small.replicas, small.workers) == (2000, 3, 2)


def test_each_generator_process_binds_its_own_source_address():
    worker_plans, _ = plans(60, 20, [7000, 7001], 10, 1, 3, "b")
    assert [p.source for p in worker_plans] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert sorted(i for p in worker_plans for i in p.nicks) == list(range(60))


def test_the_capacity_result_line_names_the_issues_fields():
    row = Row("capacity 5000x20 @200/s", "canaduck (6 replicas)", 100_000, sent=2000, expected=38_000,
              received=38_000, p99=12.5, kib_per_conn=6.25, register_s=50.0, pings=400, retries=3)
    line = capacity_result([row])
    assert line.startswith("RESULT capacity_clients=100000 kib_per_conn=6.2 capacity_p99_ms=12.50 "
                           "registrations_per_s=2000 lost=0 ")
    assert "pings_answered=400" in line and "asked_again=3" in line


def test_a_curve_runs_each_scenario_at_each_replica_count_and_says_its_efficiency():
    args = parse_args(["--scenarios", "rooms", "--curve", "1,2,4", "--quota", "0.25"])
    assert [(s.replicas, s.label) for s in shapes(["rooms"], args)] == [
        (n, f"rooms 50x20 @200/s q0.25 N={n}") for n in (1, 2, 4)]
    rows = [Row("rooms", "canaduck", 1000, deliveries_per_s=rate, expected=10, received=10,
                replicas=[ReplicaRow(f"ircd-{i}", 25, 80, 1) for i in range(n)])
            for n, rate in ((1, 1000.0), (2, 1800.0), (4, 3000.0))]
    assert curve_result(rows, 0.25) == ("RESULT curve=rooms quota_cores=0.25 deliveries_per_s_1=1000 "
                                        "deliveries_per_s_2=1800 deliveries_per_s_4=3000 efficiency_2=0.90 "
                                        "efficiency_4=0.75 lost=0")


def test_a_curve_over_rounds_goes_back_and_forth_so_that_a_drifting_machine_favours_no_count():
    assert curve_order([1, 2, 4], 3) == [1, 2, 4, 4, 2, 1, 1, 2, 4]
    assert curve_order([1, 4]) == [1, 4]
    args = parse_args(["--scenarios", "rooms", "--curve", "1,4", "--rounds", "2", "--quota", "0.25"])
    assert [s.replicas for s in shapes(["rooms"], args)] == [1, 4, 4, 1]


def test_a_curve_over_rounds_gives_each_counts_median_and_each_rounds_own_efficiency():
    def row(n: int, rate: float) -> Row:
        return Row("rooms", "canaduck", 1000, deliveries_per_s=rate, expected=10, received=10,
                   replicas=[ReplicaRow(f"ircd-{i}", 25, 80, 1) for i in range(n)])
    # Three rounds, in the order they ran (1, 4, then 4, 1, then 1, 4).
    rows = [row(1, 1000.0), row(4, 3600.0), row(4, 2800.0), row(1, 800.0), row(1, 1100.0), row(4, 4000.0)]
    assert curve_result(rows, 0.15) == (
        "RESULT curve=rooms quota_cores=0.15 rounds=3 deliveries_per_s_1=1000 deliveries_per_s_4=3600 "
        "efficiency_4=0.90 efficiency_4_runs=0.90,0.88,0.91 lost=0")


ROUNDS_REFUSED = "--rounds: a number of rounds, 1 or more, for --curve"
PIN_REFUSED = "--pin is for --curve with --quota"


@pytest.mark.parametrize(("flags", "says"), [
    (["--rounds", "2"], ROUNDS_REFUSED),
    (["--curve", "1,2", "--rounds", "0"], ROUNDS_REFUSED),
    (["--pin"], PIN_REFUSED),
    (["--curve", "1,2", "--pin"], PIN_REFUSED),
    (["--quota", "0.15", "--pin"], PIN_REFUSED),
])
def test_rounds_and_pinning_are_refused_outside_a_curve(flags: list[str], says: str):
    done = subprocess.run([sys.executable, "-m", "scripts.bench_irc", "--servers", "canaduck",
                           "--scenarios", "rooms", *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr


def test_a_pinned_curve_names_the_replicas_cpus_in_its_result():
    rows = [Row("rooms", "canaduck", 1000, deliveries_per_s=rate, expected=10, received=10,
                replicas=[ReplicaRow(f"ircd-{i}", 15, 80, 1) for i in range(n)])
            for n, rate in ((1, 1000.0), (4, 3600.0))]
    assert curve_result(rows, 0.15, scaled=True, replica_cpus="1") == (
        "RESULT curve=rooms quota_cores=0.15 scaled_load=yes replica_cpus=1 deliveries_per_s_1=1000 "
        "deliveries_per_s_4=3600 efficiency_4=0.90 lost=0")


def test_a_scaled_curve_offers_n_replicas_n_times_the_rooms_and_the_messages():
    args = parse_args(["--scenarios", "rooms", "--clients", "1000", "--curve", "1,2,4", "--quota", "0.25",
                       "--scaled-load", "yes"])
    assert [(s.replicas, s.clients, s.rate, s.label) for s in shapes(["rooms"], args)] == [
        (1, 1000, 200, "rooms 50x20 @200/s q0.25 N=1"), (2, 2000, 400, "rooms 100x20 @400/s q0.25 N=2"),
        (4, 4000, 800, "rooms 200x20 @800/s q0.25 N=4")]
    rows = [Row("rooms", "canaduck", 1000, deliveries_per_s=1000.0, expected=10, received=10,
                replicas=[ReplicaRow("ircd-1", 25, 80, 1)])]
    assert "quota_cores=0.25 scaled_load=yes deliveries_per_s_1=1000" in curve_result(rows, 0.25, scaled=True)


@pytest.mark.parametrize("flags", [["--scenarios", "rooms"], ["--scenarios", "hall", "--curve", "1,2"]])
def test_a_scaled_load_is_refused_without_a_curve_and_for_a_hall(flags: list[str]):
    done = subprocess.run([sys.executable, "-m", "scripts.bench_irc", "--servers", "canaduck", *flags,
                           "--scaled-load"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--scaled-load is for --curve with rooms or capacity" in done.stderr


def test_the_bighall_result_line_puts_the_peers_figures_beside_ours():
    ours = Row("bighall 1x7000 @5/s", "canaduck (2 replicas)", 7000, expected=10, received=10, p99=104.15,
               kib_per_conn=8.3, join_s=53.0, replicas=[ReplicaRow("ircd-1", 23, 100, 250)])
    peer = Row("bighall 1x7000 @5/s", "ngIRCd (1 process)", 7000, expected=10, received=9, p99=108.71,
               kib_per_conn=6.8, join_s=255.8)
    assert bighall_result([ours, peer]) == (
        "RESULT bighall_members=7000 bighall_p99_ms=104.15 bighall_kib_per_conn=8.3 bighall_join_s=53.0 "
        "lost=0 loop_lag_p99_ms=250 ngircd_bighall_members=7000 ngircd_bighall_p99_ms=108.71 "
        "ngircd_bighall_kib_per_conn=6.8 ngircd_bighall_join_s=255.8 ngircd_lost=1")


def test_a_closed_loops_window_is_per_replica_and_shared_out_between_the_workers():
    args = parse_args(["--scenarios", "rooms", "--curve", "1,4", "--quota", "0.15", "--scaled-load", "yes"])
    args.window = 8
    assert [(s.window, s.label) for s in shapes(["rooms"], args)] == [
        (8, "rooms 50x20 @200/s w8 q0.15 N=1"), (32, "rooms 200x20 @800/s w8 q0.15 N=4")]
    worker_plans, _ = plans(60, 20, [7000], 10, 1, 3, "b", window=10)
    assert [p.window for p in worker_plans] == [4, 4, 4]
    assert [p.window for p in plans(60, 20, [7000], 10, 1, 3, "b")[0]] == [0, 0, 0]


async def test_a_closed_loops_client_gives_its_place_back_on_its_echo_or_a_refusal() -> None:
    given_back: list[str] = []
    client = BenchClient("bc1", Tally(), echoed=lambda: given_back.append("back"))
    client.data_received(b":bc1!~bc1@127.0.0.1 PRIVMSG #bench0 :bench 7 100\r\n"
                         b":bc2!~bc2@127.0.0.1 PRIVMSG #bench0 :bench 8 100\r\n")
    assert given_back == ["back"]  # its own message back
    client.data_received(b"@msgid=1-0;time=x :bc1!~bc1@127.0.0.1 PRIVMSG #bench0 :bench 9 100\r\n")
    assert given_back == ["back"] * 2  # tagged, it is still its own
    assert client.tally.received == {8: 1}  # the other's is a delivery, its echo is not
    client.data_received(b":srv 404 bc1 #bench0 :Cannot send to channel\r\n"
                         b":srv 400 bc1 PRIVMSG :Server state unavailable, try again\r\n"
                         b":srv 400 bc1 NICK :Server state unavailable, try again\r\n")
    assert given_back == ["back"] * 4  # the refused PRIVMSGs; not the NICK
    open_loop = BenchClient("bc1", Tally())
    open_loop.data_received(b":bc1!~bc1@127.0.0.1 PRIVMSG #bench0 :bench 7 100\r\n")
    assert open_loop.tally.received == {7: 1}  # no echo asked for: nothing is told apart


@pytest.mark.parametrize(("flags", "said"), [
    (["--scenarios", "reconnect", "--window", "8"], "--window is for the delivery scenarios"),
    (["--scenarios", "rooms", "--window", "-1"], "--window: a number of messages, 0 or more")])
def test_a_window_is_refused_where_it_means_nothing(flags: list[str], said: str):
    done = subprocess.run([sys.executable, "-m", "scripts.bench_irc", "--servers", "canaduck", *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
