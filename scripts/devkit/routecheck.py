"""Every public route of the stack, checked through its gateway: the compose smoke test and the
Swarm tests run the same checks against their own stack.

The functions take an `httpx.Client` whose `base_url` is the gateway (`http://127.0.0.1:<port>`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from scripts.devkit.waiting import eventually as _eventually


def get(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(path, timeout=10)


def eventually(probe: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """True once `probe` holds within `timeout` s; a failed request counts as not yet."""
    return _eventually(probe, timeout, interval, ignore=(httpx.HTTPError,))


@dataclass
class Check:
    """One check of a smoke run: what, whether it passed, what was seen."""

    name: str
    ok: bool
    detail: str


def returned(client: httpx.Client) -> int:
    """Shots answered in time so far, both players, from the scoreboard behind /rally."""
    board = get(client, "/rally").json()
    return sum(int(row.get("returned", 0)) for row in board["players"].values())


def rally_advances(client: httpx.Client, within: float) -> bool:
    """True once five more shots are answered; with a player absent nothing is returned.

    Each player counts its own shots from its start: a player restarted counts from zero, so
    the total falls by what it had. A total lower than the lowest seen so far becomes the new
    baseline, so the rally is seen advancing as soon as it does, not only once the newcomer
    has made up for its predecessor's count (which takes longer the longer the stack ran)."""
    lowest: list[int] = []

    def advanced() -> bool:
        try:
            now = returned(client)
        except (ValueError, KeyError):  # a scoreboard being rewritten: not yet
            return False
        if not lowest or now < lowest[0]:
            lowest[:] = [now]
        return now >= lowest[0] + 5

    return eventually(advanced, within)


def served_by(client: httpx.Client, path: str, count: int) -> Counter[str]:
    """Which instance answered each of `count` sequential requests to `path`."""
    return Counter(get(client, path).json()["served_by"] for _ in range(count))


def route_checks(client: httpx.Client) -> list[Check]:
    """Every public route through Caddy, with what its answer must look like."""
    checks = []

    def check(name: str, path: str, expect: Callable[[httpx.Response], bool],
              method: str = "GET", body: object = None) -> None:
        try:
            response = client.request(method, path, json=body, timeout=10)
            ok = bool(expect(response))
            detail = " ".join(response.text.split())[:70]
            checks.append(Check(name, ok, f"{response.status_code} {detail}"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            checks.append(Check(name, False, repr(exc)[:80]))

    check("GET /health (caddy)", "/health", lambda r: r.json()["status"] == "ok")
    check("GET /directory", "/directory",
          lambda r: r.status_code == 200 and "directory" in r.json()["services"])
    check("GET /directory/directory (its own address)", "/directory/directory",
          lambda r: bool(re.fullmatch(r"http://\d+\.\d+\.\d+\.\d+:5000", r.json()["instances"][0]["url"])))
    check("GET /directory/Bad_Name -> 400", "/directory/Bad_Name", lambda r: r.status_code == 400)
    check("GET /rally", "/rally",
          lambda r: r.json()["transport"] in ("broker", "http", "directory")
          and set(r.json()["players"]) == {"ping", "pong"})
    advancing = rally_advances(client, 20)
    checks.append(Check("rally advancing (shots returned)", advancing, ""))
    check("POST /messages -> 202 delivered", "/messages",
          lambda r: r.status_code == 202 and r.json()["delivered"] is True,
          "POST", {"to": "pong", "kind": "note", "body": {"from": "smoke"}})
    check("POST /messages bad body -> 400", "/messages",
          lambda r: r.status_code == 400 and "to" in r.json()["error"], "POST", {"kind": "note"})
    check("GET /fullinfo?city=Rodez", "/fullinfo?city=Rodez",
          lambda r: r.status_code == 200 and r.json()["city"] == "Rodez"
          and isinstance(r.json()["weather"]["temperature"], (int, float))
          and isinstance(r.json()["joke"], str))
    check("GET /weather?city=Honolulu", "/weather?city=Honolulu",
          lambda r: r.json()["city"] == "Honolulu" and "condition" in r.json())
    check("GET /joke", "/joke", lambda r: r.status_code == 200 and r.json()["joke"])
    check("GET /fullinfo (no city) -> 400", "/fullinfo", lambda r: r.status_code == 400)
    check("GET /calc", "/calc", lambda r: r.json()["service"] == "calc")
    check("GET /sum?op1=2&op2=3", "/sum?op1=2&op2=3", lambda r: r.json()["result"] == 5)
    check("GET /sub?op1=2&op2=3.5", "/sub?op1=2&op2=3.5", lambda r: r.json()["result"] == -1.5)
    check("GET /mult?op1=6&op2=7", "/mult?op1=6&op2=7", lambda r: r.json()["result"] == 42)
    check("GET /mult?op1=x -> 400", "/mult?op1=x&op2=1", lambda r: r.status_code == 400)
    try:
        calc = served_by(client, "/sum?op1=1&op2=1", 40)
        checks.append(Check("/sum over both calc instances", len(calc) == 2 and min(calc.values()) >= 10,
                            repr(dict(calc))))
        mult = served_by(client, "/mult?op1=2&op2=3", 40)
        checks.append(Check("/mult a:b:backup = 30:10:0", mult == {"mult-a": 30, "mult-b": 10},
                            repr(dict(mult))))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        checks.append(Check("load balancing", False, repr(exc)[:80]))
    check("GET /nowhere -> JSON 404", "/nowhere",
          lambda r: r.status_code == 404 and r.json()["error"] == "not found")
    return checks
