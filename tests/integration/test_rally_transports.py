"""The rally with real processes, once per transport: ping, pong (and the broker) on a real server."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

import pytest

from scripts.devkit import ServiceLauncher, ServiceProcess, free_port, start_at, wait_until

TRANSPORTS = ["http", "directory", "broker"]


@dataclass
class Court:
    """Two players and a broker started for one transport."""

    launcher: ServiceLauncher
    transport: str
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    players: dict[str, ServiceProcess] = field(default_factory=dict)
    broker: ServiceProcess | None = None

    def start(self) -> Court:
        self.broker = self.start_broker()
        self.ports = {"ping": free_port(), "pong": free_port()}
        for name in ("ping", "pong"):
            self.players[name] = self.start_player(name, wait=False)
        for name, svc in self.players.items():

            def settled(svc: ServiceProcess = svc) -> bool:
                return svc.ready() or svc.proc.poll() is not None

            wait_until(settled, timeout=20)
            assert svc.proc.poll() is None, f"{name} exited:\n{svc.log()}"
        return self

    def start_broker(self) -> ServiceProcess:
        return self.launcher.start("apps.broker", "broker")

    def start_player(self, name: str, *, wait: bool = True, port: int | None = None) -> ServiceProcess:
        peer = "pong" if name == "ping" else "ping"
        port = port or self.ports[name]
        env = dict(self.env, TRANSPORT=self.transport,
                   PEER_URL=f"http://127.0.0.1:{self.ports[peer]}", SCOREBOARD_INTERVAL="0.1")
        if wait:
            return start_at(self.launcher, "apps.player", name, port, **env)
        svc = self.launcher.launch("apps.player", name, wait=False,
                                   env=dict(env, PORT=str(port), INSTANCE_ID=f"{name}-{port}"))
        svc.port = port
        return svc

    def board(self) -> dict:
        for svc in self.players.values():
            if svc.proc.poll() is None:
                return svc.get("/rally").json()
        raise AssertionError("no player running")

    def players_field(self, name: str, what: str):
        return self.board()["players"].get(name, {}).get(what)


def total_misses(board: dict) -> int:
    return sum(p.get("misses", 0) for p in board["players"].values())


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


def test_fifty_hits_without_a_miss_at_10_ms_think(launcher, transport):
    court = Court(launcher, transport, {"THINK_TIME": "0.01"}).start()
    wait_until(lambda: court.board()["current_rally"]["hits"] >= 2, timeout=10)
    start = court.board()
    rally, misses = start["current_rally"]["id"], total_misses(start)
    # The longest rally counts hits received; the current one also the shot still in flight.
    wait_until(lambda: court.board()["longest_rally"] >= start["current_rally"]["hits"] + 50, timeout=20)
    end = court.board()
    assert end["current_rally"]["id"] == rally
    assert total_misses(end) == misses
    assert end["transport"] == transport
    assert end["longest_rally"] >= 52
    assert end["round_trip_ms"]["samples"] >= 40 and end["round_trip_ms"]["p50"] > 10
    assert all(p["status"] == "playing" for p in end["players"].values())


def test_at_600_ms_think_every_shot_is_a_miss(launcher, transport):
    court = Court(launcher, transport, {"THINK_TIME": "0.6"}).start()
    wait_until(lambda: total_misses(court.board()) >= 4, timeout=20)
    board = court.board()
    assert board["longest_rally"] <= 1  # no shot was ever answered in time
    assert board["round_trip_ms"]["samples"] == 0
    assert all(p["returned"] == 0 for p in board["players"].values())
    assert sum(p["points"] for p in board["players"].values()) == total_misses(board)


def test_sigkill_pong_mid_rally_records_misses_and_the_rally_resumes(launcher, transport):
    court = Court(launcher, transport, {"THINK_TIME": "0.02", "SERVE_BACKOFF_MAX": "1"}).start()
    wait_until(lambda: court.board()["current_rally"]["hits"] >= 10, timeout=15)
    court.players["pong"].stop(signal.SIGKILL)
    wait_until(lambda: (court.players_field("pong", "misses") or 0) >= 1, timeout=10)
    wait_until(lambda: court.players_field("ping", "status").startswith("stalled"), timeout=10)
    before = court.board()["current_rally"]["id"]
    # A restarted pong: on its old port for http (PEER_URL is fixed), a new one otherwise.
    port = court.ports["pong"] if transport == "http" else free_port()
    court.players["pong"] = court.start_player("pong", port=port)
    wait_until(lambda: court.board()["current_rally"]["id"] > before
               and court.board()["current_rally"]["hits"] >= 10, timeout=20)
    wait_until(lambda: court.players_field("ping", "status") == "playing", timeout=5)
    assert "pong is back" in court.players["ping"].log()


def test_a_killed_broker_stalls_only_the_broker_transport(launcher, transport):
    court = Court(launcher, transport, {"THINK_TIME": "0.02", "SERVE_BACKOFF_MAX": "1"}).start()
    wait_until(lambda: court.board()["current_rally"]["hits"] >= 10, timeout=15)
    court.broker.stop(signal.SIGKILL)
    if transport != "broker":  # players reach each other directly: the rally does not notice
        hits = court.board()["current_rally"]["hits"]
        wait_until(lambda: court.board()["current_rally"]["hits"] >= hits + 20, timeout=10)
        assert all(p["status"] == "playing" for p in court.board()["players"].values())
        return
    wait_until(lambda: all("no broker" in p["status"] for p in court.board()["players"].values()),
               timeout=10)
    assert "no broker listening" in court.players["ping"].log()
    stalled = court.board()["current_rally"]["id"]
    court.broker = court.start_broker()
    wait_until(lambda: court.board()["current_rally"]["id"] > stalled
               and court.board()["current_rally"]["hits"] >= 10
               and all(p["status"] == "playing" for p in court.board()["players"].values()),
               timeout=20)


@pytest.mark.cluster(only=True)
def test_on_a_cluster_the_broker_rally_plays_and_a_killed_broker_is_noticed(launcher, redis_server):
    # Sharded pub/sub: a publication's receiver count is exact, so "no broker listening" (a
    # count of 0) is true on a cluster too, where plain PUBLISH counts one node's subscribers.
    test_a_killed_broker_stalls_only_the_broker_transport(launcher, "broker")
